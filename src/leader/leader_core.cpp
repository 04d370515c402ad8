#include "leader/leader_core.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <limits>

#include "leader/leader_internal.hpp"
#include "leader/leader_state.hpp"
#include "site/directory.hpp"
#include "site/ids.hpp"
#include "wire/fields.hpp"

namespace mstream::leader {

LeaderCore::LeaderCore(LeaderOptions options, Send send, Admit admit)
    : options_(options),
      send_(std::move(send)),
      admit_(std::move(admit)),
      next_shell_(site::kFirstShellId) {
  wire::PeerRecord self;
  self.site = 0;
  self.live = 1;
  peers_[0] = self;
}

void LeaderCore::set_own_address(std::string address, std::uint64_t pid) {
  peers_[0].address = std::move(address);
  peers_[0].pid = pid;
}

bool LeaderCore::on_join(const wire::JoinMessage& m, const std::string& from,
                         wire::JoinMessage* reply, Time now) {
  if (m.op != wire::JoinMessage::Op::kRequest) return false;
  reply->op = wire::JoinMessage::Op::kAccept;
  reply->nonce = m.nonce;
  auto known = join_nonces_.find(m.nonce);
  if (known != join_nonces_.end()) {  // a repeat: its answer was lost
    reply->site = known->second;
    return true;
  }
  const bool shell = m.role == wire::JoinMessage::Role::kShell;
  if ((shell && next_shell_ == 0xFFFFFFFEu) || (!shell && next_site_ >= site::kFirstShellId)) {
    reply->op = wire::JoinMessage::Op::kRefuse;
    reply->reason = "the session is full";
    return true;
  }
  const SiteId id = shell ? next_shell_++ : next_site_++;
  join_nonces_[m.nonce] = id;
  reply->site = id;
  wire::PeerRecord p;
  p.site = id;
  p.address = from;
  p.pid = m.pid;
  p.live = 1;
  p.shell = shell ? 1 : 0;
  peers_[id] = p;
  touch_peer(id);
  admitted_at_[id] = now;
  admit_(id);
  if (options_.failure_timeout > 0 && next_liveness_check_ == proto::kNever)
    next_liveness_check_ = now + options_.failure_timeout / 8;
  if (session_events() & wire::policy_bit(wire::kPolicyNewPeer)) {
    // The session controller decides first; the newcomer hears nothing until it has.
    const std::uint64_t check = (std::uint64_t{boot_} << 40) | ++next_check_;
    peer_checks_[check] = id;
    send(0, wire::PolicyCheck{check,
                              wire::kPolicySession,
                              wire::kPolicyNewPeer,
                              0,
                              0,
                              {"event", "new_peer", "peer", std::to_string(id), "address", from,
                               "shell", shell ? "1" : "0"}});
    return true;
  }
  welcome(id);
  return true;
}

// Everyone learns of the newcomer before it hears of them, then it gets the whole directory.
void LeaderCore::welcome(SiteId id) {
  const wire::PeerRecord& p = peers_[id];
  const bool shell = p.shell != 0;
  broadcast(wire::PeerUpdate{p}, id);
  wire::Welcome w;
  w.you = id;
  for (const auto& [sid, peer] : peers_) w.peers.push_back(peer);
  for (const auto& [sid, rec] : streams_) w.streams.push_back(rec);
  w.settled_below = settled_below();
  w.failure_timeout_us = static_cast<std::uint64_t>(options_.failure_timeout / proto::kMicrosecond);
  if (options_.state && options_.failure_timeout > 0)
    w.resume_timeout_us = static_cast<std::uint64_t>(
        std::max(options_.resume_timeout, options_.failure_timeout) / proto::kMicrosecond);
  send(id, w);
  // A wave under way waits for every live site's answer: a site joining during it (a crashed
  // one restarting, say) is asked too, or the wave never ends (sim seed 6634).
  if (wave_open_ && !shell) send(id, wire::Probe{wave_});
}

bool LeaderCore::live_site(SiteId s) const {
  auto it = peers_.find(s);
  return it != peers_.end() && it->second.live && !it->second.shell;
}

// Nothing goes to a peer that failed or left: its channel would retransmit to nobody.
void LeaderCore::send(SiteId to, const wire::ControlMessage& m) {
  auto it = peers_.find(to);
  if (it == peers_.end() || !it->second.live) return;
  touch_peer(to);  // its channel's state
  send_(to, m);
}

void LeaderCore::done_request(SiteId requester) {
  if (requester != wire::kNoSite && !site::is_shell(requester)) ++requests_done_by_[requester];
  meta_dirty_ = true;
}

void LeaderCore::broadcast(const wire::ControlMessage& m, SiteId except) {
  for (const auto& [id, p] : peers_)
    if (p.live && id != except) send(id, m);
}

void LeaderCore::reply(SiteId to, std::uint64_t req, std::uint64_t code, std::string text) {
  send(to, wire::Reply{req, code, std::move(text)});
}

bool LeaderCore::poll_log(std::string* line) {
  if (log_.empty()) return false;
  *line = std::move(log_.front());
  log_.pop_front();
  return true;
}

std::size_t LeaderCore::queued_ops() const {
  std::size_t n = 0;
  for (const auto& [id, st] : state_) n += st.queue.size();
  return n;
}

Status LeaderCore::check_new_name(const std::string& name) const {
  if (name.empty() || name.size() > wire::kMaxNameBytes)
    return Status::error(Status::Code::kInvalidArgument, "bad stream name \"" + name + "\"");
  if (Status s = site::Directory::check_user_stream(name); !s.ok()) return s;
  if (by_name_.contains(name) || reserved_names_.contains(name))
    return Status::error(Status::Code::kAlreadyExists, "stream \"" + name + "\" exists");
  return Status::ok_status();
}

// ---------------------------------------------------------------------------------------

void LeaderCore::on_message(SiteId from, const wire::ControlMessage& m, Time now) {
  if (const auto* o = std::get_if<wire::OpenReq>(&m); o && o->opener == 0) {
    wire::OpenReq own = *o;  // the requester's own control stream opens (a shell)
    own.opener = site::control_stream(from);
    return on_message(from, own, now);
  }
  auto peer = peers_.find(from);
  if (peer == peers_.end() || !peer->second.live) return;  // not admitted, or fenced
  for (const auto& [check, waiting] : peer_checks_)
    if (waiting == from) return;  // the session controller has not let it in yet
  touch_peer(from);               // its channel's state, and what the message changes of ours
  if (!sender_allowed(from, m)) {
    // An answer from a site that was asked, come after its operation ended otherwise, is no
    // forgery: dropped all the same, but not counted as one.
    if (stale_answer(from, m)) {
      ++stats_.stale_answers;
    } else {
      ++refused_control_[m.index()];
    }
    return;
  }
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, wire::CreateReq> || std::is_same_v<T, wire::DestroyReq> ||
                      std::is_same_v<T, wire::MoveReq> || std::is_same_v<T, wire::AttachReq> ||
                      std::is_same_v<T, wire::DetachReq> || std::is_same_v<T, wire::OpenReq>) {
          accept(from, m);
        } else if constexpr (std::is_same_v<T, wire::PolicyVerdict>) {
          on_verdict(v, now);
        } else if constexpr (std::is_same_v<T, wire::Controls>) {
          on_controls(from, v);
        } else if constexpr (std::is_same_v<T, wire::Installed>) {
          on_installed(v, now);
        } else if constexpr (std::is_same_v<T, wire::Watch>) {
          on_watch(from, v);
        } else if constexpr (std::is_same_v<T, wire::Settled>) {
          on_settled(from, v, now);
        } else if constexpr (std::is_same_v<T, wire::QuiesceReq>) {
          // A shell waits for one quiescence at a time: a second request replaces its first
          // (it asks again when messages it counted were refused meanwhile, ShellApi).
          auto w = std::find_if(waiters_.begin(), waiters_.end(),
                                [&](const Waiter& x) { return x.shell == from; });
          if (w != waiters_.end()) {
            *w = Waiter{from, v.req, v.appended};
          } else {
            waiters_.push_back({from, v.req, v.appended});
          }
          if (!wave_open_ && next_probe_ == proto::kNever) {
            start_wave(now);
          } else if (wave_open_ && failures_seen_) {
            // After a failure a wave waits for every waiting shell's answer: one that came
            // during the wave is asked too.
            send(from, wire::Probe{wave_});
          }
        } else if constexpr (std::is_same_v<T, wire::ProbeReply>) {
          on_probe_reply(from, v, now);
        } else if constexpr (std::is_same_v<T, wire::ErrorReport>) {
          if (options_.log_forwarded_errors) log_.push_back(v.text);
          for (const auto& [id, p] : peers_)
            if (p.live && p.shell && id != v.told) send(id, v);
        } else if constexpr (std::is_same_v<T, wire::Leave>) {
          on_leave(from);
        } else {
          log_.push_back(std::string("leader: unexpected ") + wire::control_name(m) +
                         " from site " + std::to_string(from));
        }
      },
      m);
}

// Every request gets its place in the session-wide order here, on arrival; requests on one
// stream then run one at a time in that order (guarantee 5).
void LeaderCore::accept(SiteId from, const wire::ControlMessage& m) {
  Op op;
  op.requester = from;
  op.request = m;
  std::visit(
      [&](const auto& v) {
        if constexpr (requires { v.req; }) op.req = v.req;
      },
      m);
  auto fail = [&](Status::Code c, std::string text) {
    done_request(from);
    reply(from, op.req, code_of(c), std::move(text));
  };
  auto find = [&](const std::string& name) -> StreamId {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? 0 : it->second;
  };
  if (const auto* c = std::get_if<wire::CreateReq>(&m)) {
    if (Status s = check_new_name(c->name); !s.ok()) return fail(s.code(), s.message());
    const SiteId site = c->site == wire::kNoSite ? (site::is_shell(from) ? 0 : from) : c->site;
    if (!live_site(site))
      return fail(Status::Code::kNotFound, "no such site " + std::to_string(site));
    const SiteId fm = c->failure_manager == wire::kNoSite ? 0 : c->failure_manager;
    if (!live_site(fm)) return fail(Status::Code::kNotFound, "no such site " + std::to_string(fm));
    op.stream = next_stream_++;
    op.target = site;
    reserved_names_.insert(c->name);
    StreamState& st = state_[op.stream];
    if (c->flags & wire::kStreamTemp && site::is_shell(from)) st.temp_owner = from;
    st.busy = true;
    touch(op.stream);
    start(std::move(op));
    return;
  }
  std::string name;
  if (const auto* d = std::get_if<wire::DestroyReq>(&m)) name = d->name;
  if (const auto* mv = std::get_if<wire::MoveReq>(&m)) name = mv->name;
  if (const auto* a = std::get_if<wire::AttachReq>(&m)) name = a->stream;
  if (const auto* o = std::get_if<wire::OpenReq>(&m)) name = o->name;
  StreamId id = 0;
  if (const auto* dt = std::get_if<wire::DetachReq>(&m)) {
    id = streams_.contains(dt->stream) ? dt->stream : 0;
    if (!id) return fail(Status::Code::kNotFound, "no such stream");
  } else {
    if (Status s = site::Directory::check_user_stream(name); !s.ok())
      return fail(s.code(), s.message());
    id = find(name);
    if (!id) return fail(Status::Code::kNotFound, "no such stream \"" + name + "\"");
  }
  if (const auto* mv = std::get_if<wire::MoveReq>(&m)) {
    if (!live_site(mv->site))
      return fail(Status::Code::kNotFound, "no such site " + std::to_string(mv->site));
  }
  if (const auto* a = std::get_if<wire::AttachReq>(&m)) {
    if (a->body.size() > wire::kMaxCodeBytes)
      return fail(Status::Code::kTooLarge,
                  "agent code exceeds " + std::to_string(wire::kMaxCodeBytes) + " bytes");
    // Trusted code is what a site's owner installs there from a file, never what arrives.
    if (a->flags & ~wire::kAgentController)
      return fail(Status::Code::kInvalidArgument, "register_agent: bad agent flags");
  }
  op.stream = id;
  touch(id);
  StreamState& st = state_[id];
  if (st.busy) {
    st.queue.push_back(std::move(op));
    return;
  }
  st.busy = true;
  start(std::move(op));
}

void LeaderCore::start(Op op) {
  const StreamId id = op.stream;
  touch(id);
  if (!op.vetted) {
    // The controllers concerned vet it first (seed 004 figure 3), each in turn.
    if (plan_checks(op)) {
      ask(op);
      if (op.asking != wire::kNoSite) in_flight_[id] = std::move(op);
      return;
    }
    op.vetted = true;
  }
  if (const auto* c = std::get_if<wire::CreateReq>(&op.request)) {
    if (Status room = check_room(op.target, id); !room.ok()) {
      reserved_names_.erase(c->name);
      finish(id, op, code_of(room.code()), "stream_create \"" + c->name + "\": " + room.message());
      next_op(id);
      return;
    }
    op.epoch = 1;
    send(op.target, wire::Install{new_record(id, *c, op.target)});
    in_flight_[id] = std::move(op);
    return;
  }
  auto sit = streams_.find(id);
  if (sit == streams_.end()) {  // destroyed while this op waited
    finish(id, op, code_of(Status::Code::kNotFound), "no such stream");
    next_op(id);
    return;
  }
  wire::StreamRecord& rec = sit->second;
  StreamState& st = state_[id];
  if (const auto* o = std::get_if<wire::OpenReq>(&op.request)) {  // every level allowed it
    if (st.opened.contains(o->opener)) {
      finish(id, op, kOk, rec.name);
      next_op(id);
      return;
    }
    // The stream's site learns of the opener before the opener hears yes: its first message
    // then finds it known (site/opens.cpp).
    op.target = rec.site;
    send(rec.site, wire::Opened{id, o->opener});
    in_flight_[id] = std::move(op);
    return;
  }
  if (const auto* mv = std::get_if<wire::MoveReq>(&op.request)) {
    if (!live_site(mv->site)) {
      finish(id, op, code_of(Status::Code::kNotFound), "no such site " + std::to_string(mv->site));
      next_op(id);
      return;
    }
    if (mv->site == rec.site) {  // a move to where the stream is does nothing
      finish(id, op, kOk, std::to_string(mv->site));
      next_op(id);
      return;
    }
    if (Status room = check_room(mv->site, id); !room.ok()) {
      finish(id, op, code_of(room.code()), "stream_move \"" + rec.name + "\": " + room.message());
      next_op(id);
      return;
    }
    op.epoch = std::max(rec.epoch, st.max_epoch) + 1;
    st.max_epoch = op.epoch;
    op.target = mv->site;
    op.source = rec.site;
    // Code goes to the target once per agent; the stream's state goes straight from the
    // source at its next handler boundary.
    for (std::uint64_t agent : st.agents) ship_code(agent, op.target);
    // The MoveOut first (the move waits for it; datagrams leave in the order they were made).
    // The target installs only the Arrive it was told to expect (a member could send it one
    // of another's stream); an Arrive that overtakes its Expect waits for it.
    send(rec.site, wire::MoveOut{id, op.epoch, op.target, op.requester, op.req});
    send(op.target, wire::Expect{id, op.epoch, rec.site});
    in_flight_[id] = std::move(op);
    return;
  }
  if (const auto* a = std::get_if<wire::AttachReq>(&op.request)) {
    if ((a->flags & wire::kAgentController) && !st.agents.empty()) {
      finish(id, op, code_of(Status::Code::kInvalidArgument),
             "register_agent -controller: stream \"" + rec.name +
                 "\" has agents already; its controller must be its first agent");
      next_op(id);
      return;
    }
    if (options_.max_agents_per_stream && st.agents.size() >= options_.max_agents_per_stream) {
      finish(id, op, code_of(Status::Code::kLimit),
             "register_agent: stream \"" + rec.name + "\" has " + std::to_string(st.agents.size()) +
                 " agents, its limit");
      next_op(id);
      return;
    }
    op.agent = next_agent_++;
    AgentInfo& info = agents_[op.agent];
    info.code = wire::Code{op.agent, id, a->args, a->body, a->cpp_type, a->flags, op.requester};
    ship_code(op.agent, rec.site);
    send(rec.site, wire::Attach{id, op.agent});
    op.target = rec.site;
    in_flight_[id] = std::move(op);
    return;
  }
  if (std::holds_alternative<wire::DestroyReq>(op.request)) {
    send(rec.site, wire::DestroyStream{id});
    op.target = rec.site;
    in_flight_[id] = std::move(op);
    return;
  }
  if (const auto* dt = std::get_if<wire::DetachReq>(&op.request)) {
    // The agent was finalized at its stream's site already; the other sites it visited
    // finalize it now.
    auto ag = agents_.find(dt->agent);
    if (ag != agents_.end()) {
      for (SiteId s : ag->second.visited)
        if (s != rec.site && live_site(s)) send(s, wire::Finalize{dt->agent, id});
      agents_.erase(ag);
    }
    std::erase(st.agents, dt->agent);
    finish(id, op, kOk, {});
    next_op(id);
    return;
  }
}

wire::StreamRecord LeaderCore::new_record(StreamId id, const wire::CreateReq& c, SiteId site) {
  wire::StreamRecord rec;
  rec.id = id;
  rec.name = c.name;
  rec.site = site;
  rec.epoch = 1;
  rec.creator = site;  // the site where the stream was created
  rec.failure_manager = c.failure_manager == wire::kNoSite ? 0 : c.failure_manager;
  rec.flags = c.flags;
  return rec;
}

void LeaderCore::ship_code(std::uint64_t agent, SiteId site) {
  auto it = agents_.find(agent);
  if (it == agents_.end() || it->second.visited.contains(site)) return;
  it->second.visited.insert(site);
  touch(it->second.code.stream);
  send(site, it->second.code);
}

void LeaderCore::finish(StreamId, Op& op, std::uint64_t code, std::string text) {
  if (op.requester == wire::kNoSite) return;  // the leader's own (a recovery)
  if (code != kOk && !site::is_shell(op.requester)) {
    // A handler's request: the handler could not wait for it, so its error goes where the
    // handler's own errors go, to the shells, ahead of any answer to their waits.
    const wire::ErrorReport report{"site " + std::to_string(op.requester) + ": " + text};
    if (options_.log_forwarded_errors) log_.push_back(report.text);
    for (const auto& [id, p] : peers_)
      if (p.live && p.shell) send(id, report);
  }
  done_request(op.requester);
  reply(op.requester, op.req, code, std::move(text));
}

void LeaderCore::next_op(StreamId stream) {
  auto it = state_.find(stream);
  if (it == state_.end()) return;
  touch(stream);
  StreamState& st = it->second;
  st.busy = false;
  if (st.queue.empty()) {
    if (!streams_.contains(stream)) state_.erase(it);
    return;
  }
  Op op = std::move(st.queue.front());
  st.queue.pop_front();
  st.busy = true;
  start(std::move(op));
}

void LeaderCore::on_installed(const wire::Installed& m, Time now) {
  auto fit = in_flight_.find(m.stream);
  if (fit == in_flight_.end()) return;
  Op op = std::move(fit->second);
  // Not the answer we wait for (a move settled otherwise after a failure may still report its
  // arrival): stale. (That it came from the site asked, sender_allowed checked.)
  const bool moving = std::holds_alternative<wire::MoveReq>(op.request) ||
                      std::holds_alternative<wire::Recover>(op.request);
  const bool attaching = std::holds_alternative<wire::AttachReq>(op.request);
  if ((moving && m.epoch != op.epoch) || (attaching && m.agent != op.agent) ||
      (!attaching && m.agent != 0) || op.settle_with != wire::kNoSite) {
    fit->second = std::move(op);
    return;
  }
  in_flight_.erase(fit);
  const StreamId id = m.stream;
  touch(id);
  if (const auto* c = std::get_if<wire::CreateReq>(&op.request)) {
    reserved_names_.erase(c->name);
    const wire::StreamRecord rec = new_record(id, *c, op.target);
    streams_[id] = rec;
    count_hosted(wire::kNoSite, rec.site);
    by_name_[rec.name] = id;
    broadcast(wire::Location{rec});
    finish(id, op, kOk, rec.name);
  } else if (std::holds_alternative<wire::MoveReq>(op.request)) {
    move_took_effect(id, op, now);
  } else if (const auto* r = std::get_if<wire::Recover>(&op.request)) {
    if (m.code != kOk) {
      log_.push_back("recovery of stream \"" + r->stream.name + "\" at site " +
                     std::to_string(op.target) + " failed: " + m.text);
    } else {
      auto old = streams_.find(id);
      count_hosted(old == streams_.end() ? wire::kNoSite : old->second.site, r->stream.site);
      if (options_.max_streams_per_site && hosted_[r->stream.site] > options_.max_streams_per_site)
        log_.push_back("leader: site " + std::to_string(r->stream.site) + " hosts " +
                       std::to_string(hosted_[r->stream.site]) +
                       " streams, over its limit, after recovering stream \"" + r->stream.name +
                       "\" (a recovery is never refused)");
      if (old != streams_.end()) moved(id, old->second.site);
      streams_[id] = r->stream;
      flush_locations_of(id);
      // Every sender re-sends there at once, from what it knows was consumed.
      broadcast(wire::Location{r->stream}, op.target);
    }
  } else if (std::holds_alternative<wire::AttachReq>(op.request)) {
    if (m.code != kOk) {
      agents_.erase(op.agent);
      finish(id, op, m.code, m.text);
    } else {
      state_[id].agents.push_back(op.agent);
      finish(id, op, kOk, std::to_string(op.agent));
    }
  } else if (std::holds_alternative<wire::DestroyReq>(op.request)) {
    complete_destroy(id, m.final_in);
    finish(id, op, kOk, {});
  } else if (const auto* o = std::get_if<wire::OpenReq>(&op.request)) {
    if (m.code == kOk) {
      state_[id].opened.insert(o->opener);
      finish(id, op, kOk, streams_[id].name);
    } else {
      finish(id, op, m.code, m.text);
    }
  }
  next_op(id);
}

// A move took effect: the target has the stream (it said Installed, or Settled when asked
// after the source failed). The target answers the requester itself, when the stream's
// relocation handlers have run; should it fail before that answer gets through, the leader
// answers instead (sim seed 15). A repeat is dropped there. That holds for a move settled
// with its target too: its answer may still be on its way, or die with it (sim seeds
// 40003902, 127078: a restarted leader settled moves from site 0 whose targets then failed
// with the answer unsent behind a partition, and the shell waited for ever).
void LeaderCore::move_took_effect(StreamId id, const Op& op, Time now) {
  wire::StreamRecord& rec = streams_[id];
  count_hosted(rec.site, op.target);
  moved(id, rec.site);
  rec.site = op.target;
  rec.epoch = op.epoch;
  publish_move(rec, op.requester, now);
  done_request(op.requester);
  if (options_.failure_timeout > 0 && op.requester != wire::kNoSite && op.requester != op.target)
    delegated_[op.target].push_back({op.requester, op.req, rec, now});
}

void LeaderCore::complete_destroy(StreamId id, const std::vector<wire::InChannel>& final_in) {
  touch(id);
  auto sit = streams_.find(id);
  if (sit != streams_.end()) {
    wire::StreamRecord rec = sit->second;
    for (std::uint64_t agent : state_[id].agents) {
      auto ag = agents_.find(agent);
      if (ag == agents_.end()) continue;
      for (SiteId s : ag->second.visited)
        if (s != rec.site && live_site(s)) send(s, wire::Finalize{agent, id});
      agents_.erase(ag);
    }
    by_name_.erase(rec.name);
    count_hosted(rec.site, wire::kNoSite);
    streams_.erase(sit);
    const SiteId last = rec.site;
    rec.site = wire::kNoSite;
    rec.epoch = std::max(rec.epoch, state_[id].max_epoch) + 1;
    if (last != wire::kNoSite) retire(id, last, rec.epoch);
    flush_locations_of(id);
    broadcast(wire::Location{rec, final_in, settled_below()});
  }
  state_[id].agents.clear();
}

// Senders must hear of a move at once (they re-send there); the other replicas serve queries,
// which may lag a little, so they get moves in batches: a fast-moving stream then costs a hop
// four messages on its critical path and a datagram per sender site, not one per site.
void LeaderCore::publish_move(const wire::StreamRecord& rec, SiteId requester, Time now) {
  const StreamState& st = state_[rec.id];
  bool batched = false;
  for (const auto& [id, p] : peers_) {
    // The target installed it and told the requester (MoveOut::requester); not site 0, this
    // process: it may have restarted since it asked, and then takes no word from the target
    // for a request of its old process (SiteCore::admit_control). Telling it costs no datagram.
    if (!p.live || id == rec.site || (id == requester && id != 0)) continue;
    // A durable stream's failure manager takes its checkpoints only from the host it knows
    // (SiteCore::admit_checkpoint): it hears of each move at once.
    const bool manages = (rec.flags & wire::kStreamDurable) && id == rec.failure_manager;
    if (p.shell || id == 0 || manages || st.watchers.contains(id)) {
      send(id, wire::Location{rec});
    } else {
      batched = true;
    }
  }
  if (!batched) return;
  // Not only the latest: every site the stream was at is told, so that a receiver whose word
  // is batched can place the copies such a site sent (a copy from a site its receiver never
  // heard of would be taken for a lie: Transport::on_placed). One record per site, the
  // latest: a stream bouncing between two sites costs two.
  std::vector<wire::StreamRecord>& pending = batched_locations_[rec.id];
  std::erase_if(pending, [&](const wire::StreamRecord& r) { return r.site == rec.site; });
  pending.push_back(rec);
  if (locations_due_ == proto::kNever) locations_due_ = now + options_.location_batch;
}

void LeaderCore::flush_locations() {
  locations_due_ = proto::kNever;
  while (!batched_locations_.empty()) flush_locations_of(batched_locations_.begin()->first);
}

void LeaderCore::flush_locations_of(StreamId stream) {
  auto pending = batched_locations_.find(stream);
  if (pending == batched_locations_.end()) return;
  auto st = state_.find(stream);
  for (const wire::StreamRecord& rec : pending->second) {
    for (const auto& [id, p] : peers_) {
      if (!p.live || p.shell || id == 0 || id == rec.site) continue;
      if (st != state_.end() && st->second.watchers.contains(id)) continue;
      send(id, wire::Location{rec});
    }
  }
  batched_locations_.erase(pending);
}

void LeaderCore::on_watch(SiteId from, const wire::Watch& m) {
  if (site::is_shell(from)) return;
  auto rec = streams_.find(m.stream);
  if (rec != streams_.end() && state_[m.stream].watchers.insert(from).second) {
    touch(m.stream);
    // Its replica may be a batch behind, which it will not get now that it watches: a sender
    // must start from where the stream is, and a receiver place every site it was at.
    auto pending = batched_locations_.find(m.stream);
    if (pending != batched_locations_.end())
      for (const wire::StreamRecord& r : pending->second)
        if (r.site != from) send(from, wire::Location{r});
  }
  // After every word the site was owed (a watcher got each move at once, the others in the
  // batches sent before): whatever came to it before it asked is judged against what it now
  // knows, and the site a move in flight goes to (destroyed or unknown streams included).
  if (m.ask == 0) return;
  wire::Placed p{m.stream, m.ask, moving_to(m.stream)};
  if (auto r = retired_.find(m.stream); r != retired_.end() && rec == streams_.end()) {
    p.destroyed_at = r->second.site;
    p.destroy_epoch = r->second.epoch;
  }
  send(from, p);
}

SiteId LeaderCore::moving_to(StreamId stream) const {
  auto it = in_flight_.find(stream);
  if (it == in_flight_.end() || it->second.asking != wire::kNoSite) return wire::kNoSite;
  const Op& op = it->second;
  const bool hands_over = std::holds_alternative<wire::CreateReq>(op.request) ||
                          std::holds_alternative<wire::MoveReq>(op.request) ||
                          std::holds_alternative<wire::Recover>(op.request);
  return hands_over ? op.target : wire::kNoSite;
}

// Only a shell says Leave (its sender rule, kShell): a site leaves by failing.
void LeaderCore::on_leave(SiteId shell) {
  auto it = peers_.find(shell);
  if (it == peers_.end()) return;
  it->second.live = 0;
  touch_peer(shell);
  drop_temp_streams(shell);
  broadcast(wire::PeerUpdate{it->second});
  forget_shell(shell);
}

// A shell's -temp streams go with it.
void LeaderCore::drop_temp_streams(SiteId shell) {
  std::erase_if(waiters_, [shell](const Waiter& w) { return w.shell == shell; });
  for (auto& [id, st] : state_) {
    if (st.temp_owner != shell || !streams_.contains(id)) continue;
    touch(id);
    Op op;
    op.requester = wire::kNoSite;
    op.req = 0;
    op.stream = id;
    op.vetted = true;  // the session's own doing, as its -temp contract says
    op.request = wire::DestroyReq{0, streams_[id].name};
    if (st.busy) {
      st.queue.push_back(std::move(op));
    } else {
      st.busy = true;
      start(std::move(op));
    }
  }
}

void LeaderCore::shutdown_session() { broadcast(wire::Shutdown{0}); }

}  // namespace mstream::leader
