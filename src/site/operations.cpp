// SiteCore's pending operations at a handler boundary: attaches, moves out and in,
// recoveries, settles and destroys as the leader orders them. Beside site_core.cpp.
#include <algorithm>
#include <cstring>
#include <limits>
#include <map>

#include "site/handler_errors.hpp"
#include "site/loading.hpp"
#include "site/per_source_queue.hpp"
#include "site/site_core.hpp"
#include "site/site_internal.hpp"

namespace mstream::site {

// ---------------------------------------------------------------------------------------
// Pending operations at a handler boundary

void SiteCore::apply_op(Hosted& h, PendingOp op) {
  switch (op.kind) {
    case PendingOp::Kind::kMoveOut: {
      if (h.durable &&
          (h.durable->in_flight || !h.durable->unsaved.empty() || !h.durable->held.empty())) {
        // The stream leaves with everything it consumed stored: its new site checkpoints
        // from there on.
        h.ops.push_front(std::move(op));
        maybe_checkpoint(h);
        return;
      }
      if (trace_) trace_({HandlerTrace::Kind::kDepart, h.rec.id, 0, 0, op.move.epoch, {}});
      const StreamId id = h.rec.id;
      if (h.briefcases_at_rest) {
        // Saved when it arrived, and no handler ran since: a worker round trip saved (the
        // worker hand-off is about a fifth of a hop, `mstream bench move`).
        std::vector<wire::AgentState> b = std::move(*h.briefcases_at_rest);
        h.briefcases_at_rest.reset();
        depart(id, op.move, std::move(b));  // may destroy h
        return;
      }
      h.departing = true;
      save_briefcases(h, [this, id, move = op.move](std::vector<wire::AgentState> b) {
        depart(id, move, std::move(b));
      });
      return;
    }
    case PendingOp::Kind::kDestroy:
      destroy(h);
      return;
    case PendingOp::Kind::kAttach:
      attach(h, op.agent);
      return;
    case PendingOp::Kind::kDetach:
      detach(h, op.agent);
      return;
    case PendingOp::Kind::kPolicy:
      run_policy(h.rec.id, op.agent, op.check);
      return;
  }
}

void SiteCore::attach(Hosted& h, std::uint64_t agent) {
  const StreamId id = h.rec.id;
  auto code = code_.find(agent);
  if (loaded_.contains(agent) || code == code_.end()) {
    const Status s = loaded_.contains(agent)
                         ? Status::error(Status::Code::kAlreadyExists,
                                         "agent " + std::to_string(agent) + " is attached")
                         : Status::error(Status::Code::kInternal,
                                         "agent " + std::to_string(agent) + " has no code here");
    reply_installed(
        wire::Installed{id, h.rec.epoch, agent, static_cast<std::uint64_t>(s.code()), s.message()});
    return;
  }
  auto l = std::make_shared<Loading>();
  l->agent = agent;
  l->code = code->second;
  l->run.ctx = tcl::HandlerContext{h.rec.name, {}, agent};
  submit(
      id, [l](Lane& lane) { load_on(lane, *l); },
      [this, id, l] {
        auto it = hosted_.find(id);
        Hosted* hp = it == hosted_.end() ? nullptr : it->second.get();
        carry_out(hp, id, l->run);
        const std::uint64_t epoch = hp ? hp->rec.epoch : 0;
        if (!l->status.ok()) {
          reply_installed(wire::Installed{id, epoch, l->agent,
                                          static_cast<std::uint64_t>(l->status.code()),
                                          error_text(l->status.message(), l->error_info)});
          return;
        }
        loaded_[l->agent] = l->has_append;
        initial_briefcases_[l->agent] = std::move(l->initial);
        if (hp) {
          hp->agents.push_back(l->agent);
          refresh_append_flag(*hp);
        }
        reply_installed(wire::Installed{id, epoch, l->agent, 0, {}});
      });
}

// agent_exit: the agent is finalized here, then the leader finalizes it at the other sites
// it visited.
void SiteCore::detach(Hosted& h, std::uint64_t agent) {
  auto it = std::find(h.agents.begin(), h.agents.end(), agent);
  if (it == h.agents.end()) return;
  h.agents.erase(it);
  const StreamId id = h.rec.id;
  auto run = std::make_shared<HandlerRun>();
  run->ctx = tcl::HandlerContext{h.rec.name, {}, agent};
  submit(
      id,
      [run, agent](Lane& lane) {
        (void)lane.with(run.get(),
                        [&](AgentRunner& runner) { return runner.finalize(agent, run->ctx); });
      },
      [this, id, run, agent] {
        auto hit = hosted_.find(id);
        carry_out(hit == hosted_.end() ? nullptr : hit->second.get(), id, *run);
        loaded_.erase(agent);
        initial_briefcases_.erase(agent);
        if (hit != hosted_.end()) refresh_append_flag(*hit->second);
        code_.erase(agent);
        ++counters_.requests;
        std::uint64_t req = send_request(wire::DetachReq{0, id, agent});
        handler_requests_.insert(req);
      });
}

// The leader's Finalize, at a site the agent's stream visited and left.
void SiteCore::finalize_visited(const wire::Finalize& m) {
  code_.erase(m.agent);
  if (!loaded_.contains(m.agent)) return;
  auto run = std::make_shared<HandlerRun>();
  const wire::StreamRecord* rec = view_->directory.find(m.stream);
  run->ctx = tcl::HandlerContext{rec ? rec->name : std::string(), {}, m.agent};
  auto out = std::make_shared<tcl::HandlerOutcome>();
  const std::uint64_t agent = m.agent;
  submit(
      m.stream,
      [run, out, agent](Lane& lane) {
        *out = lane.with(run.get(),
                         [&](AgentRunner& runner) { return runner.finalize(agent, run->ctx); });
      },
      [this, run, out, agent, stream = m.stream] {
        carry_out(nullptr, stream, *run);
        loaded_.erase(agent);
        initial_briefcases_.erase(agent);
        if (out->ran && !out->ok)
          report_error("error in finalize handler of agent " + std::to_string(agent) + ": " +
                       out->result);
      });
}

void SiteCore::depart(StreamId id, const wire::MoveOut& m,
                      std::vector<wire::AgentState> briefcases) {
  auto it = hosted_.find(id);
  if (it == hosted_.end()) return;
  Hosted& h = *it->second;
  h.departing = false;
  if (h.move_called_off == m.epoch) {  // the target failed meanwhile (on_settle): we keep it
    h.move_called_off = 0;
    flush_opened(h);
    return;
  }
  wire::Arrive a;
  a.stream = h.rec;
  a.stream.site = m.target;
  a.stream.epoch = m.epoch;
  a.agents = h.agents;
  a.requester = m.requester;
  a.req = m.req;
  a.opened = h.opened;
  a.waiting = take_waiting(h.rec.id);
  a.briefcases = std::move(briefcases);
  for (StreamId from : h.in_peers) {
    auto st = transport_.export_recv_state({from, h.rec.id});
    if (st.ok())
      a.in.push_back({from, st->consumed_up_to, st->reply_site, st->reply_incarnation, st->origin});
  }
  for (StreamId to : h.out_peers) {
    proto::ChannelKey key{h.rec.id, to};
    auto st = transport_.take_send_state(key);
    if (!st.ok()) continue;
    a.out.push_back(out_channel(key, *st));
    drop_overflow(key);
    auto s = senders_to_.find(to);
    if (s != senders_to_.end()) {
      s->second.erase(h.rec.id);
      if (s->second.empty()) senders_to_.erase(s);
    }
  }
  // Nothing of the stream stays here but cached code and agent globals (guarantee 4). Messages
  // delivered but not consumed are dropped: their senders re-send them to the new site.
  (void)transport_.close_stream(id);
  // Its appends still waiting for an open go out under its numbering when the verdict comes
  // (on_open_answer), and only then is the numbering forgotten.
  if (!opens_waiting(id)) transport_.set_sender_origin(id, 0);
  ++counters_.moves_out;
  hosted_.erase(id);  // h is gone
  send_control(m.target, control_stream(m.target), a);
}

void SiteCore::on_arrive(SiteId from, wire::Arrive a) {
  if (auto r = refused_arrivals_.find(a.stream.id);
      r != refused_arrivals_.end() && a.stream.epoch <= r->second)
    return;
  auto e = expected_.find(a.stream.id);
  const bool unchecked = options_.sender_rules_off &
                         (1u << static_cast<unsigned>(wire::Sender::kMoveSource));  // tests
  if (!unchecked &&
      (e == expected_.end() || e->second.epoch != a.stream.epoch || e->second.source != from)) {
    // The Arrive may overtake the leader's Expect (they come from different sites): it waits
    // for it, but a member's forgeries must not hold this site busy, grow without bound, or
    // push out another source's real Arrive (whose source kept nothing of the stream): the
    // bound is per source, and its oldest goes first.
    push_per_source(&unexpected_, from, std::move(a), kMaxUnexpectedPerSource,
                    [this](SiteId s, const wire::Arrive& old) { refuse_control(s, old); });
    return;
  }
  if (e != expected_.end()) expected_.erase(e);
  parked_.push_back(std::move(a));
  try_install_parked();
}

void SiteCore::on_expect(const wire::Expect& m) {
  std::optional<wire::Arrive> found;
  for (auto it = unexpected_.begin(); it != unexpected_.end();) {
    if (it->second.stream.id != m.stream) {
      ++it;
    } else if (!found && it->second.stream.epoch == m.epoch && it->first == m.source) {
      found = std::move(it->second);
      it = unexpected_.erase(it);
    } else {
      // Of this stream, but not the move the leader announced: no member's to send.
      refuse_control(it->first, it->second);
      it = unexpected_.erase(it);
    }
  }
  if (!found) {
    expected_[m.stream] = Expected{m.epoch, m.source};
    return;
  }
  parked_.push_back(std::move(*found));
  try_install_parked();
}

// The stream's site failed and this is its failure manager: it starts here from its initial
// state (nothing of its briefcases or channels survived), or a durable one from its last
// checkpoint here. Its senders resume from what they know was consumed (the floor of their
// copies); the channels it opens start a new numbering (rec.origin), so receivers do not take
// its new messages for its old ones.
void SiteCore::on_recover(const wire::Recover& m) {
  if (hosted_.contains(m.stream.id)) {  // cannot happen: the leader recovers what it lost
    reply_installed(wire::Installed{m.stream.id, m.stream.epoch, 0,
                                    static_cast<std::uint64_t>(Status::Code::kAlreadyExists),
                                    "stream already here"});
    return;
  }
  wire::Arrive a;
  a.stream = m.stream;
  a.agents = m.agents;
  // A durable stream starts from its last checkpoint here, if there is one.
  if (m.stream.flags & wire::kStreamDurable) (void)restore_checkpoint(m, &a);
  // Who opened it: the leader's record, which every open reached before it was answered.
  for (std::uint64_t o : m.opened)
    if (std::find(a.opened.begin(), a.opened.end(), o) == a.opened.end()) a.opened.push_back(o);
  // The leader sent every agent's code before this, on the same channel.
  if (!install_arrival(a, true)) {
    reply_installed(wire::Installed{m.stream.id, m.stream.epoch, 0,
                                    static_cast<std::uint64_t>(Status::Code::kInternal),
                                    "agent code missing for a recovery"});
  }
}

// One end of a move failed; the leader asks the other whether it has the stream.
void SiteCore::on_settle(const wire::Settle& m) {
  bool present = false;
  auto it = hosted_.find(m.stream);
  if (it != hosted_.end()) {
    Hosted& h = *it->second;
    if (h.rec.epoch >= m.epoch) {
      present = true;  // the target: it arrived
    } else {
      // The source: the move is called off, whether its MoveOut still waits or its briefcases
      // are being saved (depart() then keeps the stream).
      present = true;
      bool queued = false;
      for (std::size_t n = h.ops.size(); n > 0; --n) {
        PendingOp op = std::move(h.ops.front());
        h.ops.pop_front();
        if (op.kind == PendingOp::Kind::kMoveOut && op.move.epoch == m.epoch) {
          queued = true;
          continue;
        }
        h.ops.push_back(std::move(op));
      }
      if (!queued) h.move_called_off = m.epoch;
    }
  }
  for (const wire::Arrive& a : parked_)
    if (a.stream.id == m.stream && a.stream.epoch >= m.epoch) present = true;
  send_control(0, kLeaderStream, wire::Settled{m.stream, m.epoch, present ? 1u : 0u});
}

std::uint64_t SiteCore::held_messages() const {
  std::uint64_t n = transport_.unconsumed_messages(
      [](proto::ChannelKey key) { return !is_control(key.to) && key.to != kLeaderStream; });
  for (const auto& [key, q] : overflow_)
    if (!is_control(key.to) && key.to != kLeaderStream) n += q.size();
  return n;
}

void SiteCore::try_install_parked() {
  // An arrival may overtake the code the leader sent for it (they come on different
  // channels): it waits here until every agent's code is in.
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (install_arrival(*it, false)) {
      it = parked_.erase(it);
    } else {
      ++it;
    }
  }
}

// An arriving stream's agents, on its lane: first-visit initialization, then the arriving
// briefcases (they win over what initialization set), then the relocation handlers.
struct SiteCore::Arriving {
  std::string stream;
  std::vector<std::uint64_t> agents;  // in attach order
  std::vector<Loading> loads;         // the agents new here
  std::vector<wire::AgentState> briefcases;
  std::vector<std::string> briefcase_errors;
  std::vector<std::uint64_t> running;  // loaded, in attach order
  std::vector<std::pair<std::uint64_t, bool>> has_append;
  std::vector<std::pair<HandlerRun, tcl::HandlerOutcome>> relocations;
  std::vector<wire::AgentState> at_rest;  // the briefcases once the handlers ran
  std::uint32_t requester = wire::kNoSite;
  std::uint64_t req = 0;
  bool recovery = false;    // from Recover: failure handlers instead of relocation handlers
  bool controlled = false;  // agents[0] is the stream's controller: its handler runs first
};

bool SiteCore::install_arrival(wire::Arrive& a, bool recovery) {
  for (std::uint64_t agent : a.agents)
    if (!loaded_.contains(agent) && !code_.contains(agent)) return false;
  const StreamId id = a.stream.id;
  auto owned = std::make_unique<Hosted>();
  Hosted& h = *owned;
  h.rec = a.stream;
  h.rec.site = options_.self;
  h.opened = a.opened;
  hosted_[id] = std::move(owned);
  if (h.rec.flags & wire::kStreamDurable) h.durable = std::make_unique<DurableState>();
  apply_record(h.rec);
  (void)transport_.open_stream(id);
  transport_.set_sender_origin(id, h.rec.origin);
  for (const auto& in : a.in) {
    (void)transport_.import_recv_state(
        {in.from, id},
        proto::RecvState{in.consumed_up_to, in.reply_site, in.reply_incarnation, in.origin});
    h.in_peers.insert(in.from);
  }
  for (auto& oc : a.out) {
    const wire::StreamRecord* to = view_->directory.find(oc.to);
    proto::SendState st = send_state_of(oc, to ? to->site : oc.dest);
    if (view_->directory.destroyed(oc.to)) {
      // The receiver is gone (destroyed while we moved): what it did not consume is discarded.
      count_discarded(id, not_consumed(st, view_->directory.final_consumed(oc.to, id)));
      continue;
    }
    if (import_channel({id, oc.to}, std::move(st))) {
      h.out_peers.insert(oc.to);
      add_sender(id, oc.to);
    }
  }
  // The leader does not tell the target of its own arrival: this site's senders to the
  // stream, now that its channels' states are in, re-send to it here.
  if (senders_to_.contains(id)) {
    retry_at_.erase(id);
    transport_.relocate_receiver(id, options_.self);
  }
  // Appends it made elsewhere that wait for opens wait here now, ahead of any it makes here.
  wait_again(h, std::move(a.waiting));
  ++counters_.moves_in;
  if (trace_)
    trace_({recovery ? HandlerTrace::Kind::kRecover : HandlerTrace::Kind::kInstall,
            id,
            0,
            0,
            h.rec.epoch,
            {}});
  // Nothing is delivered to the stream until its lane has run all this (guarantee 4).
  auto work = std::make_shared<Arriving>();
  work->stream = h.rec.name;
  work->agents = a.agents;
  work->briefcases = std::move(a.briefcases);
  work->requester = a.requester;
  work->req = a.req;
  work->recovery = recovery;
  for (std::uint64_t agent : a.agents) {
    if (loaded_.contains(agent)) {
      // Cached here from an earlier visit, with the briefcase it had when the stream left: a
      // recovered stream starts from its initial state instead (sim seed 231).
      // (A durable stream's checkpoint, if any, brought its briefcase: that one wins.)
      const bool restored =
          std::any_of(work->briefcases.begin(), work->briefcases.end(),
                      [agent](const wire::AgentState& b) { return b.agent == agent; });
      if (recovery && !restored) {
        auto initial = initial_briefcases_.find(agent);
        if (initial != initial_briefcases_.end())
          work->briefcases.push_back({agent, initial->second});
      }
      continue;
    }
    Loading& l = work->loads.emplace_back();
    l.agent = agent;
    l.code = code_[agent];
    l.run.ctx = tcl::HandlerContext{h.rec.name, {}, agent};
  }
  submit(
      id,
      [work, trace = trace_, epoch = h.rec.epoch, id](Lane& lane) {
        for (Loading& l : work->loads) load_on(lane, l);
        for (std::uint64_t agent : work->agents)
          if (lane.runner().loaded(agent)) work->running.push_back(agent);
        for (const auto& b : work->briefcases) {
          if (!lane.runner().loaded(b.agent)) continue;
          Status s = lane.runner().restore_briefcase(b.agent, b.briefcase);
          if (!s.ok())
            work->briefcase_errors.push_back("briefcase of agent " + std::to_string(b.agent) +
                                             " not restored: " + s.message());
        }
        const auto kind =
            work->recovery ? HandlerTrace::Kind::kFailure : HandlerTrace::Kind::kRelocation;
        if (trace) trace({kind, id, 0, 0, epoch, {}});
        // A recovered stream runs its failure handlers where a moved one runs its relocation
        // handlers: after initialization, before any append handler.
        const auto event = work->recovery ? tcl::Event::kFailure : tcl::Event::kRelocation;
        bool vetoed = false;
        for (std::uint64_t agent : work->running) {
          work->has_append.push_back(
              {agent, lane.runner().has_handler(agent, tcl::Event::kAppend)});
          if (vetoed) continue;
          auto& [run, out] = work->relocations.emplace_back();
          run.ctx = tcl::HandlerContext{work->stream, {}, agent};
          out = lane.with(
              &run, [&](AgentRunner& runner) { return runner.run(agent, event, run.ctx, {}); });
          vetoed = work->controlled && agent == work->agents.front() && vetoes(out);
        }
        // As save_briefcases() would at the next move, if nothing runs before it.
        for (std::uint64_t agent : work->running)
          work->at_rest.push_back({agent, lane.runner().save_briefcase(agent)});
      },
      [this, id, work] { arrived(id, *work); });
  return true;
}

proto::SendState SiteCore::send_state_of(const wire::OutChannel& oc, SiteId dest) {
  proto::SendState st;
  st.next_seq = oc.next_seq;
  st.consumed_up_to = oc.consumed_up_to;
  st.incarnation = oc.incarnation;
  st.origin = oc.origin;
  st.dest = dest;
  for (const auto& m : oc.unconsumed) st.unconsumed.emplace_back(m.begin(), m.end());
  return st;
}

bool SiteCore::import_channel(proto::ChannelKey key, proto::SendState st) {
  if (st.consumed_up_to + 1 + st.unconsumed.size() != st.next_seq) return false;
  // The old site sent its overflow along (depart), so the buffer may hold more than a
  // channel accepts, and a receiver refuses what lies beyond its window (a local one drops it
  // for good). Re-appended in order, the messages get the numbers they had, and what does not
  // fit overflows here as it did there.
  std::vector<wire::Bytes> messages = std::move(st.unconsumed);
  st.unconsumed.clear();
  st.next_seq = st.consumed_up_to + 1;
  const SiteId dest = st.dest;
  if (!transport_.import_send_state(key, std::move(st)).ok()) return false;
  for (wire::Bytes& m : messages) (void)append_raw(key.from, key.to, dest, std::move(m));
  return true;
}

void SiteCore::arrived(StreamId id, Arriving& work) {
  auto it = hosted_.find(id);
  if (it == hosted_.end()) return;
  Hosted& h = *it->second;
  std::vector<ArrivalFailure> failures;
  std::vector<tcl::HandlerOutcome> load_errors;
  load_errors.reserve(work.loads.size());  // failures point into it
  for (Loading& l : work.loads) {
    carry_out(&h, id, l.run);
    if (!l.status.ok()) {
      tcl::HandlerOutcome& out = load_errors.emplace_back();
      out.ran = true;
      out.ok = false;
      out.result = l.status.message();
      out.error_info = l.error_info;
      failures.push_back({l.agent, "initialization", &out});
    } else {
      initial_briefcases_[l.agent] = std::move(l.initial);
    }
  }
  h.agents = work.running;
  // Nothing else of it ran since: it was busy with this work until now (submit()).
  h.briefcases_at_rest = std::move(work.at_rest);
  for (const auto& [agent, has] : work.has_append) loaded_[agent] = has;
  refresh_append_flag(h);
  for (std::string& e : work.briefcase_errors)
    report_error("site " + std::to_string(options_.self) + ": " + e);
  for (auto& [run, out] : work.relocations) {
    carry_out(&h, id, run);
    if (out.ran && !out.ok)
      failures.push_back({run.ctx.agent, work.recovery ? "failure" : "relocation", &out});
  }
  // The requester learns the new location and gets its answer from here, one hop sooner than
  // through the leader; the leader tells everyone else. Its next request on this stream still
  // waits at the leader behind this move's Installed, so order is kept. The handler errors go
  // between the two: after the Location, so that a shell takes a report from here as from the
  // stream's host, and before the answer its move waits for. The answer is made before the
  // Installed, as datagrams leave in the order they were made: the requester waits for it.
  const SiteId r = work.requester;
  if (r != wire::kNoSite) send_control(r, control_stream(r), wire::Location{h.rec});
  wire::HandlerFailure failure;
  if (!failures.empty())
    failure = report_arrival_failures(id, work.stream, work.agents, std::move(failures), r);
  if (r != wire::kNoSite)
    send_control(r, control_stream(r),
                 wire::Reply{work.req, 0, std::to_string(options_.self), std::move(failure)});
  reply_installed(wire::Installed{id, h.rec.epoch, 0, 0, {}});
}

void SiteCore::destroy(Hosted& h) {
  const StreamId id = h.rec.id;
  auto runs = std::make_shared<std::vector<std::pair<HandlerRun, tcl::HandlerOutcome>>>();
  for (std::uint64_t agent : h.agents)
    runs->push_back({HandlerRun{tcl::HandlerContext{h.rec.name, {}, agent}, {}, false, false}, {}});
  submit(
      id,
      [runs](Lane& lane) {
        for (auto& [run, out] : *runs)
          out = lane.with(
              &run, [&](AgentRunner& runner) { return runner.finalize(run.ctx.agent, run.ctx); });
      },
      [this, id, runs] {
        auto it = hosted_.find(id);
        for (auto& [run, out] : *runs) {
          carry_out(it == hosted_.end() ? nullptr : it->second.get(), id, run);
          loaded_.erase(run.ctx.agent);
          initial_briefcases_.erase(run.ctx.agent);
          // The leader's Finalize goes to the other sites the agent visited, not here: its code
          // would stay cached for ever.
          code_.erase(run.ctx.agent);
          if (out.ran && !out.ok)
            report_handler_error(id, run.ctx.stream, run.ctx.agent, "finalize", out);
        }
        destroy_here(id);
      });
}

void SiteCore::destroy_here(StreamId id) {
  auto it = hosted_.find(id);
  if (it == hosted_.end()) return;
  Hosted& h = *it->second;
  // A durable stream's consumption and appends not yet checkpointed are carried out now: it
  // will not be recovered any more, and nothing it accepted is lost.
  if (h.durable) {
    commit_durable(h, false);
    if (options_.store) (void)options_.store->erase(id);
  }
  // Messages delivered but not consumed die with the stream. They are not counted here: their
  // senders still hold them and count them as discarded when they learn of the destruction.
  // What the stream appended before it died is still delivered (nothing accepted is lost): its
  // outgoing channels stay until consumed, followed through receiver moves.
  wire::Installed done{id, 0, 0, 0, {}, {}};
  for (StreamId from : h.in_peers) {
    auto st = transport_.export_recv_state({from, id});
    if (st.ok())
      done.final_in.push_back(
          {from, st->consumed_up_to, st->reply_site, st->reply_incarnation, st->origin});
  }
  (void)transport_.close_stream(id);
  // Its appends still waiting for an open go out under its numbering (on_open_answer), as
  // after a move: numbered under origin 0 instead, a recovered stream's would restart a pair
  // its receiver has already consumed from (sim seed 57 with ephemeral forwards).
  if (!opens_waiting(id)) transport_.set_sender_origin(id, 0);
  const std::unordered_set<StreamId> out = std::move(h.out_peers);
  hosted_.erase(id);
  retire_sender(id, out);
  reply_installed(done);
}

void SiteCore::add_output(std::string_view text, bool nonewline) {
  partial_line_.append(text);
  if (nonewline) return;
  // Stamped with the time of the step that carries out the handler's effects, before any of
  // them is sent: a line another process prints in reaction comes out after it.
  if (options_.keep_output) output_.push_back({now_, std::move(partial_line_)});
  partial_line_.clear();
}

}  // namespace mstream::site
