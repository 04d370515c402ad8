// SiteCore's deliveries: messages routed to control streams and to hosted streams' handlers,
// run on lanes, and what their runs carried out. Beside site_core.cpp.
#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <optional>

#include "site/handler_errors.hpp"
#include "site/loading.hpp"
#include "site/site_core.hpp"
#include "site/site_internal.hpp"

namespace mstream::site {

// ---------------------------------------------------------------------------------------
// Deliveries

void SiteCore::route(proto::Delivery& d) {
  const StreamId to = d.key.to;
  if (to == kLeaderStream) {
    if (leader_inbox_) leader_inbox_(d.key.from, d.payload);
    (void)transport_.consume(d.key, d.seq, now_, d.origin);
    return;
  }
  if (to == control_stream(options_.self)) {
    Result<wire::ControlMessage> m = wire::decode_control(d.payload);
    (void)transport_.consume(d.key, d.seq, now_, d.origin);
    if (!m.ok()) {
      report_error("site " + std::to_string(options_.self) +
                   ": dropped a malformed control message: " + m.status().message());
      return;
    }
    if (!is_control(d.key.from)) return;  // only control streams may send control
    const SiteId from = control_site(d.key.from);
    switch (admit_control(from, m.value())) {
      case Admission::kAllow:
        on_control(from, m.value());
        break;
      case Admission::kRefuse:
        refuse_control(from, m.value());
        break;
      case Admission::kWait:
        wait_for_host(from, std::get<wire::Checkpoint>(std::move(m.value())));
        break;
    }
    return;
  }
  auto it = hosted_.find(to);
  if (it == hosted_.end()) return;  // left meanwhile: unconsumed, so its sender re-sends it
  Hosted& h = *it->second;
  h.in_peers.insert(d.key.from);
  h.inbox.push_back(std::move(d));
  mark_ready(h);
}

void SiteCore::mark_ready(Hosted& h) {
  if (h.ready) return;
  h.ready = true;
  ready_.push_back(h.rec.id);
}

void SiteCore::run_ready() {
  if (suspended_) return;  // ready_ keeps them for when the leader is back
  std::size_t budget = options_.step_budget;
  while (budget > 0 && !ready_.empty()) {
    StreamId id = ready_.front();
    ready_.pop_front();
    auto it = hosted_.find(id);
    if (it == hosted_.end()) continue;
    Hosted& h = *it->second;
    h.ready = false;
    if (h.busy > 0 && !delivers_ahead(h)) continue;  // marked ready again when its work is done
    // Control first: a move, attach or destroy requested during the last handler takes effect
    // at this boundary, before the next delivery (DESIGN.md guarantee 3).
    if (!h.ops.empty()) {
      PendingOp op = std::move(h.ops.front());
      h.ops.pop_front();
      apply_op(h, std::move(op));  // may destroy h
    } else if (!h.inbox.empty() && h.held_by == 0) {
      deliver(h);
    }
    --budget;
    it = hosted_.find(id);
    if (it != hosted_.end() && runnable(*it->second)) mark_ready(*it->second);
  }
}

bool SiteCore::runnable(const Hosted& h) const {
  if (h.busy > 0) return delivers_ahead(h);
  return !durable_waits(h) && (!h.ops.empty() || (!h.inbox.empty() && h.held_by == 0));
}

// The next batch goes to the lane while the one batch in flight runs, unless something must
// happen between them: an operation, a hold, messages given back, a checkpoint (durable
// streams checkpoint between batches), or no append handler (whose messages are consumed here
// at once, which would be before the batch in flight's).
bool SiteCore::delivers_ahead(const Hosted& h) const {
  return h.busy == 1 && h.chain && h.returned == 0 && h.ops.empty() && h.held_by == 0 &&
         !h.durable && h.has_append_handler && !h.inbox.empty();
}

void SiteCore::queue_op(Hosted& h, PendingOp op) {
  h.ops.push_back(std::move(op));
  if (h.chain) h.chain->yield.store(true, std::memory_order_relaxed);
  mark_ready(h);
}

void SiteCore::submit(StreamId stream, std::function<void(Lane&)> work,
                      std::function<void()> done) {
  auto it = hosted_.find(stream);
  // Work for a stream not hosted here (a Finalize for one that left) does not make it busy,
  // and its end must not make idle a stream that arrived meanwhile (whose arrival is on the
  // lane behind it): only the hosting that counted it, known by its epoch, counts it off.
  std::optional<std::uint64_t> counted;
  if (it != hosted_.end()) {
    ++it->second->busy;
    it->second->briefcases_at_rest.reset();  // the work may change them
    counted = it->second->rec.epoch;
  }
  ++work_in_flight_;
  ++counters_.worker_jobs;
  Lane* lane = lanes_[stream % lanes_.size()].get();
  executor_->submit(
      stream % lanes_.size(), [lane, work = std::move(work)] { work(*lane); },
      [this, stream, counted, done = std::move(done)] {
        --work_in_flight_;
        auto h = hosted_.find(stream);
        if (h != hosted_.end() && counted == h->second->rec.epoch && h->second->busy > 0)
          --h->second->busy;
        done();
        h = hosted_.find(stream);
        if (h != hosted_.end() && h->second->busy == 0) {
          h->second->chain.reset();
          h->second->returned = 0;
        }
        if (h != hosted_.end() && h->second->durable) maybe_checkpoint(*h->second);
        h = hosted_.find(stream);
        if (h != hosted_.end() && runnable(*h->second)) mark_ready(*h->second);
      });
}

// A batch of one stream's messages, run on its lane one message at a time (every agent's
// append handler per message), stopping after a message whose handler holds the stream.
struct SiteCore::Delivering {
  struct Ran {
    std::uint64_t agent = 0;
    tcl::HandlerOutcome out;
    HandlerRun run;
  };
  std::string stream;
  std::vector<std::uint64_t> agents;
  std::vector<proto::Delivery> messages;
  std::vector<std::string> senders;      // their names, once per run of one sender's messages
  std::vector<std::uint32_t> sender_of;  // per message, its sender's in `senders`
  std::vector<std::vector<Ran>> ran;     // one per message run, in order
  std::vector<std::pair<std::uint64_t, bool>> has_append;
  bool controlled = false;  // agents[0] is the stream's controller: its handler runs first
  std::shared_ptr<DeliveryChain> chain;
  proto::Time slice = 0;
  std::function<proto::Time()> clock;  // the slice's; none: no slice
};

namespace {
// The slice's clock is read every few messages only: a handler can be a fraction of a
// microsecond.
constexpr std::size_t kSliceCheckEvery = 8;
// A user message's payload is its kind byte, then the message; an empty payload (which no
// sender makes) is an empty message rather than a read before the buffer.
std::string_view message_of(const proto::Delivery& d) {
  if (d.payload.empty()) return {};
  return {reinterpret_cast<const char*>(d.payload.data()) + 1, d.payload.size() - 1};
}
// A shell's -sync message: the shell waits for its handlers' results.
bool is_sync(const proto::Delivery& d) {
  return !d.payload.empty() && (d.payload[0] & kMessageSync) != 0 && is_control(d.key.from);
}
}  // namespace

void SiteCore::deliver(Hosted& h) {
  if (!h.has_append_handler) {
    discard_batch(h);
    return;
  }
  auto work = std::make_shared<Delivering>();
  work->stream = h.rec.name;
  work->agents = h.agents;
  work->controlled = !h.agents.empty() && is_controller(h.agents.front());
  if (!h.chain) h.chain = std::make_shared<DeliveryChain>();
  work->chain = h.chain;
  work->slice = options_.delivery_slice;
  work->clock = options_.lane_clock;
  while (!h.inbox.empty() &&
         work->messages.size() < std::max<std::size_t>(1, options_.delivery_batch)) {
    const StreamId from = h.inbox.front().key.from;
    if (work->messages.empty() || work->messages.back().key.from != from)
      work->senders.push_back(sender_name(from));
    work->sender_of.push_back(static_cast<std::uint32_t>(work->senders.size() - 1));
    work->messages.push_back(std::move(h.inbox.front()));
    h.inbox.pop_front();
  }
  const StreamId id = h.rec.id;
  submit(
      id,
      [work, trace = trace_, epoch = h.rec.epoch, id](Lane& lane) {
        DeliveryChain& chain = *work->chain;
        const bool sliced = work->slice > 0 && work->clock;
        const proto::Time start = sliced ? work->clock() : 0;
        Delivering::Ran r;  // each run's record, its buffers kept from one run to the next
        for (std::size_t i = 0; i < work->messages.size(); ++i) {
          // An earlier batch's rest goes back to the inbox: this one's must follow it.
          if (chain.stopped) break;
          if (chain.yield.load(std::memory_order_relaxed) ||
              (sliced && i % kSliceCheckEvery == 0 && i > 0 &&
               work->clock() - start >= work->slice)) {
            chain.stopped = true;
            break;
          }
          auto& ran = work->ran.emplace_back();
          const proto::Delivery& d = work->messages[i];
          if (d.payload.empty()) continue;  // no envelope: not from an mstream sender
          if (trace)
            trace({HandlerTrace::Kind::kAppend, id, d.key.from, d.seq, epoch, message_of(d)});
          bool hold = false;
          const bool sync = is_sync(d);
          for (std::uint64_t agent : work->agents) {
            const bool controller = work->controlled && agent == work->agents.front();
            if (!controller && work->controlled && !ran.empty() &&
                ran.front().agent == work->agents.front() && vetoes(ran.front().out))
              break;  // the stream's controller kept this message from the other agents
            r.agent = agent;
            r.run.restart(work->stream, work->senders[work->sender_of[i]], agent);
            r.run.ctx.result_wanted = sync || controller;
            r.out = lane.with(&r.run, [&](AgentRunner& runner) {
              return runner.run(agent, tcl::Event::kAppend, r.run.ctx, message_of(d));
            });
            hold = hold || r.run.holds_own_stream || r.run.exit_agent;
            // Only what the site must carry out or report comes back: a run that went well,
            // did nothing and whose result nobody waits for (or vets with) stays here.
            if ((r.out.ran && (sync || !r.out.ok || controller)) || !r.run.effects.empty() ||
                r.run.exit_agent)
              ran.push_back(std::move(r));
          }
          if (hold) {
            chain.stopped = true;
            break;
          }
        }
        for (std::uint64_t agent : work->agents)
          work->has_append.push_back(
              {agent, lane.runner().has_handler(agent, tcl::Event::kAppend)});
      },
      [this, id, work] { delivered(id, *work); });
}

// A stream with no append handler consumes at once (DESIGN.md guarantee 2): nothing would
// run on its lane, so its messages do not make the trip there.
void SiteCore::discard_batch(Hosted& h) {
  for (std::size_t n = std::max<std::size_t>(1, options_.delivery_batch); n > 0 && !h.inbox.empty();
       --n) {
    proto::Delivery d = std::move(h.inbox.front());
    h.inbox.pop_front();
    if (trace_ && !d.payload.empty())
      trace_(
          {HandlerTrace::Kind::kAppend, h.rec.id, d.key.from, d.seq, h.rec.epoch, message_of(d)});
    const bool sync = !d.payload.empty() && (d.payload[0] & kMessageSync) != 0;
    if (h.durable) {  // acknowledged once a checkpoint covers it
      h.durable->unsaved.push_back(
          {d.key, d.seq, d.origin, sync && is_control(d.key.from), tcl::merge_list({})});
      continue;
    }
    (void)transport_.consume(d.key, d.seq, now_, d.origin);
    count_consumed(d.key.from, 1);
    if (sync && is_control(d.key.from))
      send_control(control_site(d.key.from), d.key.from,
                   wire::SyncResult{h.rec.id, d.seq, tcl::merge_list({})});
  }
  // Nothing ran on the lane, so nothing else would start the checkpoint that acknowledges
  // them.
  if (h.durable) maybe_checkpoint(h);
}

void SiteCore::delivered(StreamId id, Delivering& work) {
  auto it = hosted_.find(id);
  Hosted* h = it == hosted_.end() ? nullptr : it->second.get();
  for (std::size_t i = 0; i < work.ran.size(); ++i) {
    const proto::Delivery& d = work.messages[i];
    const bool sync = is_sync(d);
    // A -sync message's outcomes go to sync_result, which reports its errors; the others'
    // are reported here (nothing more on a handler's path that succeeded).
    std::vector<std::pair<std::uint64_t, tcl::HandlerOutcome*>> outcomes;
    for (Delivering::Ran& r : work.ran[i]) {
      carry_out(h, id, r.run);
      if (!r.out.ran) continue;
      if (sync) {
        outcomes.emplace_back(r.agent, &r.out);
      } else if (!r.out.ok) {
        report_handler_error(id, work.stream, r.agent, "append", r.out, d.key.from);
      }
    }
    wire::SyncResult answer;
    if (sync) answer = sync_result(id, work.stream, d.seq, d.key.from, std::move(outcomes));
    if (h && h->durable) {  // acknowledged once a checkpoint covers it
      h->durable->unsaved.push_back(
          {d.key, d.seq, d.origin, sync, std::move(answer.result), std::move(answer.failure)});
      continue;
    }
    // Consumed: every append handler returned (DESIGN.md guarantee 2).
    (void)transport_.consume(d.key, d.seq, now_, d.origin);
    count_consumed(d.key.from, 1);
    if (sync) send_control(control_site(d.key.from), d.key.from, answer);
  }
  if (!h) return;
  // Not run (the batch stopped early): back at the head of the queue, after what the batches
  // before it gave back, in order.
  for (std::size_t i = work.ran.size(); i < work.messages.size(); ++i)
    h->inbox.insert(h->returned++, std::move(work.messages[i]));
  for (const auto& [agent, has] : work.has_append)
    if (loaded_.contains(agent)) loaded_[agent] = has;
  refresh_append_flag(*h);
}

void SiteCore::refresh_append_flag(Hosted& h) {
  h.has_append_handler = std::any_of(h.agents.begin(), h.agents.end(), [&](std::uint64_t a) {
    auto it = loaded_.find(a);
    return it != loaded_.end() && it->second;
  });
}

// What a handler did to the session, carried out in the order it did it.
void SiteCore::carry_out(Hosted* h, StreamId from, HandlerRun& run) {
  for (Effect& e : run.effects) {
    if (auto* a = std::get_if<AppendEffect>(&e)) {
      if (from == 0) {
        report_error("site " + std::to_string(options_.self) + ": stream_append from the " +
                     "controller: a session or site controller is not a stream and sends nothing");
        continue;
      }
      append_opened(h, from, a->to, std::move(a->message), run.ctx.stream);
    } else if (auto* q = std::get_if<RequestEffect>(&e)) {
      if (const auto* o = std::get_if<wire::OpenReq>(&q->message); o && from != 0) {
        // A stream's stream_open: one open per pair, which its appends wait behind.
        const wire::StreamRecord* rec = view_->directory.find(o->name);
        if (!rec) {
          report_error("site " + std::to_string(options_.self) + ": stream_open from stream \"" +
                       run.ctx.stream + "\": " + Directory::no_such_stream(o->name).message());
        } else if (!has_opened(h, {from, rec->id})) {
          (void)open_for(h, from, rec->id, o->name);
        }
        continue;
      }
      ++counters_.requests;
      handler_requests_.insert(q->req);
      if (auto* d = std::get_if<wire::DestroyReq>(&q->message)) {
        request_destroy(q->req, std::move(*d), from);
      } else {
        send_numbered_request(q->req, std::move(q->message));
      }
      if (q->holds_own_stream && h) {
        h->held_by = q->req;
        holds_[q->req] = h->rec.id;
      }
    } else if (auto* o = std::get_if<OutputEffect>(&e)) {
      add_output(o->text, o->nonewline);
    }
  }
  run.effects.clear();
  if (run.exit_agent && h && is_controller(run.ctx.agent)) {
    run.exit_agent = false;
    report_error("site " + std::to_string(options_.self) + ": agent_exit: agent " +
                 std::to_string(run.ctx.agent) + " controls stream \"" + run.ctx.stream +
                 "\" for the stream's life (destroy the stream instead)");
  }
  if (run.exit_agent && h) {
    h->ops.push_back(PendingOp{PendingOp::Kind::kDetach, {}, run.ctx.agent});
    run.exit_agent = false;
  }
}

void SiteCore::report_error(std::string text) { errors_.push_back(std::move(text)); }

std::uint64_t SiteCore::not_consumed(const proto::SendState& st, proto::Seq final_consumed) {
  const proto::Seq last = st.next_seq - 1;
  const proto::Seq done = std::max(st.consumed_up_to, final_consumed);
  return last > done ? last - done : 0;
}

// Termination detection balances what each sender appended against what was consumed from
// it; a shell's messages are tallied per shell, as only the waiting shell's count is known.
void SiteCore::count_consumed(StreamId from, std::uint64_t n) {
  if (is_control(from) && is_shell(control_site(from))) {
    // Only a member's: a shell that left waits for nothing, and its count was forgotten
    // (apply_peer).
    if (!view_->directory.gone(control_site(from)))
      counters_.consumed_from_shell[control_site(from)] += n;
  } else {
    counters_.consumed += n;
  }
}

namespace {
std::string refused_text(std::uint64_t n, std::string_view to_name) {
  return std::to_string(n) + " message" + (n == 1 ? "" : "s") + " to stream \"" +
         (to_name.empty() ? std::string("?") : std::string(to_name)) +
         "\" refused: the stream was destroyed before it consumed " + (n == 1 ? "it" : "them");
}
}  // namespace

void SiteCore::count_discarded(StreamId from, std::uint64_t n, std::string_view to_name) {
  if (from == sender_id() && options_.shell) {
    counters_.discarded_own += n;
    // Never in silence: the script appended them, and the stream is gone without them.
    if (n == 0) return;
    ++counters_.errors_told;
    report_error("stream_append: " + refused_text(n, to_name));
    return;
  }
  counters_.consumed += n;
  if (n == 0 || is_control(from)) return;
  // A handler's appends are never dropped in silence either: the shells hear of it as of
  // that agent's handler error (COMMANDS.md stream_destroy), so `mstream run` fails.
  ++counters_.handler_errors;
  std::string text = "stream_append from stream \"" + sender_name(from) + "\", site " +
                     std::to_string(options_.self) + ": " + refused_text(n, to_name);
  // The leader takes a report about a stream from its host only; a sender destroyed too has
  // none, and its last site says so in its own log.
  if (hosted_.contains(from))
    tell_shells(wire::ErrorReport{std::move(text), from, 0}, 0, false);
  else
    report_error(std::move(text));
}

std::string SiteCore::sender_name(StreamId from) const {
  if (is_control(from)) {
    SiteId s = control_site(from);
    return is_shell(s) ? "shell:" + std::to_string(s) : "site:" + std::to_string(s);
  }
  const wire::StreamRecord* rec = view_->directory.find(from);
  if (rec) return rec->name;
  auto it = hosted_.find(from);
  if (it != hosted_.end()) return it->second->rec.name;
  return "stream:" + std::to_string(from);
}

}  // namespace mstream::site
