#include "site/site_core.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>

#include "site/handler_errors.hpp"
#include "site/loading.hpp"
#include "site/per_source_queue.hpp"
#include "site/site_internal.hpp"
#include "tcl/tcl_host.hpp"

namespace mstream::site {

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

SiteCore::SiteCore(SiteOptions options)
    : options_(std::move(options)),
      transport_(options_.self, options_.transport),
      view_(std::make_unique<SiteView>()) {
  view_->self = options_.self;
  view_->max_message_bytes = options_.max_message_bytes;
  view_->max_held_bytes = options_.max_held_bytes;
  view_->handler_limits = options_.handler_limits;
  view_->directory.set_kept_destroyed(options_.kept_destroyed);
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
    report_error(std::string(options_.shell ? "shell " : "site ") + std::to_string(options_.self) +
                 ": no word from the leader for " +
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
    if (h->durable &&
        (h->durable->in_flight || !h->durable->unsaved.empty() || !h->durable->held.empty()))
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
  if (!retired_senders_.empty()) drop_drained_retired();
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
// Control

void SiteCore::send_control(SiteId to, StreamId to_stream, const wire::ControlMessage& m) {
  // Nothing goes to a site that failed or left (an Arrive for a move whose target failed,
  // say): it would wait for an acknowledgement for ever (sim seed 119). The leader settles
  // what it was for.
  if (to != options_.self && view_->directory.gone(to)) return;
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
          settle(m.settled_below);
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
          settle(m.settled_below);
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
          queue_op(*it->second, PendingOp{PendingOp::Kind::kAttach, {}, m.agent});
        } else if constexpr (std::is_same_v<T, wire::MoveOut>) {
          auto it = hosted_.find(m.stream);
          if (it == hosted_.end()) return;  // the leader orders moves; cannot happen
          queue_op(*it->second, PendingOp{PendingOp::Kind::kMoveOut, m, 0});
        } else if constexpr (std::is_same_v<T, wire::DestroyStream>) {
          auto it = hosted_.find(m.stream);
          if (it == hosted_.end()) {
            reply_installed(wire::Installed{m.stream, 0, 0, 0, {}});
            return;
          }
          queue_op(*it->second, PendingOp{PendingOp::Kind::kDestroy, {}, 0});
        } else if constexpr (std::is_same_v<T, wire::Finalize>) {
          finalize_visited(m);
        } else if constexpr (std::is_same_v<T, wire::Arrive>) {
          on_arrive(from_site, m);
        } else if constexpr (std::is_same_v<T, wire::Expect>) {
          on_expect(m);
        } else if constexpr (std::is_same_v<T, wire::Probe>) {
          wire::ProbeReply r{
              m.wave, idle() ? 1u : 0u, counters_.appended, counters_.consumed, counters_.requests,
              {},     held_messages()};
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
  // A sender destroyed before this site had the word of where it was (it joined, or its
  // process restarted, since): its last copies come from the site it was destroyed at, as
  // they would had this site heard its Locations. Once only: each word of a destroy takes a
  // place among the transport's last retired senders.
  if (m.destroyed_at != wire::kNoSite && m.destroy_epoch > 0 && !is_control(m.stream) &&
      !view_->directory.find(m.stream) && !transport_.sender_placed_at(m.stream, m.destroyed_at)) {
    transport_.locate_sender(m.stream, m.destroyed_at, m.destroy_epoch - 1, now_);
    transport_.locate_sender(m.stream, proto::SenderPins::kDestroyed, m.destroy_epoch, now_);
    ++counters_.destroyed_senders_placed;
  }
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
  if (!is_control(rec.id) && (applied || !view_->directory.destroyed(rec.id)))
    transport_.locate_sender(rec.id, rec.site, rec.epoch, now_);
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

void SiteCore::settle(std::uint64_t below) {
  if (below == 0) return;
  std::unique_lock lock(view_->mu);
  view_->directory.settle(below);
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
    if (peer.shell) {
      counters_.consumed_from_shell.erase(peer.site);
      // A shell that left asks nothing more; one declared failed is fenced below, and what it
      // asked is nobody's now. (A failed site's control messages already taken are still
      // handled: the leader settles what they were for. Sites are few; shells come and go.)
      transport_.forget_sender(control_stream(peer.site));
    }
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
    std::uint64_t lost = 0;
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
      lost += n;
    }
    // One report for the pair, whatever part waited in the overflow queue.
    auto ov = overflow_.find(key);
    if (ov != overflow_.end()) lost += ov->second.size();
    count_discarded(from, lost, name);
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
  if (is_control(from) && to_site != options_.self) ++counters_.control_sent;
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

}  // namespace mstream::site
