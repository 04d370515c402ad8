// The shell's script and the agents' behaviour in a session run (session_scenario.hpp).
#include "sim/session_driver.hpp"

namespace mstream::sim::detail {

// ---------------------------------------------------------------------------------------
// The shell: non-blocking, like a script whose commands are issued one after another by
// several scripts at once. It creates every stream (at its planned site), attaches its agent,
// then plays the actions on time, and at the end asks the leader for quiescence.

void SessionDriver::shell_poll() {
  site::SiteCore& core = *nodes_[sc_.shell_node()].core;
  if (phase_ == Phase::kJoining) {
    if (!core.welcomed()) return;
    std::size_t sites = 0;
    for (const auto& [id, p] : core.directory().peers()) {
      const auto node = parse_sim_address(p.address);
      sites += p.live && !p.shell && node && *node <= sc_.sites;  // not the hostile member
    }
    if (sites < sc_.sites + 1) return;
    start_setup();
  }
  for (auto it = outstanding_.begin(); it != outstanding_.end();) {
    std::optional<wire::Reply> reply = core.take_reply(it->first);
    if (!reply) {
      ++it;
      continue;
    }
    const Request r = it->second;
    it = outstanding_.erase(it);
    on_reply(r, *reply);
  }
  flush_shell_appends();
  destroy_due_lives();
  maybe_finish_workload();
}

void SessionDriver::start_setup() {
  phase_ = Phase::kCreating;
  // Site ids by node index, as the leader gave them (a site may not have heard its answer
  // yet: the join goes on, and what the leader sends it meanwhile is repeated).
  for (const auto& [id, peer] : nodes_[0].leader->leader().peers()) {
    const auto node = parse_sim_address(peer.address);
    if (node && *node <= sc_.sites) site_ids_[*node] = id;
  }
  site::SiteCore& core = *nodes_[sc_.shell_node()].core;
  for (std::uint32_t i = 0; i < sc_.streams.size(); ++i) {
    if (sc_.streams[i].ephemeral) continue;  // its kLife actions create it
    wire::CreateReq r;
    r.name = sc_.streams[i].name;
    r.site = site_ids_[sc_.streams[i].node];
    if (sc_.streams[i].failure_manager)
      r.failure_manager = site_ids_[*sc_.streams[i].failure_manager];
    if (sc_.streams[i].durable) r.flags |= wire::kStreamDurable;
    outstanding_[core.send_request(r)] = Request{Request::Kind::kCreate, i};
  }
  trace("shell creates " + std::to_string(sc_.setup_streams()) + " streams");
}

void SessionDriver::on_reply(const Request& r, const wire::Reply& reply) {
  site::SiteCore& core = *nodes_[sc_.shell_node()].core;
  const SessionStreamPlan* plan =
      r.kind == Request::Kind::kQuiesce ? nullptr : &sc_.streams[r.stream];
  note(SessionEventKind::kAction, static_cast<std::uint64_t>(r.kind), r.stream, reply.code);
  if (r.kind == Request::Kind::kLifeCreate || r.kind == Request::Kind::kLifeAttach ||
      r.kind == Request::Kind::kLifeDestroy) {
    on_life_reply(r, reply);
    return;
  }
  // After a crash a move may find its target gone, or lose an end on the way (its stream is
  // then recovered or stays): the leader says so, as it should.
  if (reply.code != 0 && r.kind == Request::Kind::kMove && !crashed_ids_.empty()) {
    ++sum_.moves_failed;
    trace("shell: the move of " + plan->name + " failed: " + reply.text);
  } else if (reply.code != 0 && r.kind != Request::Kind::kQuiesce) {
    checker_.fail("api_contract", std::string("the leader refused the shell's ") +
                                      (r.kind == Request::Kind::kCreate   ? "create"
                                       : r.kind == Request::Kind::kAttach ? "attach"
                                                                          : "move") +
                                      " of " + plan->name + ": " + reply.text);
  }
  switch (r.kind) {
    case Request::Kind::kCreate: {
      const wire::StreamRecord* rec = core.directory().find(plan->name);
      // The leader broadcasts the Location before it answers, on the same channel.
      if (!rec || rec->id == 0 || rec->id > sc_.setup_streams()) {
        checker_.fail("api_contract", "after creating " + plan->name + " the shell's directory " +
                                          (rec ? "gives it id " + std::to_string(rec->id)
                                               : std::string("does not know it")));
        return;
      }
      ids_[plan->name] = rec->id;
      stream_ids_.push_back(rec->id);
      checker_.add_stream(rec->id, plan->name);
      checker_.set_failure_manager(rec->id, rec->failure_manager);
      if (plan->durable) {
        durable_ids_.insert(rec->id);
        checker_.set_durable(rec->id);
      }
      wire::AttachReq a;
      a.stream = plan->name;
      a.args = plan->name;
      a.cpp_type = plan->sender ? "sim.sender" : "sim.receiver";
      outstanding_[core.send_request(a)] = Request{Request::Kind::kAttach, r.stream};
      return;
    }
    case Request::Kind::kAttach:
      if (++attached_ == sc_.setup_streams()) {
        phase_ = Phase::kWorkload;
        sum_.setup_done_at = now_;
        trace("shell: every stream created with its agent; the workload starts");
        for (std::uint32_t i = 0; i < sc_.actions.size(); ++i)
          schedule(now_ + sc_.actions[i].at, SessionEventKind::kAction, sc_.shell_node(), i);
        for (std::uint32_t i = 0; i < sc_.crashes.size(); ++i)
          schedule(now_ + sc_.crashes[i].at, SessionEventKind::kCrash, sc_.crashes[i].node, i);
      }
      return;
    case Request::Kind::kMove:
      return;
    case Request::Kind::kQuiesce: {
      phase_ = Phase::kDone;
      sum_.quiesced_at = now_;
      trace("shell: the leader declares the session quiescent");
      // Nothing may be in flight now: no handler queued or running, no message unconsumed.
      // The hostile member excepted: it may misreport its own account (doc/security.md, what
      // an insider can still do), and its own lies may wait in its queues for ever (under a
      // small bound, a control message to a site that does not exist: seed 9900038).
      std::string busy;
      for (std::uint32_t n = 0; n < nodes_.size(); ++n) {
        if (is_hostile(n)) continue;
        if (nodes_[n].core && !nodes_[n].core->idle())
          busy += (busy.empty() ? "node " : ", node ") + std::to_string(n) + " is not idle";
      }
      if (!nodes_[0].leader->leader().idle())
        busy += (busy.empty() ? "" : ", ") + std::string("the leader has operations in flight");
      checker_.on_quiescence(busy);
      return;
    }
    case Request::Kind::kLifeCreate:
    case Request::Kind::kLifeAttach:
    case Request::Kind::kLifeDestroy:
      return;  // on_life_reply
  }
}

void SessionDriver::on_action(std::uint32_t index) {
  const SessionAction& a = sc_.actions[index];
  ++actions_done_;
  switch (a.kind) {
    case SessionAction::Kind::kTrigger:
      ++sum_.triggers;
      shell_append(a.stream, 'g', a.count);
      return;
    case SessionAction::Kind::kAppend:
      shell_append(a.stream, 'm', 0);
      return;
    case SessionAction::Kind::kLife: {
      Lives& l = lives_[a.stream];
      if (l.stopped) return;
      l.waiting.push_back(a.count);
      if (!l.busy) start_life(a.stream);
      return;
    }
    case SessionAction::Kind::kMove: {
      site::SiteCore& core = *nodes_[sc_.shell_node()].core;
      wire::MoveReq m;
      m.name = sc_.streams[a.stream].name;
      m.site = site_ids_[a.node];
      ++sum_.moves_requested;
      trace("shell moves " + m.name + " to site " + std::to_string(m.site));
      outstanding_[core.send_request(m)] = Request{Request::Kind::kMove, a.stream};
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Ephemeral streams: create, attach, append, destroy, as a script would (the destroy once
// the stream consumed what the shell appended to it, as ShellApi::stream_destroy waits), and
// again under the same name. The checker judges each life as a stream of its own.

void SessionDriver::start_life(std::uint32_t stream) {
  Lives& l = lives_[stream];
  l.busy = true;
  l.appends = l.waiting.front();
  l.waiting.pop_front();
  const SessionStreamPlan& p = sc_.streams[stream];
  wire::CreateReq r;
  r.name = p.name;
  r.site = site_ids_[p.node];
  site::SiteCore& core = *nodes_[sc_.shell_node()].core;
  outstanding_[core.send_request(r)] = Request{Request::Kind::kLifeCreate, stream};
  trace("shell creates " + p.name + " (a new life)");
}

void SessionDriver::on_life_reply(const Request& r, const wire::Reply& reply) {
  site::SiteCore& core = *nodes_[sc_.shell_node()].core;
  const SessionStreamPlan& p = sc_.streams[r.stream];
  Lives& l = lives_[r.stream];
  if (r.kind == Request::Kind::kLifeAttach) checker_.set_attaching(ids_[p.name], false);
  if (reply.code != 0) {
    // After a crash an operation may fail (its site is gone): the leader says so. The
    // stream's lives end there.
    if (!crashed_ids_.empty()) {
      ++sum_.lives_cut;
      trace("shell: a life of " + p.name + " ended: " + reply.text);
      if (r.kind == Request::Kind::kLifeAttach) checker_.set_agentless(ids_[p.name]);
      l.busy = false;
      l.stopped = true;
      return;
    }
    checker_.fail("api_contract",
                  "the leader refused an operation on " + p.name + ": " + reply.text);
    return;
  }
  switch (r.kind) {
    case Request::Kind::kLifeCreate: {
      const wire::StreamRecord* rec = core.directory().find(p.name);
      if (!rec || rec->id == 0) {
        checker_.fail("api_contract",
                      "after creating " + p.name + " the shell's directory " + "does not know it");
        return;
      }
      ids_[p.name] = rec->id;
      stream_ids_.push_back(rec->id);
      if (!p.forwards) silent_.insert(rec->id);
      checker_.add_stream(rec->id, p.name);
      shell_sent_[r.stream] = 0;  // a new stream: the pair numbers from 1
      ++sum_.lives;
      wire::AttachReq a;
      a.stream = p.name;
      a.args = p.name;
      a.cpp_type = "sim.receiver";
      checker_.set_attaching(rec->id, true);
      outstanding_[core.send_request(a)] = Request{Request::Kind::kLifeAttach, r.stream};
      return;
    }
    case Request::Kind::kLifeAttach:
      for (std::uint32_t k = 0; k < l.appends; ++k) shell_append(r.stream, 'm', 0);
      l.destroy_due = true;
      destroy_due_lives();
      return;
    case Request::Kind::kLifeDestroy:
      checker_.on_destroyed(ids_[p.name]);
      l.busy = false;
      if (!l.stopped && !l.waiting.empty()) start_life(r.stream);
      return;
    default:
      return;
  }
}

// A shell's destroy waits until the stream consumed every message the shell appended to it
// (ShellApi::stream_destroy): those still refused by a full buffer first, then the rest.
void SessionDriver::destroy_due_lives() {
  site::SiteCore& core = *nodes_[sc_.shell_node()].core;
  for (auto& [stream, l] : lives_) {
    if (!l.destroy_due) continue;
    const bool queued = std::any_of(shell_appends_.begin(), shell_appends_.end(),
                                    [&](const ShellAppend& sa) { return sa.stream == stream; });
    const StreamId id = ids_[sc_.streams[stream].name];
    if (queued || core.has_unconsumed(core.sender_id(), id)) continue;
    l.destroy_due = false;
    wire::DestroyReq d;
    d.name = sc_.streams[stream].name;
    outstanding_[core.send_request(d)] = Request{Request::Kind::kLifeDestroy, stream};
    trace("shell destroys " + d.name);
  }
}

void SessionDriver::shell_append(std::uint32_t stream, char kind, std::uint64_t number) {
  ShellAppend sa;
  sa.stream = stream;
  sa.kind = kind;
  sa.gid = next_gid_++;
  sa.index = ++shell_sent_[stream];
  sa.number = kind == 'm' ? sa.index : number;
  shell_appends_.push_back(sa);
  flush_shell_appends();
}

// A full buffer refuses the shell's append (a script would block); the shell retries in
// order each time it runs, so each pair keeps its append order.
void SessionDriver::flush_shell_appends() {
  site::SiteCore& core = *nodes_[sc_.shell_node()].core;
  while (!shell_appends_.empty()) {
    const ShellAppend& sa = shell_appends_.front();
    const std::string& name = sc_.streams[sa.stream].name;
    Result<proto::Seq> r = core.append_from(core.sender_id(), name,
                                            session_message(sa.kind, sa.gid, sa.number), false);
    if (!r.ok() && r.status().code() == Status::Code::kWouldBlock) {
      ++sum_.shell_would_block;
      return;
    }
    if (r.ok()) {
      checker_.on_append(sa.gid, core.sender_id(), id_of(name), sa.index);
      ++sum_.appended;
      note(SessionEventKind::kAction, sa.gid, sa.stream, *r);
    } else {
      checker_.fail("api_contract",
                    "the shell's append to " + name + ": " + r.status().to_string());
    }
    shell_appends_.pop_front();
  }
}

void SessionDriver::maybe_finish_workload() {
  if (phase_ != Phase::kWorkload || quiesce_scheduled_) return;
  if (actions_done_ < sc_.actions.size() || !outstanding_.empty() || !shell_appends_.empty())
    return;
  for (const auto& [stream, l] : lives_)
    if (l.busy || (!l.stopped && !l.waiting.empty())) return;
  quiesce_scheduled_ = true;
  schedule(now_ + sc_.quiesce_delay, SessionEventKind::kQuiesce, sc_.shell_node());
}

void SessionDriver::ask_quiescence() {
  site::SiteCore& core = *nodes_[sc_.shell_node()].core;
  phase_ = Phase::kQuiescing;
  const site::SiteCounters& c = core.counters();
  trace("shell asks for quiescence");
  outstanding_[core.send_request(wire::QuiesceReq{0, c.appended - c.discarded_own})] =
      Request{Request::Kind::kQuiesce, 0};
}

// ---------------------------------------------------------------------------------------
// The agents' behaviour (their types are in session_agents.cpp).

StreamId SessionDriver::id_of(std::string_view name) {
  auto it = ids_.find(std::string(name));
  if (it != ids_.end()) return it->second;
  for (const auto& [id, rec] : nodes_[0].leader->leader().streams()) {
    if (rec.name == name) {
      ids_[rec.name] = id;
      return id;
    }
  }
  checker_.fail("api_contract", "no stream named " + std::string(name) + " at the leader");
  return 0;
}

bool SessionDriver::agent_append(AgentContext& ctx, const std::string& to,
                                 std::map<std::string, std::uint64_t>* sent) {
  std::uint64_t& count = (*sent)[to];
  const std::uint64_t gid = next_gid_++;
  Status s = ctx.append(to, session_message('m', gid, count + 1));
  if (s.ok()) {
    ++count;
    ++sum_.appended;
    checker_.on_append(gid, id_of(ctx.stream_name()), id_of(to), count);
    return true;
  }
  if (s.code() == Status::Code::kNotFound) {
    // The site's directory replica does not know the receiver yet (it lags the leader).
    ++sum_.appends_refused;
  } else {
    checker_.fail("api_contract",
                  std::string(ctx.stream_name()) + "'s append to " + to + ": " + s.to_string());
  }
  return false;
}

void SessionDriver::on_sender_append(AgentContext& ctx, std::string_view message,
                                     std::uint64_t handled, std::uint64_t hash,
                                     std::map<std::string, std::uint64_t>* sent) {
  checker_.on_agent_count(id_of(ctx.stream_name()), handled, hash);
  const std::optional<SessionMessage> m = parse_session_message(message);
  if (m && m->kind == 'g') {
    for (std::uint64_t k = 0; k < m->number; ++k)
      (void)agent_append(ctx, receivers_[rng_.below(receivers_.size())], sent);
  }
  maybe_relocate(ctx, sc_.relocate_on_append);
}

void SessionDriver::on_receiver_append(AgentContext& ctx, std::string_view /*message*/,
                                       std::uint64_t handled, std::uint64_t hash,
                                       std::map<std::string, std::uint64_t>* sent) {
  const StreamId self = id_of(ctx.stream_name());
  checker_.on_agent_count(self, handled, hash);
  // Forwarding, to any receiver (itself too): chains of handlers across sites that outlive
  // the shell's last append, which termination detection must wait for.
  if (forwards_ < sc_.max_forwards && !silent_.contains(self) && rng_.chance(sc_.forward_chance)) {
    ++forwards_;
    (void)agent_append(ctx, receivers_[rng_.below(receivers_.size())], sent);
  }
  maybe_relocate(ctx, sc_.relocate_on_append);
}

void SessionDriver::on_agent_relocated(AgentContext& ctx) {
  checker_.on_relocation_handler(id_of(ctx.stream_name()), ctx.site_id());
  // From the relocation handler: a chain of moves, each started at the previous arrival.
  maybe_relocate(ctx, sc_.relocate_on_arrival);
}

void SessionDriver::on_agent_failed(AgentContext& ctx) {
  checker_.on_failure_handler(id_of(ctx.stream_name()), ctx.site_id());
  maybe_relocate(ctx, sc_.relocate_on_arrival);
}

void SessionDriver::maybe_relocate(AgentContext& ctx, double chance) {
  if (sum_.self_relocations >= sc_.max_self_relocations || !rng_.chance(chance)) return;
  std::vector<SiteId> others;
  for (SiteId s : site_ids_)
    if (s != ctx.site_id()) others.push_back(s);
  const SiteId to = others[rng_.below(others.size())];
  Status s = ctx.relocate(to);
  trace(std::string(ctx.stream_name()) + " relocates itself from site " +
        std::to_string(ctx.site_id()) + " to site " + std::to_string(to) + ": " + s.to_string());
  if (s.ok()) {
    ++sum_.self_relocations;
  } else if (s.code() == Status::Code::kNotFound) {
    ++sum_.relocations_refused;  // the site's replica does not know the target site yet
  } else {
    checker_.fail("api_contract",
                  std::string(ctx.stream_name()) + " could not relocate: " + s.to_string());
  }
}

}  // namespace mstream::sim::detail
