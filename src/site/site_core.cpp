#include "site/site_core.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>

#include "site/handler_errors.hpp"
#include "site/per_source_queue.hpp"
#include "tcl/tcl_host.hpp"

namespace mstream::site {
namespace {

wire::Bytes encode(const wire::ControlMessage& m) {
  wire::Bytes b;
  encode_control(m, &b);
  return b;
}

// How long a sender waits before re-sending to a site that refused a stream it believes is
// there (the stream is still being installed, or our replica is a step behind).
constexpr Time kRejectRetry = 20 * proto::kMillisecond;

}  // namespace

SiteCore::SiteCore(SiteOptions options)
    : options_(std::move(options)),
      transport_(options_.self, options_.transport),
      view_(std::make_unique<SiteView>()) {
  view_->self = options_.self;
  view_->max_message_bytes = options_.max_message_bytes;
  view_->max_held_bytes = options_.max_held_bytes;
  view_->handler_limits = options_.handler_limits;
  if (options_.master_key) transport_.set_master_key(*options_.master_key);
  if (options_.leader_key) transport_.set_pair_key(0, *options_.leader_key);
  // Control streams never move: only their own site (the leader's, site 0) speaks for them.
  // User streams do: only the site the directory names for them, or the one before.
  transport_.set_sender_pin([](proto::StreamId from) {
    return is_control(from) ? control_site(from) : proto::Transport::kByLocation;
  });
  // A stream takes channels only from the senders that opened it (site/opens.cpp).
  transport_.set_open_gate([this](proto::ChannelKey key) { return sender_opened(key); });
  executor_ = std::move(options_.executor);
  if (!executor_) executor_ = std::make_shared<proto::InlineExecutor>();
  for (std::size_t i = 0; i < executor_->lanes(); ++i)
    lanes_.push_back(std::make_unique<Lane>(view_.get()));
  (void)transport_.open_stream(control_stream(options_.self));
  transport_.admit_site(0);
  transport_.admit_site(options_.self);
}

SiteCore::~SiteCore() {
  // A lane's interpreter must be deleted by the thread that made it; the executor runs what
  // was submitted before it stops, and drops the `done`s, which would reach into this.
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    Lane* lane = lanes_[i].release();
    executor_->submit(i, [lane] { delete lane; }, {});
  }
  executor_.reset();
}

// ---------------------------------------------------------------------------------------
// Network and time

void SiteCore::on_datagram(wire::ByteView bytes, Time now) {
  now_ = now;
  last_source_ = proto::kNoSource;
  if (transport_.on_datagram(bytes, now).ok()) last_source_ = transport_.last_source();
}

Time SiteCore::next_timeout() const {
  Time t = transport_.next_timeout();
  if (Time due = leader_silence_due(); due != proto::kNever) t = std::min(t, due);
  t = std::min(t, checkpoint_retry_at_);
  if (!retry_at_.empty()) {
    for (const auto& [stream, at] : retry_at_) t = std::min(t, at);
  }
  return t;
}

// When this peer gives the session up if it hears nothing more from the leader (or, with a
// durable leader, pauses its handlers first).
Time SiteCore::leader_silence_due() const {
  if (failure_timeout_ <= 0 || options_.self == 0 || finished_) return proto::kNever;
  const Time heard = std::max(transport_.last_heard(0), welcomed_at_);
  return heard + (suspended_ ? resume_timeout_ : failure_timeout_);
}

void SiteCore::on_timeout(Time now) {
  now_ = now;
  transport_.on_timeout(now);
  if (now >= leader_silence_due() && resume_timeout_ > failure_timeout_ && !suspended_) {
    // A durable leader may be restarting; but it may also have declared us failed, so no
    // handler runs until it is heard from again (step()).
    suspended_ = true;
    report_error(std::string(options_.shell ? "shell " : "site ") + std::to_string(options_.self) +
                 ": no word from the leader for " +
                 std::to_string(failure_timeout_ / proto::kMillisecond) +
                 " ms: handlers paused; waiting up to " +
                 std::to_string(resume_timeout_ / proto::kMillisecond) + " ms for it to resume");
  }
  if (now >= leader_silence_due()) {
    // Either the leader declared us failed (it fenced us: nobody answers any more, and our
    // streams live at their failure managers now) or it is gone. Either way nothing here
    // may go on as a member: handlers must not run for streams that live elsewhere.
    lost_session_ = true;
    finished_ = true;
    report_error(std::string(options_.shell ? "shell " : "site ") +
                 std::to_string(options_.self) + ": no word from the leader for " +
                 std::to_string(failure_timeout_ / proto::kMillisecond) +
                 " ms (it is gone, or declared us failed): left the session");
    return;
  }
  if (now >= checkpoint_retry_at_) {
    checkpoint_retry_at_ = proto::kNever;
    for (auto& [id, h] : hosted_)
      if (h->durable) maybe_checkpoint(*h);
  }
  for (auto it = retry_at_.begin(); it != retry_at_.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    StreamId to = it->first;
    it = retry_at_.erase(it);
    if (is_control(to)) {
      ++counters_.control_resends;
      transport_.relocate_receiver(to, control_site(to));
      continue;
    }
    const wire::StreamRecord* rec = view_->directory.find(to);
    if (rec) {
      transport_.relocate_receiver(to, rec->site);
    } else if (!view_->directory.destroyed(to)) {
      retry_at_[to] = now + kRejectRetry;  // our replica has not heard of it yet
    }
  }
}

bool SiteCore::poll_transmit(Time now, proto::OutDatagram* out) {
  return transport_.poll_transmit(now, out);
}

std::optional<std::string> SiteCore::peer_address(SiteId site) const {
  const wire::PeerRecord* p = view_->directory.peer(site);
  if (!p || p->address.empty()) return std::nullopt;
  return p->address;
}

// A paused peer (leader_suspended) has nothing to run until it hears the leader: a ready
// stream must not make its loop spin.
bool SiteCore::has_work() const {
  return (!ready_.empty() && !suspended_) || executor_->has_done() || controllers_due();
}

bool SiteCore::controllers_due() const {
  return !controllers_loaded_ && !options_.shell && (options_.self == 0 || welcomed_);
}

bool SiteCore::idle() const {
  if (!ready_.empty() || !parked_.empty() || work_in_flight_ > 0) return false;
  if (!pending_checkpoints_.empty()) return false;
  for (const auto& [id, h] : hosted_) {
    if (!h->inbox.empty() || !h->ops.empty()) return false;
    if (h->durable && (h->durable->in_flight || !h->durable->unsaved.empty() ||
                       !h->durable->held.empty()))
      return false;
  }
  for (const auto& [key, q] : overflow_)
    if (!q.empty()) return false;
  return true;
}

void SiteCore::step(Time now) {
  now_ = now;
  const proto::Path* to_leader = options_.self != 0 ? transport_.path(0) : nullptr;
  if (to_leader && to_leader->peer_boot != leader_boot_) {
    leader_boot_ = to_leader->peer_boot;
    on_leader_restarted();
  }
  if (words_lost_) {  // this is the leader's restarted process
    words_lost_ = false;
    transport_.leader_restarted(now);
  }
  if (suspended_ && now - transport_.last_heard(0) < failure_timeout_) {
    suspended_ = false;
    report_error(std::string(options_.shell ? "shell " : "site ") + std::to_string(options_.self) +
                 ": the leader is back; handlers resume");
  }
  executor_->run_done();
  if (controllers_due()) load_controllers();
  proto::Delivery d;
  while (transport_.poll_delivery(&d)) route(d);
  proto::Released r;
  // Every sender overflows, control streams included (a site's, a shell's and the leader's
  // control messages go through append_raw too): a release is the only moment their channel
  // gets room again.
  while (transport_.poll_released(&r)) flush_overflow(r.key);
  // A receiver consumed, from an earlier life of a restored stream of ours, messages that wait
  // here behind the channel's bound (import_channel): they go out past it, or the channel, its
  // acknowledgements refused, would never drain (SessionSimulation seed 194, small bound).
  for (proto::AckedAhead a; transport_.poll_acked_ahead(&a);) {
    auto it = overflow_.find(a.key);
    if (it == overflow_.end()) continue;
    const auto bytes = [&] {
      std::int64_t n = 0;
      for (const wire::Bytes& b : it->second) n += static_cast<std::int64_t>(b.size());
      return n;
    };
    const std::int64_t before = bytes();
    if (transport_.catch_up(a.key, a.up_to, &it->second) == 0) continue;
    held_changed(a.key.from, bytes() - before);
    if (it->second.empty()) overflow_.erase(it);
  }
  // DATA in a sender's name came from a site our words do not place for it (it waits): the
  // leader answers where the sender is (wire::Placed), and from now on tells us its moves at
  // once, as it tells the senders to a stream. A shell is told every move anyway, and hosts
  // no user stream.
  for (proto::Transport::UnplacedSender u; transport_.poll_unplaced(&u);) {
    if (options_.shell) continue;
    watching_.insert(u.from);
    send_control(0, kLeaderStream, wire::Watch{u.from, u.ask});
  }
  proto::Rejected j;
  while (transport_.poll_rejected(&j)) {
    if (is_control(j.key.to)) {
      // Control streams never move. A restarted leader's restored channel may hold more than
      // the bound, and what lies beyond the peer's window is refused: it goes again, from the
      // first unconsumed message, once the peer had time to consume (else it waited for ever:
      // small-bound sim seeds that crash the leader).
      if (j.reason == wire::RejectReason::kOutOfWindow && !retry_at_.contains(j.key.to))
        retry_at_[j.key.to] = now + kRejectRetry;
      continue;
    }
    if (j.reason == wire::RejectReason::kNotOpened) {
      on_not_opened(j.key);  // re-sent once opened again
      if (!retry_at_.contains(j.key.to)) retry_at_[j.key.to] = now + kRejectRetry;
      continue;
    }
    const wire::StreamRecord* rec = view_->directory.find(j.key.to);
    if (view_->directory.destroyed(j.key.to)) {
      drop_channels_to(j.key.to);
    } else if (!rec) {
      if (!retry_at_.contains(j.key.to)) retry_at_[j.key.to] = now + kRejectRetry;
    } else if (rec->site != j.site) {
      // Every in-flight message to the old site comes back refused; the channel is re-sent
      // once, when it is not already headed where the directory says.
      const proto::SendChannel* ch = transport_.send_channel(j.key);
      if (ch && ch->dest != rec->site) transport_.relocate_receiver(j.key.to, rec->site);
    } else if (!retry_at_.contains(j.key.to)) {
      retry_at_[j.key.to] = now + kRejectRetry;
    }
  }
  send_waiting_destroys();
  run_ready();
  store_pending_checkpoints();
}

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
    if (h.busy) continue;  // marked ready again when its work is done
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
  return !h.busy && !durable_waits(h) && (!h.ops.empty() || (!h.inbox.empty() && h.held_by == 0));
}

void SiteCore::submit(StreamId stream, std::function<void(Lane&)> work,
                      std::function<void()> done) {
  auto it = hosted_.find(stream);
  if (it != hosted_.end()) it->second->busy = true;
  ++work_in_flight_;
  Lane* lane = lanes_[stream % lanes_.size()].get();
  executor_->submit(
      stream % lanes_.size(), [lane, work = std::move(work)] { work(*lane); },
      [this, stream, done = std::move(done)] {
        --work_in_flight_;
        auto h = hosted_.find(stream);
        if (h != hosted_.end()) h->second->busy = false;
        done();
        h = hosted_.find(stream);
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
  std::vector<std::string> senders;
  std::vector<std::vector<Ran>> ran;  // one per message run, in order
  std::vector<std::pair<std::uint64_t, bool>> has_append;
  bool controlled = false;  // agents[0] is the stream's controller: its handler runs first
};

namespace {
// A privileged handler (the stream controller's) that ran and did not return `allow` keeps
// the event from the other agents' handlers (COMMANDS.md, Policy).
bool vetoes(const tcl::HandlerOutcome& out) {
  return out.ran && (!out.ok || out.result != "allow");
}

// A user message's payload is its kind byte, then the message; an empty payload (which no
// sender makes) is an empty message rather than a read before the buffer.
std::string_view message_of(const proto::Delivery& d) {
  if (d.payload.empty()) return {};
  return {reinterpret_cast<const char*>(d.payload.data()) + 1, d.payload.size() - 1};
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
  while (!h.inbox.empty() &&
         work->messages.size() < std::max<std::size_t>(1, options_.delivery_batch)) {
    work->senders.push_back(sender_name(h.inbox.front().key.from));
    work->messages.push_back(std::move(h.inbox.front()));
    h.inbox.pop_front();
  }
  const StreamId id = h.rec.id;
  submit(
      id,
      [work, trace = trace_, epoch = h.rec.epoch, id](Lane& lane) {
        for (std::size_t i = 0; i < work->messages.size(); ++i) {
          auto& ran = work->ran.emplace_back();
          const proto::Delivery& d = work->messages[i];
          if (d.payload.empty()) continue;  // no envelope: not from an mstream sender
          if (trace)
            trace({HandlerTrace::Kind::kAppend, id, d.key.from, d.seq, epoch, message_of(d)});
          bool hold = false;
          for (std::uint64_t agent : work->agents) {
            if (agent != work->agents.front() && work->controlled && !ran.empty() &&
                ran.front().agent == work->agents.front() && vetoes(ran.front().out))
              break;  // the stream's controller kept this message from the other agents
            Delivering::Ran r;
            r.agent = agent;
            r.run.ctx = tcl::HandlerContext{work->stream, work->senders[i], agent};
            r.out = lane.with(&r.run, [&](AgentRunner& runner) {
              return runner.run(agent, tcl::Event::kAppend, r.run.ctx, message_of(d));
            });
            hold = hold || r.run.holds_own_stream || r.run.exit_agent;
            if (r.out.ran || !r.run.effects.empty() || r.run.exit_agent)
              ran.push_back(std::move(r));
          }
          if (hold) break;
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
    const bool sync = !d.payload.empty() && (d.payload[0] & kMessageSync) != 0 &&
                      is_control(d.key.from);
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
  // Not run (a handler held the stream): back at the head of the queue, in order.
  for (std::size_t i = work.messages.size(); i > work.ran.size(); --i)
    h->inbox.push_front(std::move(work.messages[i - 1]));
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

namespace {
// Of the messages not_consumed() counts, those appended -sync: the shell waits for each, and
// its -sync append raises the refusal itself (COMMANDS.md stream_destroy).
std::uint64_t sync_not_consumed(const proto::SendState& st, proto::Seq final_consumed) {
  const proto::Seq done = std::max(st.consumed_up_to, final_consumed);
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < st.unconsumed.size(); ++i) {
    const proto::Seq seq = st.consumed_up_to + 1 + i;
    const wire::Bytes& payload = st.unconsumed[i];
    if (seq > done && !payload.empty() && (payload[0] & kMessageSync) != 0) ++n;
  }
  return n;
}
}  // namespace

// Termination detection balances what each sender appended against what was consumed from
// it; a shell's messages are tallied per shell, as only the waiting shell's count is known.
void SiteCore::count_consumed(StreamId from, std::uint64_t n) {
  if (is_control(from) && is_shell(control_site(from))) {
    counters_.consumed_from_shell[control_site(from)] += n;
  } else {
    counters_.consumed += n;
  }
}

void SiteCore::count_discarded(StreamId from, std::uint64_t n, std::string_view to_name) {
  if (from == sender_id() && options_.shell) {
    counters_.discarded_own += n;
    // Never in silence: the script appended them, and the stream is gone without them.
    if (n == 0) return;
    ++counters_.errors_told;
    report_error("stream_append: " + std::to_string(n) + " message" + (n == 1 ? "" : "s") +
                 " to stream \"" + (to_name.empty() ? std::string("?") : std::string(to_name)) +
                 "\" refused: the stream was destroyed before it consumed " +
                 (n == 1 ? "it" : "them"));
  } else {
    counters_.consumed += n;
  }
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

// ---------------------------------------------------------------------------------------
// Control

void SiteCore::send_control(SiteId to, StreamId to_stream, const wire::ControlMessage& m) {
  // Nothing goes to a site that failed or left (an Arrive for a move whose target failed,
  // say): it would wait for an acknowledgement for ever (sim seed 119). The leader settles
  // what it was for.
  if (const wire::PeerRecord* p = view_->directory.peer(to); p && !p->live && to != options_.self)
    return;
  wire::Bytes b = encode(m);
  (void)append_raw(control_stream(options_.self), to_stream, to, std::move(b));
}

void SiteCore::send_from_leader(SiteId to, const wire::ControlMessage& m) {
  wire::Bytes b = encode(m);
  (void)append_raw(kLeaderStream, control_stream(to), to, std::move(b));
}

void SiteCore::reply_installed(const wire::Installed& i) { send_control(0, kLeaderStream, i); }

std::uint64_t SiteCore::send_request(wire::ControlMessage m) {
  const std::uint64_t req = view_->next_req.fetch_add(1, std::memory_order_relaxed);
  send_numbered_request(req, std::move(m));
  return req;
}

void SiteCore::send_numbered_request(std::uint64_t req, wire::ControlMessage m) {
  Awaited& awaited = awaiting_replies_[req];
  if (const auto* mv = std::get_if<wire::MoveReq>(&m)) {
    awaited.move_target = mv->site;
    awaited.stream = mv->name;
  }
  std::visit(
      [req](auto& v) {
        if constexpr (requires { v.req; }) v.req = req;
      },
      m);
  send_control(0, kLeaderStream, m);
}

std::optional<wire::Reply> SiteCore::take_reply(std::uint64_t req) {
  auto it = replies_.find(req);
  if (it == replies_.end()) return std::nullopt;
  wire::Reply r = std::move(it->second);
  replies_.erase(it);
  return r;
}

void SiteCore::on_control(SiteId from_site, const wire::ControlMessage& msg) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, wire::Welcome>) {
          // Membership and keys are the leader's word alone (another member's would let it
          // fence a site, or plant a key it knows for a pair it is not in): the sender rule
          // (kLeader) saw to it.
          for (const auto& k : m.keys) set_pair_key(k.site, k.key);
          for (const auto& p : m.peers) apply_peer(p);
          for (const auto& s : m.streams) on_location(s);
          welcomed_ = true;
          welcomed_at_ = now_;
          failure_timeout_ = static_cast<Time>(m.failure_timeout_us) * proto::kMicrosecond;
          resume_timeout_ = static_cast<Time>(m.resume_timeout_us) * proto::kMicrosecond;
          // Sites and shells keep the leader hearing from them; it keeps them hearing from it.
          if (failure_timeout_ > 0 && options_.self != 0)
            transport_.set_keepalive(0, keepalive_interval(failure_timeout_));
        } else if constexpr (std::is_same_v<T, wire::PeerUpdate>) {
          if (m.peer.live) set_pair_key(m.peer.site, m.key);
          apply_peer(m.peer);  // one that left or failed: its key is dropped with it
        } else if constexpr (std::is_same_v<T, wire::Recover>) {
          on_recover(m);
        } else if constexpr (std::is_same_v<T, wire::Checkpoint>) {
          on_checkpoint(from_site, m);
        } else if constexpr (std::is_same_v<T, wire::Checkpointed>) {
          on_checkpointed(m);
        } else if constexpr (std::is_same_v<T, wire::Settle>) {
          on_settle(m);
        } else if constexpr (std::is_same_v<T, wire::Location>) {
          on_location(m.stream, m.final_in);
        } else if constexpr (std::is_same_v<T, wire::Placed>) {
          on_placed(m);
        } else if constexpr (std::is_same_v<T, wire::Install>) {
          auto h = std::make_unique<Hosted>();
          h->rec = m.stream;
          h->rec.site = options_.self;
          (void)transport_.open_stream(m.stream.id);
          transport_.set_sender_origin(m.stream.id, m.stream.origin);
          if (m.stream.flags & wire::kStreamDurable) h->durable = std::make_unique<DurableState>();
          apply_record(h->rec);
          hosted_[m.stream.id] = std::move(h);
          reply_installed(wire::Installed{m.stream.id, m.stream.epoch, 0, 0, {}});
        } else if constexpr (std::is_same_v<T, wire::Code>) {
          code_[m.agent] = m;
          code_[m.agent].flags &= ~wire::kAgentTrusted;  // never from the wire
          try_install_parked();
        } else if constexpr (std::is_same_v<T, wire::Attach>) {
          auto it = hosted_.find(m.stream);
          if (it == hosted_.end()) {
            reply_installed(wire::Installed{m.stream, 0, m.agent,
                                            static_cast<std::uint64_t>(Status::Code::kNotFound),
                                            "stream not at site " + std::to_string(options_.self)});
            return;
          }
          it->second->ops.push_back(PendingOp{PendingOp::Kind::kAttach, {}, m.agent});
          mark_ready(*it->second);
        } else if constexpr (std::is_same_v<T, wire::MoveOut>) {
          auto it = hosted_.find(m.stream);
          if (it == hosted_.end()) return;  // the leader orders moves; cannot happen
          it->second->ops.push_back(PendingOp{PendingOp::Kind::kMoveOut, m, 0});
          mark_ready(*it->second);
        } else if constexpr (std::is_same_v<T, wire::DestroyStream>) {
          auto it = hosted_.find(m.stream);
          if (it == hosted_.end()) {
            reply_installed(wire::Installed{m.stream, 0, 0, 0, {}});
            return;
          }
          it->second->ops.push_back(PendingOp{PendingOp::Kind::kDestroy, {}, 0});
          mark_ready(*it->second);
        } else if constexpr (std::is_same_v<T, wire::Finalize>) {
          finalize_visited(m);
        } else if constexpr (std::is_same_v<T, wire::Arrive>) {
          on_arrive(from_site, m);
        } else if constexpr (std::is_same_v<T, wire::Expect>) {
          on_expect(m);
        } else if constexpr (std::is_same_v<T, wire::Probe>) {
          wire::ProbeReply r{m.wave,
                             idle() ? 1u : 0u,
                             counters_.appended,
                             counters_.consumed,
                             counters_.requests,
                             {},
                             held_messages()};
          for (const auto& [shell, n] : counters_.consumed_from_shell)
            r.shells.push_back({shell, n});
          send_control(0, kLeaderStream, r);
        } else if constexpr (std::is_same_v<T, wire::Reply>) {
          // The leader repeats an answer a failed site may or may not have given.
          if (!awaiting_replies_.erase(m.req)) return;
          if (auto o = open_requests_.find(m.req); o != open_requests_.end()) {
            const proto::ChannelKey key = o->second;
            open_requests_.erase(o);
            on_open_answer(key, m);
            if (!handler_requests_.contains(m.req)) return;  // a shell's: answered above
          }
          auto hold = holds_.find(m.req);
          if (hold != holds_.end()) {
            auto h = hosted_.find(hold->second);
            if (h != hosted_.end() && h->second->held_by == m.req) {
              h->second->held_by = 0;
              mark_ready(*h->second);
            }
            holds_.erase(hold);
          }
          if (handler_requests_.erase(m.req)) {
            // The leader told the shells too (LeaderCore::finish).
            if (m.code != 0 && options_.log_forwarded_errors)
              report_error("site " + std::to_string(options_.self) + ": " + m.text);
          } else {
            replies_[m.req] = m;
          }
        } else if constexpr (std::is_same_v<T, wire::SyncResult>) {
          sync_results_[{m.stream, m.seq}] = SyncAnswer{m.result, m.failure, from_site};
        } else if constexpr (std::is_same_v<T, wire::ErrorReport>) {
          ++counters_.errors_told;
          report_error(m.text);
        } else if constexpr (std::is_same_v<T, wire::Shutdown>) {
          if (!m.reason.empty())
            report_error(std::string(options_.shell ? "shell " : "site ") +
                         std::to_string(options_.self) + ": " + m.reason);
          finished_ = true;
        } else if constexpr (std::is_same_v<T, wire::PolicyCheck>) {
          on_policy_check(m);
        } else if constexpr (std::is_same_v<T, wire::Opened>) {
          on_opened(m);
        } else {
          report_error(std::string("site ") + std::to_string(options_.self) +
                       ": unexpected control message " + wire::control_name(msg));
        }
      },
      msg);
}

void SiteCore::on_location(const wire::StreamRecord& rec,
                           const std::vector<wire::InChannel>& final_in) {
  const wire::StreamRecord* before = view_->directory.find(rec.id);
  const Host was = before ? Host{before->site, before->epoch} : Host{};
  if (!apply_record(rec, final_in)) return;
  if (was.site != wire::kNoSite && was.site != rec.site &&
      (options_.shell || (rec.flags & wire::kStreamDurable)))
    previous_host_[rec.id] = was;
  if (!checkpoints_waiting_.empty()) recheck_waiting_checkpoints(rec.id);
  if (rec.site == wire::kNoSite) {
    previous_host_.erase(rec.id);
    drop_channels_to(rec.id, rec.name);
    watching_.erase(rec.id);
    // Its checkpoints, if it was durable and managed here, are of no use any more.
    if (options_.store && (rec.flags & wire::kStreamDurable)) (void)options_.store->erase(rec.id);
    return;
  }
  if (!senders_to_.contains(rec.id)) return;
  // Re-send what was not consumed to where the receiver now is (seed 004 §2.3:
  // sender-initiated re-delivery, no forwarding).
  retry_at_.erase(rec.id);
  transport_.relocate_receiver(rec.id, rec.site);
}

// The leader's answer to an ask of the user-stream pin, after every word on the stream it
// owed us (the same FIFO channel). The word of a move this site asked for comes from its
// target instead (SiteCore::arrived), ahead of the Reply: until then, the target is where the
// stream may be going too.
void SiteCore::on_placed(const wire::Placed& m) {
  going_.clear();
  if (m.moving_to != wire::kNoSite) going_.push_back(m.moving_to);
  if (!awaiting_replies_.empty()) {
    const wire::StreamRecord* rec = view_->directory.find(m.stream);
    for (const auto& [req, a] : awaiting_replies_)
      if (rec && a.move_target != wire::kNoSite && a.stream == rec->name)
        going_.push_back(a.move_target);
  }
  transport_.on_placed(m.stream, m.ask, going_, now_);
}

bool SiteCore::apply_record(const wire::StreamRecord& rec,
                            const std::vector<wire::InChannel>& final_in) {
  bool applied;
  {
    std::unique_lock lock(view_->mu);
    applied = view_->directory.apply(rec, final_in);
  }
  // Where its DATA is taken from (Transport::kByLocation). An older word too (a batch that
  // came after a watcher's word): it names a site the stream was at, whose copies are stale.
  if (!is_control(rec.id)) transport_.locate_sender(rec.id, rec.site, rec.epoch, now_);
  return applied;
}

// Only the leader hands out keys (Welcome and PeerUpdate are taken from site 0 only: kLeader),
// and only to a secured transport; the leader's own pair key came with the join.
void SiteCore::set_pair_key(SiteId peer, const std::string& key) {
  if (!transport_.secured() || key.size() != wire::kKeyBytes || peer == 0 || peer == options_.self)
    return;
  wire::Key k;
  std::copy(key.begin(), key.end(), k.begin());
  transport_.set_pair_key(peer, k);
}

void SiteCore::apply_peer(const wire::PeerRecord& peer) {
  {
    std::unique_lock lock(view_->mu);
    view_->directory.apply(peer);
  }
  if (peer.site == options_.self) return;
  if (peer.live) {
    transport_.admit_site(peer.site);
  } else {
    on_failure_manager_failed(peer.site);
    // Failed or left: fenced. Whatever it still sends is dropped from now on, so a site that
    // was only cut off cannot act for streams that now live elsewhere.
    transport_.expel_site(peer.site);
    // Its control stream is gone with it (a site rejoins under a new id): what is still
    // queued for it would wait for an acknowledgement for ever, and the transport would never
    // be idle again (sim seed 229).
    const StreamId gone = control_stream(peer.site);
    for (StreamId from : transport_.senders_to(gone)) {
      (void)transport_.take_send_state({from, gone});
      drop_overflow(proto::ChannelKey{from, gone});
    }
  }
}

void SiteCore::drop_channels_to(StreamId to, std::string_view name) {
  opened_.erase({sender_id(), to});
  auto it = senders_to_.find(to);
  if (it == senders_to_.end()) return;
  for (StreamId from : it->second) {
    opened_.erase({from, to});
    proto::ChannelKey key{from, to};
    auto st = transport_.take_send_state(key);
    // Messages to a destroyed stream are discarded, but only those it did not consume: the
    // others were counted where they were consumed (termination detection balances).
    if (st.ok()) {
      const proto::Seq final_consumed = view_->directory.final_consumed(to, from);
      std::uint64_t n = not_consumed(*st, final_consumed);
      if (options_.shell && from == sender_id()) {
        // Raised where the script waits: reported besides, it would be said twice (and count
        // against `mstream run`'s exit status though the script may have caught it).
        const std::uint64_t raised = std::min(n, sync_not_consumed(*st, final_consumed));
        counters_.discarded_own += raised;
        n -= raised;
      }
      count_discarded(from, n, name);
    }
    auto ov = overflow_.find(key);
    if (ov != overflow_.end()) count_discarded(from, ov->second.size(), name);
    drop_overflow(key);
    auto h = hosted_.find(from);
    if (h != hosted_.end()) h->second->out_peers.erase(to);
  }
  senders_to_.erase(it);
  retry_at_.erase(to);
}

// ---------------------------------------------------------------------------------------
// Appends

Result<proto::Seq> SiteCore::append_raw(StreamId from, StreamId to, SiteId to_site,
                                        wire::Bytes payload) {
  proto::ChannelKey key{from, to};
  auto ov = overflow_.find(key);
  if (ov != overflow_.end() && !ov->second.empty()) {
    held_changed(from, static_cast<std::int64_t>(payload.size()));
    ov->second.push_back(std::move(payload));
    return proto::Seq{0};
  }
  Result<proto::Seq> r = transport_.append(from, to, to_site, payload, now_);
  if (!r.ok() && r.status().code() == Status::Code::kWouldBlock) {
    // Accepted all the same: kept here in order and sent as the channel drains, so a handler
    // never blocks (it could deadlock two streams appending to each other). What a stream
    // may hold so is bounded where its handlers append (SiteOptions::max_held_bytes).
    held_changed(from, static_cast<std::int64_t>(payload.size()));
    overflow_[key].push_back(std::move(payload));
    return proto::Seq{0};
  }
  return r;
}

SiteId SiteCore::site_of(StreamId to) const {
  // A control stream never moves and is named after its site; the directory knows the others.
  if (is_control(to)) return control_site(to);
  const wire::StreamRecord* rec = view_->directory.find(to);
  return rec ? rec->site : options_.self;
}

void SiteCore::flush_overflow(proto::ChannelKey key) {
  auto it = overflow_.find(key);
  if (it == overflow_.end()) return;
  const SiteId site = site_of(key.to);
  while (!it->second.empty()) {
    Result<proto::Seq> r = transport_.append(key.from, key.to, site, it->second.front(), now_);
    if (!r.ok()) break;
    held_changed(key.from, -static_cast<std::int64_t>(it->second.front().size()));
    it->second.pop_front();
  }
  if (it->second.empty()) overflow_.erase(it);
}

void SiteCore::drop_overflow(proto::ChannelKey key) {
  auto it = overflow_.find(key);
  if (it == overflow_.end()) return;
  std::int64_t bytes = 0;
  for (const wire::Bytes& b : it->second) bytes += static_cast<std::int64_t>(b.size());
  held_changed(key.from, -bytes);
  overflow_.erase(it);
}

void SiteCore::held_changed(StreamId from, std::int64_t delta) {
  if (is_control(from) || delta == 0) return;
  std::unique_lock lock(view_->mu);
  std::uint64_t& held = view_->held_bytes[from];
  held = static_cast<std::uint64_t>(static_cast<std::int64_t>(held) + delta);
  if (held == 0) view_->held_bytes.erase(from);
}

Result<proto::Seq> SiteCore::append_from(StreamId from, const std::string& to,
                                         std::string_view message, bool sync) {
  if (Status s = Directory::check_user_stream(to); !s.ok()) return s;
  const wire::StreamRecord* rec = view_->directory.find(to);
  if (!rec) return Directory::no_such_stream(to);
  if (message.size() > options_.max_message_bytes)
    return Status::error(Status::Code::kTooLarge,
                         "message of " + std::to_string(message.size()) + " bytes exceeds the " +
                             std::to_string(options_.max_message_bytes) + "-byte limit");
  wire::Bytes payload(message.size() + 1);
  payload[0] = sync ? kMessageSync : 0;
  if (!message.empty()) std::memcpy(payload.data() + 1, message.data(), message.size());
  const StreamId to_id = rec->id;
  if (options_.shell && from == sender_id() && !opened_.contains({from, to_id})) {
    // A shell's first append opens the stream and waits for the answer, as for a full
    // buffer: it retries; a denial is then the append's error.
    if (auto d = open_denied_.find(to_id); d != open_denied_.end()) {
      Status denied = Status::error(Status::Code::kPermissionDenied, d->second);
      open_denied_.erase(d);
      return denied;
    }
    (void)open_for(nullptr, from, to_id, to);
    return Status::error(Status::Code::kWouldBlock, "opening stream \"" + to + "\"");
  }
  // A shell waits and retries on a full buffer (its script blocks); a handler never blocks,
  // so its appends overflow into an ordered local queue instead.
  Result<proto::Seq> r = options_.shell ? transport_.append(from, to_id, rec->site, payload, now_)
                                        : append_raw(from, to_id, rec->site, std::move(payload));
  if (!r.ok()) return r;
  ++counters_.appended;
  add_sender(from, to_id);
  auto h = hosted_.find(from);
  if (h != hosted_.end()) h->second->out_peers.insert(to_id);
  return r;
}

// The leader pushes a receiver's moves at once only to the sites that watch it; a shell hears
// of every move anyway.
void SiteCore::add_sender(StreamId from, StreamId to) {
  senders_to_[to].insert(from);
  if (!options_.shell && watching_.insert(to).second)
    send_control(0, kLeaderStream, wire::Watch{to});
}

std::optional<SiteCore::SyncAnswer> SiteCore::take_sync_result(StreamId to, proto::Seq seq) {
  auto it = sync_results_.find({to, seq});
  if (it == sync_results_.end()) return std::nullopt;
  SyncAnswer s = std::move(it->second);
  sync_results_.erase(it);
  return s;
}

bool SiteCore::all_released() const {
  const StreamId me = sender_id();
  for (const auto& [to, froms] : senders_to_) {
    if (!froms.contains(me)) continue;
    const proto::SendChannel* ch = transport_.send_channel({me, to});
    if (ch && ch->unconsumed_count() > 0) return false;
    auto ov = overflow_.find({me, to});
    if (ov != overflow_.end() && !ov->second.empty()) return false;
  }
  return true;
}

bool SiteCore::poll_output(std::string* line, Time* stamp) {
  if (output_.empty()) return false;
  *line = std::move(output_.front().second);
  if (stamp) *stamp = output_.front().first;
  output_.pop_front();
  return true;
}

bool SiteCore::poll_error(std::string* line) {
  if (errors_.empty()) return false;
  *line = std::move(errors_.front());
  errors_.pop_front();
  return true;
}

// ---------------------------------------------------------------------------------------
// Pending operations at a handler boundary

void SiteCore::apply_op(Hosted& h, PendingOp op) {
  switch (op.kind) {
    case PendingOp::Kind::kMoveOut: {
      if (h.durable && (h.durable->in_flight || !h.durable->unsaved.empty() ||
                        !h.durable->held.empty())) {
        // The stream leaves with everything it consumed stored: its new site checkpoints
        // from there on.
        h.ops.push_front(std::move(op));
        maybe_checkpoint(h);
        return;
      }
      if (trace_) trace_({HandlerTrace::Kind::kDepart, h.rec.id, 0, 0, op.move.epoch, {}});
      const StreamId id = h.rec.id;
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

namespace {
// An agent's first visit to a site: its initialization runs on its lane.
struct Loading {
  std::uint64_t agent = 0;
  wire::Code code;
  HandlerRun run;
  Status status;
  std::string error_info;
  bool has_append = false;
  std::string initial;  // the briefcase as the initialization left it
};

void load_on(Lane& lane, Loading& l) {
  l.status = lane.with(
      &l.run, [&](AgentRunner& runner) { return runner.load(l.code, l.run.ctx, &l.error_info); });
  if (!l.status.ok()) return;
  l.has_append = lane.runner().has_handler(l.agent, tcl::Event::kAppend);
  l.initial = lane.runner().save_briefcase(l.agent);
}

}  // namespace

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
      a.in.push_back(
          {from, st->consumed_up_to, st->reply_site, st->reply_incarnation, st->origin});
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
  transport_.set_sender_origin(id, 0);
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
// state (nothing of its briefcases or channels survived). Its senders resume from what they
// know was consumed (the floor of their copies); its own channels start a new numbering
// (rec.origin), so receivers do not take its new messages for its old ones.
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
  std::uint32_t requester = wire::kNoSite;
  std::uint64_t req = 0;
  bool recovery = false;  // from Recover: failure handlers instead of relocation handlers
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
    trace_({recovery ? HandlerTrace::Kind::kRecover : HandlerTrace::Kind::kInstall, id, 0, 0,
            h.rec.epoch, {}});
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
        const auto kind = work->recovery ? HandlerTrace::Kind::kFailure
                                         : HandlerTrace::Kind::kRelocation;
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
          out = lane.with(&run, [&](AgentRunner& runner) {
            return runner.run(agent, event, run.ctx, {});
          });
          vetoed = work->controlled && agent == work->agents.front() && vetoes(out);
        }
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
  for (const auto& [agent, has] : work.has_append) loaded_[agent] = has;
  refresh_append_flag(h);
  for (std::string& e : work.briefcase_errors)
    report_error("site " + std::to_string(options_.self) + ": " + e);
  for (auto& [run, out] : work.relocations) {
    carry_out(&h, id, run);
    if (out.ran && !out.ok)
      failures.push_back({run.ctx.agent, work.recovery ? "failure" : "relocation", &out});
  }
  reply_installed(wire::Installed{id, h.rec.epoch, 0, 0, {}});
  // The requester learns the new location and gets its answer from here, one hop sooner than
  // through the leader; the leader tells everyone else. Its next request on this stream still
  // waits at the leader behind this move's Installed, so order is kept. The handler errors go
  // between the two: after the Location, so that a shell takes a report from here as from the
  // stream's host, and before the answer its move waits for.
  const SiteId r = work.requester;
  if (r != wire::kNoSite) send_control(r, control_stream(r), wire::Location{h.rec});
  wire::HandlerFailure failure;
  if (!failures.empty())
    failure = report_arrival_failures(id, work.stream, work.agents, std::move(failures), r);
  if (r != wire::kNoSite)
    send_control(r, control_stream(r),
                 wire::Reply{work.req, 0, std::to_string(options_.self), std::move(failure)});
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
  transport_.set_sender_origin(id, 0);
  hosted_.erase(id);
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

// ---------------------------------------------------------------------------------------
// Durable streams (doc/session.md "Durable streams")

// How long a site waits before checkpointing again after its failure manager refused one.
namespace {
constexpr Time kCheckpointRetry = 100 * proto::kMillisecond;
}  // namespace

SiteId SiteCore::failure_manager_of(const wire::StreamRecord& rec) const {
  // The leader's rule for recoveries (LeaderCore::recover): a failed failure manager is
  // replaced by site 0, so checkpoints go where a recovery will look for them.
  const wire::PeerRecord* p = view_->directory.peer(rec.failure_manager);
  return p && p->live ? rec.failure_manager : 0;
}

// A move waits until everything the stream consumed is stored; nothing else runs meanwhile.
bool SiteCore::durable_waits(const Hosted& h) const {
  if (!h.durable || h.ops.empty()) return false;
  const PendingOp& op = h.ops.front();
  return op.kind == PendingOp::Kind::kMoveOut &&
         (h.durable->in_flight || !h.durable->unsaved.empty() || !h.durable->held.empty());
}

// A durable stream's handler appended: checked now (the handler's errors are reported as for
// any stream), sent once a checkpoint holds it.
void SiteCore::hold_append(Hosted& h, const std::string& to, const std::string& message,
                           const std::string& from_name) {
  Status st = Directory::check_user_stream(to);
  const wire::StreamRecord* rec = st.ok() ? view_->directory.find(to) : nullptr;
  if (st.ok() && !rec) st = Directory::no_such_stream(to);
  if (st.ok() && message.size() > options_.max_message_bytes)
    st = Status::error(Status::Code::kTooLarge,
                       "message of " + std::to_string(message.size()) + " bytes exceeds the " +
                           std::to_string(options_.max_message_bytes) + "-byte limit");
  if (!st.ok()) {
    report_error("site " + std::to_string(options_.self) + ": stream_append from stream \"" +
                 from_name + "\": " + st.message());
    return;
  }
  wire::Bytes payload(message.size() + 1);
  payload[0] = 0;
  if (!message.empty()) std::memcpy(payload.data() + 1, message.data(), message.size());
  ++counters_.appended;
  h.durable->held.push_back({rec->id, std::move(payload)});
}

void SiteCore::maybe_checkpoint(Hosted& h) {
  DurableState& ds = *h.durable;
  if (ds.in_flight || h.busy) return;
  if (ds.unsaved.empty() && ds.held.empty() && !ds.force) return;
  ds.in_flight = true;
  ds.saving = true;
  ds.force = false;
  ds.covering = std::move(ds.unsaved);
  ds.unsaved.clear();
  ds.covering_out = std::move(ds.held);
  ds.held.clear();
  const StreamId id = h.rec.id;
  // The briefcases now hold the state after exactly the messages covered: the stream runs
  // nothing else until they are saved.
  save_briefcases(
      h, [this, id](std::vector<wire::AgentState> b) { send_checkpoint(id, std::move(b)); });
}

// The stream's state as a move would carry it, with what the checkpoint covers counted as
// consumed and the held appends as sent.
wire::Arrive SiteCore::snapshot(Hosted& h, std::vector<wire::AgentState> briefcases) {
  const DurableState& ds = *h.durable;
  const StreamId id = h.rec.id;
  wire::Arrive a;
  a.stream = h.rec;
  a.agents = h.agents;
  a.opened = h.opened;
  a.waiting = waiting_of(id);  // a recovery opens again and sends them
  a.briefcases = std::move(briefcases);
  for (StreamId from : h.in_peers) {
    auto st = transport_.export_recv_state({from, id});
    if (!st.ok()) continue;
    wire::InChannel in{from, st->consumed_up_to, st->reply_site, st->reply_incarnation,
                       st->origin};
    for (const DurableState::Consumed& c : ds.covering)
      if (c.key.from == from && c.origin == in.origin) in.consumed_up_to = std::max(in.consumed_up_to, c.seq);
    a.in.push_back(in);
  }
  std::map<StreamId, std::size_t> out_index;
  for (StreamId to : h.out_peers) {
    const proto::ChannelKey key{id, to};
    auto st = transport_.export_send_state(key);
    if (!st.ok()) continue;
    out_index[to] = a.out.size();
    a.out.push_back(out_channel(key, *st));
  }
  for (const DurableState::Append& m : ds.covering_out) {
    auto it = out_index.find(m.to);
    if (it == out_index.end()) {  // its first message to that stream
      wire::OutChannel oc;
      oc.to = m.to;
      oc.dest = site_of(m.to);
      oc.origin = h.rec.origin;
      it = out_index.emplace(m.to, a.out.size()).first;
      a.out.push_back(std::move(oc));
    }
    wire::OutChannel& oc = a.out[it->second];
    oc.unconsumed.emplace_back(m.payload.begin(), m.payload.end());
    ++oc.next_seq;
  }
  return a;
}

void SiteCore::send_checkpoint(StreamId id, std::vector<wire::AgentState> briefcases) {
  auto it = hosted_.find(id);
  if (it == hosted_.end()) return;
  Hosted& h = *it->second;
  DurableState& ds = *h.durable;
  ds.saving = false;
  wire::Checkpoint c;
  c.version = ++ds.version;
  c.state = snapshot(h, std::move(briefcases));
  ds.sent_to = failure_manager_of(h.rec);
  if (ds.sent_to == options_.self) {
    on_checkpoint(options_.self, std::move(c));
  } else {
    send_control(ds.sent_to, control_stream(ds.sent_to), c);
  }
}

// The failure manager stored the checkpoint: what it covers is consumed and sent now.
std::optional<std::uint64_t> SiteCore::checkpoint_in_flight(StreamId id) const {
  auto it = hosted_.find(id);
  if (it == hosted_.end() || !it->second->durable || !it->second->durable->in_flight)
    return std::nullopt;
  return it->second->durable->version;
}

void SiteCore::on_checkpointed(const wire::Checkpointed& m) {
  auto it = hosted_.find(m.stream);
  if (it == hosted_.end() || !it->second->durable) return;  // left or gone meanwhile
  Hosted& h = *it->second;
  DurableState& ds = *h.durable;
  if (!ds.in_flight || m.version != ds.version || m.epoch != h.rec.epoch) return;  // stale
  if (m.code != 0) {
    report_error("site " + std::to_string(options_.self) + ": checkpoint of stream \"" +
                 h.rec.name + "\" refused: " + m.text + " (retrying)");
    ds.uncover();  // not stored: the next checkpoint covers it all again
    checkpoint_retry_at_ = std::min(checkpoint_retry_at_, now_ + kCheckpointRetry);
    return;
  }
  commit_durable(h, true);
  flush_opened(h);  // appends whose open was answered while the checkpoint was under way
  maybe_checkpoint(h);
  if (runnable(h)) mark_ready(h);
}

// Saves every agent's briefcase on the stream's lane (the stream is busy meanwhile), then
// hands them to `then` here.
void SiteCore::save_briefcases(Hosted& h, std::function<void(std::vector<wire::AgentState>)> then) {
  auto briefcases = std::make_shared<std::vector<wire::AgentState>>();
  submit(
      h.rec.id,
      [briefcases, agents = h.agents](Lane& lane) {
        for (std::uint64_t agent : agents)
          briefcases->push_back({agent, lane.runner().save_briefcase(agent)});
      },
      [briefcases, then = std::move(then)] { then(std::move(*briefcases)); });
}

// A channel's sender state as a move or a checkpoint carries it. Appends a full buffer refused
// but the handler was told were accepted (overflow_) follow, taking the next numbers.
wire::OutChannel SiteCore::out_channel(proto::ChannelKey key, const proto::SendState& st) const {
  wire::OutChannel oc;
  oc.to = key.to;
  oc.dest = st.dest;
  oc.consumed_up_to = st.consumed_up_to;
  oc.next_seq = st.next_seq;
  oc.incarnation = st.incarnation;
  oc.origin = st.origin;
  for (const auto& b : st.unconsumed) oc.unconsumed.emplace_back(b.begin(), b.end());
  auto ov = overflow_.find(key);
  if (ov != overflow_.end()) {
    for (const auto& b : ov->second) {
      oc.unconsumed.emplace_back(b.begin(), b.end());
      ++oc.next_seq;
    }
  }
  return oc;
}

// Acknowledges what was consumed and sends what was appended: what the checkpoint in flight
// covers (covering_only), or everything (the stream is destroyed).
void SiteCore::commit_durable(Hosted& h, bool covering_only) {
  DurableState& ds = *h.durable;
  const StreamId id = h.rec.id;
  auto consume = [&](std::vector<DurableState::Consumed>& list) {
    for (DurableState::Consumed& c : list) {
      (void)transport_.consume(c.key, c.seq, now_, c.origin);
      count_consumed(c.key.from, 1);
      if (c.sync)
        send_control(control_site(c.key.from), c.key.from,
                     wire::SyncResult{id, c.seq, std::move(c.result), std::move(c.failure)});
    }
    list.clear();
  };
  auto send = [&](std::vector<DurableState::Append>& list) {
    for (DurableState::Append& m : list) {
      if (!append_raw(id, m.to, site_of(m.to), std::move(m.payload)).ok()) continue;
      add_sender(id, m.to);
      h.out_peers.insert(m.to);
    }
    list.clear();
  };
  consume(ds.covering);
  send(ds.covering_out);
  ds.in_flight = false;
  if (covering_only) return;
  consume(ds.unsaved);
  send(ds.held);
}

// A failure manager failed: the durable streams it managed checkpoint to site 0 from now on
// (failure_manager_of), at once and in full, and one in flight to it is sent again.
void SiteCore::on_failure_manager_failed(SiteId fm) {
  for (auto& [id, h] : hosted_) {
    if (!h->durable || h->rec.failure_manager != fm) continue;
    DurableState& ds = *h->durable;
    ds.force = true;
    // One being saved goes to where failure_manager_of() then says, site 0: it stays as it is.
    // (Uncovered now, its briefcases would be newer than its channels: sim seed 9009270.)
    if (ds.saving && ds.sent_to == fm) ++counters_.checkpoints_saving_at_fm_loss;
    if (ds.in_flight && !ds.saving && ds.sent_to == fm) ds.uncover();
    maybe_checkpoint(*h);
  }
}

// Site 0 is a new process: checkpoints it had not confirmed may be lost with the old one (it
// stores at the end of a step, and confirms after), so they go again, in full.
void SiteCore::on_leader_restarted() {
  // The user-stream pin cannot tell late copies from lies for a while (proto/sender_pins.hpp).
  transport_.leader_restarted(now_);
  if (controls_sent_) {  // the new process may know them from its state, or may not
    const wire::Controls c = *controls_sent_;
    controls_sent_.reset();
    send_controls(c);
  }
  for (auto& [id, h] : hosted_) {
    if (!h->durable) continue;
    DurableState& ds = *h->durable;
    // One being saved is sent to the new process once saved: it stays as it is.
    if (ds.saving && ds.sent_to == 0) ++counters_.checkpoints_saving_at_fm_loss;
    if (!ds.in_flight || ds.saving || ds.sent_to != 0) continue;
    ds.force = true;
    ds.uncover();
    maybe_checkpoint(*h);
  }
}

void SiteCore::set_boot(std::uint32_t boot) {
  transport_.set_boot(boot);
  // What the old process of site 0 sent from its control stream is not this one's to finish:
  // a new numbering, which its receivers start over with (and so drop the old one's rest).
  if (boot > 0) transport_.set_sender_origin(control_stream(options_.self), boot);
  // The old process's words it had not sent yet are lost (Transport::leader_restarted).
  words_lost_ = boot > 0;
}

void SiteCore::leader_channels(SiteId peer, std::vector<wire::OutChannel>* out,
                               std::vector<wire::InChannel>* in) const {
  const proto::ChannelKey to{kLeaderStream, control_stream(peer)};
  if (auto st = transport_.export_send_state(to); st.ok()) out->push_back(out_channel(to, *st));
  const proto::ChannelKey from{control_stream(peer), kLeaderStream};
  if (auto st = transport_.export_recv_state(from); st.ok())
    in->push_back(
        {from.from, st->consumed_up_to, st->reply_site, st->reply_incarnation, st->origin});
}

void SiteCore::restore_leader_channels(SiteId peer, const std::vector<wire::OutChannel>& out,
                                       const std::vector<wire::InChannel>& in) {
  // Straight into the transport, above the channel's bound if need be (not import_channel),
  // what waited behind the bound included: the peer may well have consumed past the saved
  // state, and with the channel split by the bound into the overflow queue it would refuse
  // that consumption as bogus and stall. (Under a small bound, messages beyond the peer's
  // window are refused and repeated: doc/session.md "Limits".)
  const proto::ChannelKey to{kLeaderStream, control_stream(peer)};
  for (const wire::OutChannel& oc : out)
    if (oc.to == to.to) (void)transport_.import_send_state(to, send_state_of(oc, peer));
  for (const wire::InChannel& ic : in) {
    if (ic.from != control_stream(peer)) continue;
    (void)transport_.import_recv_state(
        {ic.from, kLeaderStream},
        proto::RecvState{ic.consumed_up_to, ic.reply_site, ic.reply_incarnation, ic.origin});
  }
}

// ---- The failure manager's side.

void SiteCore::on_checkpoint(SiteId from, wire::Checkpoint c) {
  pending_checkpoints_.emplace_back(from, std::move(c));
  // One commit (one fsync) for all that arrived in this step: store_pending_checkpoints().
}

void SiteCore::store_pending_checkpoints() {
  if (pending_checkpoints_.empty()) return;
  std::vector<std::pair<SiteId, wire::Checkpoint>> batch;
  batch.swap(pending_checkpoints_);
  Status st = options_.store
                  ? Status::ok_status()
                  : Status::error(Status::Code::kUnavailable,
                                  "site " + std::to_string(options_.self) +
                                      " keeps no durable store");
  if (st.ok()) {
    std::vector<proto::StoredRecord> records;
    records.reserve(batch.size());
    for (const auto& [from, c] : batch) {
      proto::StoredRecord r;
      r.key = c.state.stream.id;
      r.epoch = c.state.stream.epoch;
      r.version = c.version;
      wire::encode_control(c.state, &r.value);
      records.push_back(std::move(r));
    }
    st = options_.store->put(records);
    if (!st.ok()) report_error("site " + std::to_string(options_.self) + ": " + st.message());
  }
  for (const auto& [from, c] : batch) {
    wire::Checkpointed done{c.state.stream.id, c.state.stream.epoch, c.version,
                            st.ok() ? 0u : static_cast<std::uint64_t>(st.code()),
                            st.ok() ? std::string() : st.message()};
    if (from == options_.self) {
      on_checkpointed(done);
    } else {
      send_control(from, control_stream(from), done);
    }
  }
}

// The state a durable stream's last checkpoint here holds, for its recovery: its briefcases,
// how far it consumed each channel in, and its channels out with what they had not seen
// consumed (re-sent now; receivers drop what they already have). False if there is none: the
// stream then starts from its initial state.
bool SiteCore::restore_checkpoint(const wire::Recover& m, wire::Arrive* a) {
  if (!options_.store) return false;
  auto got = options_.store->get(m.stream.id);
  if (!got.ok()) {
    report_error("site " + std::to_string(options_.self) + ": " + got.status().message());
    return false;
  }
  if (!got->has_value()) return false;
  Result<wire::ControlMessage> decoded = wire::decode_control((*got)->value);
  const wire::Arrive* saved = decoded.ok() ? std::get_if<wire::Arrive>(&*decoded) : nullptr;
  if (!saved) {
    report_error("site " + std::to_string(options_.self) + ": the checkpoint of stream \"" +
                 m.stream.name + "\" is unreadable; it starts from its initial state");
    return false;
  }
  a->briefcases = saved->briefcases;
  a->in = saved->in;
  a->out = saved->out;
  a->opened = saved->opened;
  a->waiting = saved->waiting;  // appends it made that waited for an open: they wait again
  // Its channels out continue their numbering (no new origin for a durable stream) from a
  // new site: their incarnation must be above any the stream used since the checkpoint, so
  // that receivers send their acks here (each move added one; epochs grow at least as fast).
  const auto epoch = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(m.stream.epoch, std::numeric_limits<std::uint32_t>::max() - 1));
  for (wire::OutChannel& oc : a->out) oc.incarnation = std::max(oc.incarnation, epoch);
  return true;
}

// ---------------------------------------------------------------------------------------
// Policy (COMMANDS.md, Policy)

namespace {
static_assert(static_cast<int>(tcl::Event::kNewPeer) - static_cast<int>(tcl::Event::kOpen) + 1 ==
              wire::kPolicyEventCount);
tcl::Event tcl_event(std::uint8_t e) {
  return static_cast<tcl::Event>(static_cast<int>(tcl::Event::kOpen) + e);
}

// The policy events each controller here has a handler for, as the lane's runner says.
wire::Controls controls_of(AgentRunner& runner) {
  wire::Controls c;
  for (std::uint8_t e = 0; e < wire::kPolicyEventCount; ++e) {
    const std::uint64_t bit = wire::policy_bit(static_cast<wire::PolicyEvent>(e));
    if (runner.has_handler(kSessionControllerAgent, tcl_event(e))) c.session_events |= bit;
    if (runner.has_handler(kSiteControllerAgent, tcl_event(e))) c.site_events |= bit;
  }
  return c;
}

constexpr std::uint64_t kAllEvents = (1ull << wire::kPolicyEventCount) - 1;
}  // namespace

bool SiteCore::controls_told() const {
  if (options_.shell ||
      (options_.controller.empty() && (options_.self != 0 || options_.session_controller.empty())))
    return true;
  if (!controls_sent_) return false;
  const proto::SendChannel* ch =
      transport_.send_channel({control_stream(options_.self), kLeaderStream});
  return ch == nullptr || ch->unconsumed_count() == 0;
}

bool SiteCore::is_controller(std::uint64_t agent) const {
  auto it = code_.find(agent);
  return it != code_.end() && (it->second.flags & wire::kAgentController);
}

void SiteCore::submit_lane(std::size_t lane, std::function<void(Lane&)> work,
                           std::function<void()> done) {
  ++work_in_flight_;
  Lane* l = lanes_[lane].get();
  executor_->submit(
      lane, [l, work = std::move(work)] { work(*l); },
      [this, done = std::move(done)] {
        --work_in_flight_;
        done();
      });
}

void SiteCore::send_controls(const wire::Controls& c) {
  if (controls_sent_ && controls_sent_->session_events == c.session_events &&
      controls_sent_->site_events == c.site_events)
    return;
  controls_sent_ = c;
  send_control(0, kLeaderStream, c);
}

// Each controller is loaded on every lane (the commands it exposes must be in every lane's
// sandbox); the first lane's copy is the one whose policy handlers run. A controller that
// fails to load is reported, and the site then denies every event it would have vetted:
// a broken policy fails closed.
void SiteCore::load_controllers() {
  controllers_loaded_ = true;
  struct Controller {
    std::uint64_t agent;
    const std::string* code;
    const char* what;
  };
  std::vector<Controller> list;
  if (options_.self == 0 && !options_.session_controller.empty())
    list.push_back({kSessionControllerAgent, &options_.session_controller, "session controller"});
  if (!options_.controller.empty())
    list.push_back({kSiteControllerAgent, &options_.controller, "site controller"});
  if (list.empty()) return;
  // Until the first lane has loaded them, the leader asks about every event: they answer
  // once loaded (the lane runs its work in order), and nothing slips past meanwhile.
  wire::Controls provisional;
  for (const Controller& c : list)
    (c.agent == kSessionControllerAgent ? provisional.session_events : provisional.site_events) =
        kAllEvents;
  send_controls(provisional);
  struct Load {
    std::vector<Loading> loads;
    wire::Controls controls;
  };
  for (std::size_t lane = 0; lane < lanes_.size(); ++lane) {
    auto l = std::make_shared<Load>();
    for (const Controller& c : list) {
      Loading& one = l->loads.emplace_back();
      one.agent = c.agent;
      one.code = wire::Code{
          c.agent, 0, {}, *c.code, {}, wire::kAgentController | wire::kAgentTrusted, options_.self};
      one.run.ctx = tcl::HandlerContext{{}, {}, c.agent};
    }
    submit_lane(
        lane,
        [l](Lane& ln) {
          for (Loading& one : l->loads) load_on(ln, one);
          l->controls = controls_of(ln.runner());
        },
        [this, l, lane, list] {
          for (std::size_t i = 0; i < l->loads.size(); ++i) {
            Loading& one = l->loads[i];
            carry_out(nullptr, 0, one.run);
            if (lane != 0) continue;
            if (!one.status.ok()) {
              broken_controllers_[one.agent] = error_text(one.status.message(), one.error_info);
              report_error("site " + std::to_string(options_.self) + ": the " + list[i].what +
                           " failed to load; every event it would check is denied: " +
                           broken_controllers_[one.agent]);
              (one.agent == kSessionControllerAgent ? l->controls.session_events
                                                    : l->controls.site_events) = kAllEvents;
            }
          }
          if (lane == 0) send_controls(l->controls);
        });
  }
}

void SiteCore::on_policy_check(const wire::PolicyCheck& m) {
  auto answer = [&](Status::Code code, std::string text) {
    send_control(0, kLeaderStream,
                 wire::PolicyVerdict{m.check, static_cast<std::uint64_t>(code), std::move(text)});
  };
  if (m.event >= wire::kPolicyEventCount || m.level >= wire::kPolicyLevelCount)
    return answer(Status::Code::kMalformed, "unknown policy check");
  if (m.level == wire::kPolicyStream) {
    auto it = hosted_.find(m.stream);
    if (it == hosted_.end() || std::find(it->second->agents.begin(), it->second->agents.end(),
                                         m.agent) == it->second->agents.end())
      return answer(Status::Code::kNotFound,
                    "the stream's controller is not at site " + std::to_string(options_.self));
    // Between two of the stream's handlers, on its lane (the atomic handler model).
    it->second->ops.push_back(PendingOp{PendingOp::Kind::kPolicy, {}, m.agent, m});
    mark_ready(*it->second);
    return;
  }
  const bool session = m.level == wire::kPolicySession;
  const std::uint64_t agent = session ? kSessionControllerAgent : kSiteControllerAgent;
  if (auto broken = broken_controllers_.find(agent); broken != broken_controllers_.end())
    return answer(Status::Code::kUnavailable, "site " + std::to_string(options_.self) + "'s " +
                                                  (session ? "session" : "site") +
                                                  " controller failed to load: " + broken->second);
  const std::string& code = session ? options_.session_controller : options_.controller;
  if (code.empty() || (session && options_.self != 0))
    return answer(Status::Code::kOk, {});  // no such controller here: nothing to check
  run_policy(0, agent, m);
}

// Runs a controller's policy handler: a stream's (stream != 0), on the stream's lane, or the
// session's or site's, on the first lane. The verdict: `allow`, or why not.
void SiteCore::run_policy(StreamId stream, std::uint64_t agent, const wire::PolicyCheck& m) {
  struct Run {
    HandlerRun run;
    tcl::HandlerOutcome out;
    wire::Controls controls;
  };
  auto r = std::make_shared<Run>();
  const bool own = stream == 0;
  if (!own) r->run.ctx.stream = hosted_.at(stream)->rec.name;
  r->run.ctx.agent = agent;
  const tcl::Event event = tcl_event(m.event);
  auto work = [r, agent, event, own, argv = tcl::merge_list(m.args)](Lane& lane) {
    r->out = lane.with(
        &r->run, [&](AgentRunner& runner) { return runner.run(agent, event, r->run.ctx, argv); });
    if (own) r->controls = controls_of(lane.runner());
  };
  auto done = [this, r, stream, own, check = m.check] {
    auto it = own ? hosted_.end() : hosted_.find(stream);
    carry_out(it == hosted_.end() ? nullptr : it->second.get(), stream, r->run);
    wire::PolicyVerdict v{check, 0, {}};
    if (r->out.ran && !r->out.ok) {
      v.code = static_cast<std::uint64_t>(Status::Code::kPermissionDenied);
      v.text = r->out.result;
    } else if (r->out.ran && r->out.result != "allow") {
      v.code = static_cast<std::uint64_t>(Status::Code::kPermissionDenied);
      v.text = "the policy handler returned \"" + r->out.result +
               "\" (a policy handler returns allow, or raises an error to deny)";
    }
    send_control(0, kLeaderStream, v);
    if (own) send_controls(r->controls);
  };
  if (own)
    submit_lane(0, std::move(work), std::move(done));
  else
    submit(stream, std::move(work), std::move(done));
}

}  // namespace mstream::site
