#include "proto/path.hpp"

#include <algorithm>
#include <cassert>

namespace mstream::proto {

// ---------------------------------------------------------------------------------------
// RttEstimator (RFC 6298)

RttEstimator::RttEstimator(const PathConfig& cfg)
    : min_rto_(cfg.min_rto), max_rto_(cfg.max_rto), rto_(clamp(cfg.initial_rto)) {}

Time RttEstimator::clamp(Time t) const { return std::clamp(t, min_rto_, max_rto_); }

void RttEstimator::on_sample(Time r) {
  if (r < 0) return;
  min_rtt_ = std::min(min_rtt_, r);
  if (!has_sample_) {
    srtt_ = r;
    rttvar_ = r / 2;
    has_sample_ = true;
  } else {
    Time diff = srtt_ > r ? srtt_ - r : r - srtt_;
    rttvar_ = (3 * rttvar_ + diff) / 4;
    srtt_ = (7 * srtt_ + r) / 8;
  }
  // G, the clock granularity, is 1 us for our drivers.
  rto_ = clamp(srtt_ + std::max<Time>(kMicrosecond, 4 * rttvar_));
}

void RttEstimator::back_off() {
  rto_ = rto_ > max_rto_ / 2 ? max_rto_ : clamp(rto_ * 2);
}

// ---------------------------------------------------------------------------------------
// Path

Path::Path(SiteId self, SiteId remote, const PathConfig& cfg)
    : self_(self),
      remote_(remote),
      cfg_(cfg),
      rtt_(cfg),
      cwnd_(std::max(cfg.initial_cwnd, cfg.min_cwnd)),
      ssthresh_(cfg.max_window),
      bits_((cfg.max_window + 63) / 64, 0) {}

bool Path::receive_bit(PacketNumber pn) const {
  std::size_t i = static_cast<std::size_t>(pn % (bits_.size() * 64));
  return (bits_[i / 64] >> (i % 64)) & 1;
}

void Path::set_receive_bit(PacketNumber pn, bool v) {
  std::size_t i = static_cast<std::size_t>(pn % (bits_.size() * 64));
  if (v)
    bits_[i / 64] |= (1ull << (i % 64));
  else
    bits_[i / 64] &= ~(1ull << (i % 64));
}

Path::Accept Path::on_packet(PacketNumber pn, std::size_t bytes, Time now) {
  ack_pending_ = true;
  // A duplicate means our ack may have been lost: repeat it at once.
  if (pn <= cum_ || (pn <= largest_received_ && receive_bit(pn))) {
    ack_urgent_ = true;
    note_loss(now);
    return Accept::kDuplicate;
  }
  if (pn > cum_ + cfg_.max_window ||
      (cfg_.retransmission == RetransmissionClass::kGoBackN && pn != cum_ + 1)) {
    ack_urgent_ = true;  // under go-back-N, the duplicate ack is the loss signal
    note_loss(now);
    return Accept::kDiscard;
  }
  if (pn == cum_ + 1) {
    ++cum_;
    // Slide over the datagrams that had arrived out of order.
    while (cum_ < largest_received_ && receive_bit(cum_ + 1)) {
      set_receive_bit(cum_ + 1, false);
      ++cum_;
    }
  } else {
    set_receive_bit(pn, true);
  }
  largest_received_ = std::max(largest_received_, pn);
  unacked_bytes_ += bytes;
  // Only a burst's datagrams count towards the "every second one" rule (PathConfig::
  // ack_burst_gap); two full-sized ones' worth of bytes is urgent whenever they came.
  if (largest_received_ > cum_) note_loss(now);  // a gap
  if (unacked_received_ > 0 && now - last_received_at_ > cfg_.ack_burst_gap && !lossy(now))
    unacked_received_ = 0;
  last_received_at_ = now;
  if (++unacked_received_ >= 2 || unacked_bytes_ >= 2 * cfg_.mtu || largest_received_ > cum_)
    ack_urgent_ = true;
  if (ack_deadline_ == kNever) ack_deadline_ = now + ack_delay(now);
  return Accept::kNew;
}

void Path::make_ack(wire::AckFrame* ack) const {
  ack->cumulative = cum_;
  ack->ranges.clear();
  PacketNumber pn = cum_ + 2;
  while (pn <= largest_received_ && ack->ranges.size() < wire::kMaxAckRanges) {
    if (!receive_bit(pn)) {
      ++pn;
      continue;
    }
    wire::AckRange r{pn, pn};
    while (r.last + 1 <= largest_received_ && receive_bit(r.last + 1)) ++r.last;
    ack->ranges.push_back(r);
    pn = r.last + 2;
  }
}

Path::SentPacket* Path::find(PacketNumber pn) {
  if (sent_.empty() || pn < sent_.front().pn || pn > sent_.back().pn) return nullptr;
  return &sent_[static_cast<std::size_t>(pn - sent_.front().pn)];
}

void Path::mark_acked(SentPacket& p, std::size_t* newly) {
  if (p.acked) return;
  p.acked = true;
  if (!p.lost) --in_flight_;
  ++*newly;
  p.body = wire::Bytes();
}

void Path::note_rack(const SentPacket& p, Time now) {
  // A repeated datagram's ack does not say which transmission arrived; for RACK it counts only
  // if it came too late to be for an earlier one (RFC 8985 6.2 step 2).
  if (p.tx_count == 1 || (rtt_.has_sample() && now - p.last_sent >= rtt_.min_rtt()))
    rack_tx_order_ = std::max(rack_tx_order_, p.tx_order);
}

Time Path::probe_timeout(Time now) const {
  if (!rtt_.has_sample()) return rtt_.rto();
  // The peer may hold its ack back for its delay (RFC 8985 7.2 adds it too): the short one on
  // a path that showed loss, where the peer saw it too (a gap, or this probe's duplicate).
  return std::max<Time>(2 * rtt_.srtt(), 200 * kMicrosecond) + ack_delay(now);
}

void Path::arm_timers(Time now) {
  if (sent_.empty()) {
    rto_deadline_ = pto_deadline_ = kNever;
    probe_due_ = probe_unanswered_ = false;
    return;
  }
  if (rto_deadline_ == kNever) rto_deadline_ = now + rtt_.rto();
  pto_deadline_ = probe_unanswered_ ? kNever : std::min(now + probe_timeout(now), rto_deadline_);
}

void Path::mark_lost(SentPacket& p) {
  if (p.acked || p.lost) return;
  p.lost = true;
  --in_flight_;
  lost_.push_back(p.pn);
}

void Path::pop_acked_front() {
  while (!sent_.empty() && sent_.front().acked) sent_.pop_front();
}

void Path::on_newly_acked(std::size_t n) {
  if (n == 0) return;
  for (std::size_t i = 0; i < n; ++i) {
    if (cwnd_ < ssthresh_)
      cwnd_ += 1.0;  // slow start
    else
      cwnd_ += 1.0 / cwnd_;  // congestion avoidance
  }
  cwnd_ = std::min(cwnd_, static_cast<double>(cfg_.max_window));
}

void Path::on_loss_event(Time now, Time sent_time) {
  note_loss(now);
  // One reduction per window of data: losses of datagrams sent before the last reduction
  // belong to the same event.
  if (sent_time <= recovery_start_) return;
  recovery_start_ = now;
  ssthresh_ = std::max(cwnd_ * cfg_.loss_backoff, static_cast<double>(cfg_.min_cwnd));
  cwnd_ = ssthresh_;
}

bool Path::on_ack(const wire::AckFrame& ack, Time now) {
  if (ack.cumulative >= next_pn_) return false;
  for (const wire::AckRange& r : ack.ranges)
    if (r.last >= next_pn_) return false;

  std::size_t newly = 0;
  if (!sent_.empty()) {
    PacketNumber front = sent_.front().pn;
    // The RTT sample comes from the largest packet number acknowledged, only if this ack is
    // the first to cover it and it was sent once (Karn): older ones covered now may have had
    // their own acks lost, and would inflate the estimate.
    PacketNumber largest = ack.ranges.empty() ? ack.cumulative : ack.ranges.back().last;
    if (SentPacket* p = find(largest); p != nullptr && !p->acked && p->tx_count == 1)
      rtt_.on_sample(now - p->last_sent);
    for (PacketNumber pn = front; pn <= ack.cumulative && pn - front < sent_.size(); ++pn) {
      SentPacket& p = sent_[static_cast<std::size_t>(pn - front)];
      if (!p.acked) note_rack(p, now);
      mark_acked(p, &newly);
    }
    for (const wire::AckRange& r : ack.ranges)
      for (PacketNumber pn = std::max(r.first, front); pn <= r.last; ++pn)
        if (SentPacket* p = find(pn); p != nullptr && !p->acked) {
          note_rack(*p, now);
          mark_acked(*p, &newly);
        }
  }
  bool cum_advanced = ack.cumulative > last_cum_ack_;
  if (cum_advanced) {
    last_cum_ack_ = ack.cumulative;
    dup_acks_ = 0;
  }
  pop_acked_front();
  on_newly_acked(newly);

  if (cfg_.retransmission == RetransmissionClass::kGoBackN) {
    if (!cum_advanced && !sent_.empty() && newly == 0) {
      // Three duplicate cumulative acks: the receiver is discarding what follows a gap. After
      // a go-back, go back again once the repeat made progress and stalled at a new gap (a
      // repeat was lost too), or once every repeat came back as a duplicate (the first one was
      // lost): otherwise only the timeout, backed off and with no fresh RTT sample to reset it,
      // would recover, and goodput collapses under steady loss.
      if (++dup_acks_ >= 3 &&
          (ack.cumulative > gbn_recover_cum_ || dup_acks_ >= 3 + gbn_repeated_)) {
        on_loss_event(now, sent_.front().last_sent);
        go_back();
        dup_acks_ = 0;
      }
    }
  } else {
    detect_losses_sr(now);
  }
  // RFC 6298 5.3: restart the timer when new data is acknowledged.
  if (newly > 0) {
    rto_deadline_ = kNever;
    probe_due_ = probe_unanswered_ = false;
    arm_timers(now);
  }
  return true;
}

void Path::detect_losses_sr(Time now) {
  rack_deadline_ = kNever;
  if (rack_tx_order_ == 0) return;
  // RACK (RFC 8985): a datagram is lost when one transmitted after it was acknowledged and a
  // reordering window has passed since it was sent. Three later datagrams acknowledged (the
  // classic duplicate-ack threshold) suffice without waiting, for first transmissions only:
  // a repeat is younger than the datagrams numbered above it.
  Time reo_wnd = rtt_.has_sample() ? std::max<Time>(rtt_.min_rtt() / 4, 50 * kMicrosecond)
                                   : 1 * kMillisecond;
  std::size_t acked_above = 0;
  bool found = false;
  for (auto it = sent_.rbegin(); it != sent_.rend(); ++it) {
    SentPacket& p = *it;
    if (p.acked) {
      ++acked_above;
      continue;
    }
    if (p.lost) continue;
    if (p.tx_count == 1 && acked_above >= 3) {
      on_loss_event(now, p.last_sent);
      mark_lost(p);
      found = true;
    } else if (p.tx_order < rack_tx_order_) {
      if (now - p.last_sent >= reo_wnd) {
        on_loss_event(now, p.last_sent);
        mark_lost(p);
        found = true;
      } else {
        rack_deadline_ = std::min(rack_deadline_, p.last_sent + reo_wnd);
      }
    }
  }
  // The scan runs newest first; repeat the oldest first.
  if (found) std::sort(lost_.begin(), lost_.end());
}

void Path::go_back() {
  for (SentPacket& p : sent_) mark_lost(p);
  std::sort(lost_.begin(), lost_.end());
  gbn_recover_cum_ = last_cum_ack_;
  gbn_repeated_ = sent_.size();
}

bool Path::can_send() const {
  if (in_flight_ >= static_cast<std::size_t>(cwnd_)) return false;
  // The receiver accepts packet numbers up to its cumulative ack + max_window.
  if (!sent_.empty() && next_pn_ - sent_.front().pn >= cfg_.max_window) return !lost_.empty();
  return true;
}

std::size_t Path::body_room() const {
  wire::DatagramHeader h{self_, remote_, next_pn_, boot, peer_boot};
  std::size_t used = wire::header_size(h);
  if (ack_pending_) {
    wire::AckFrame ack;
    make_ack(&ack);
    used += wire::ack_size(ack);
  }
  return cfg_.mtu > used ? cfg_.mtu - used : 0;
}

void Path::assemble(PacketNumber pn, wire::ByteView body, bool with_ack, wire::Bytes* out) {
  out->clear();
  wire::encode_header(wire::DatagramHeader{self_, remote_, pn, boot, peer_boot}, out);
  if (with_ack) {
    wire::AckFrame ack;
    make_ack(&ack);
    if (out->size() + wire::ack_size(ack) + body.size() <= cfg_.mtu) {
      wire::encode_ack(ack, out);
      clear_ack_pending();
    }
  }
  out->insert(out->end(), body.begin(), body.end());
  wire::seal(out, integrity);
}

bool Path::build_retransmission(Time now, wire::Bytes* out) {
  while (!lost_.empty()) {
    PacketNumber pn = lost_.front();
    lost_.pop_front();
    SentPacket* p = find(pn);
    if (p == nullptr || p->acked || !p->lost) continue;
    p->lost = false;
    ++in_flight_;
    ++p->tx_count;
    p->tx_order = ++tx_counter_;
    p->last_sent = now;
    ++retransmissions_;
    assemble(pn, p->body, ack_pending_, out);
    arm_timers(now);
    return true;
  }
  return false;
}

bool Path::build_probe(Time now, wire::Bytes* out) {
  probe_due_ = false;
  // The newest datagram still outstanding: its ack lets RACK find any loss before it.
  for (auto it = sent_.rbegin(); it != sent_.rend(); ++it) {
    if (it->acked) continue;
    if (it->lost) return false;  // already queued for repeat; that is the probe
    ++it->tx_count;
    it->tx_order = ++tx_counter_;
    it->last_sent = now;
    ++probes_;
    ++retransmissions_;
    assemble(it->pn, it->body, ack_pending_, out);
    // RFC 8985 7.3: after a probe the RTO is re-armed, so the probe gets a full RTO to be
    // answered; without an answer no further probe goes before that RTO.
    probe_unanswered_ = true;
    pto_deadline_ = kNever;
    rto_deadline_ = now + rtt_.rto();
    return true;
  }
  return false;
}

void Path::build_new(wire::ByteView body, Time now, wire::Bytes* out) {
  assert(!body.empty());
  SentPacket p;
  p.pn = next_pn_++;
  p.first_sent = p.last_sent = now;
  p.tx_count = 1;
  p.tx_order = ++tx_counter_;
  p.body.assign(body.begin(), body.end());
  assemble(p.pn, p.body, ack_pending_, out);
  sent_.push_back(std::move(p));
  ++in_flight_;
  arm_timers(now);
}

void Path::build_ack_only(wire::Bytes* out) { assemble(0, {}, true, out); }

Time Path::next_timeout() const {
  Time ack = ack_pending_ && !ack_urgent_ ? ack_deadline_ : kNever;
  return std::min({rto_deadline_, rack_deadline_, probe_due_ ? kNever : pto_deadline_, ack});
}

void Path::on_timeout(Time now) {
  if (ack_pending_ && ack_deadline_ <= now) ack_urgent_ = true;
  if (rack_deadline_ <= now) detect_losses_sr(now);
  if (sent_.empty()) {
    arm_timers(now);
    return;
  }
  if (rto_deadline_ <= now) {
    // RFC 6298 5.4-5.6 with RFC 5681's reaction: everything outstanding is presumed lost,
    // the window collapses and the timer backs off.
    ++timeouts_;
    note_loss(now);
    ssthresh_ = std::max(cwnd_ * 0.5, static_cast<double>(cfg_.min_cwnd));
    cwnd_ = cfg_.min_cwnd;
    recovery_start_ = now;
    go_back();
    rtt_.back_off();
    rto_deadline_ = now + rtt_.rto();
    pto_deadline_ = kNever;
    probe_due_ = false;
    probe_unanswered_ = true;
    return;
  }
  if (pto_deadline_ <= now) {
    note_loss(now);
    pto_deadline_ = kNever;
    probe_due_ = lost_.empty();  // a queued repeat already probes
  }
}

}  // namespace mstream::proto
