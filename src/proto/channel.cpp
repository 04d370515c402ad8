#include "proto/channel.hpp"

#include <algorithm>
#include <string>

namespace mstream::proto {

// Idle channels are the bulk of a site's memory (bench memory: <= 256 bytes per channel).
static_assert(sizeof(RecvChannel) <= 64, "RecvChannel grew: check bench memory");
static_assert(sizeof(SendChannel) <= 80, "SendChannel grew: check bench memory");

// ---------------------------------------------------------------------------------------
// SendChannel

SendChannel::SendChannel(SendState state)
    : buf_(std::move(state.unconsumed)),
      next_seq_(state.next_seq),
      consumed_up_to_(state.consumed_up_to),
      unsent_seq_(state.consumed_up_to + 1),
      // Messages appended before the move may have been sent from the old site; a CONSUMED
      // for any of them is genuine.
      sent_up_to_(state.next_seq - 1) {
  dest = state.dest;
  incarnation = state.incarnation;
  origin = state.origin;
  // Transport::import_send_state checks that the messages fit kMaxBufferedBytes.
  for (const wire::Bytes& b : buf_) bytes_ += static_cast<std::uint32_t>(b.size());
}

Status SendChannel::check_append(std::size_t size, const ChannelConfig& cfg) const {
  if (size > cfg.max_message_bytes || size > kMaxMessageSize)
    return Status::error(Status::Code::kTooLarge,
                         "message of " + std::to_string(size) + " bytes exceeds the maximum of " +
                             std::to_string(cfg.max_message_bytes));
  if (unconsumed_count() >= cfg.max_unconsumed_messages)
    return Status::error(Status::Code::kWouldBlock,
                         "channel buffer full: " + std::to_string(unconsumed_count()) +
                             " unconsumed messages");
  // A single message larger than the byte bound is still accepted into an empty buffer, or
  // it could never be sent.
  if (unconsumed_count() > 0 && bytes_ + size > std::min<std::uint64_t>(cfg.max_unconsumed_bytes,
                                                                      kMaxBufferedBytes))
    return Status::error(Status::Code::kWouldBlock,
                         "channel buffer full: " + std::to_string(bytes_) + " unconsumed bytes");
  return Status::ok_status();
}

Seq SendChannel::push(wire::Bytes payload) {
  // Reclaim the released prefix once it dominates, so the buffer does not creep.
  if (head_ > 0 && head_ * 2 >= buf_.size()) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  bytes_ += static_cast<std::uint32_t>(payload.size());
  buf_.push_back(std::move(payload));
  return next_seq_++;
}

std::size_t SendChannel::release(Seq up_to, bool* bogus) {
  *bogus = false;
  if (up_to <= consumed_up_to_) return 0;
  // The receiver cannot have consumed what was never handed to the path.
  if (up_to > sent_up_to_) {
    *bogus = true;
    return 0;
  }
  std::size_t n = static_cast<std::size_t>(up_to - consumed_up_to_);
  for (std::size_t i = 0; i < n; ++i) {
    wire::Bytes& b = buf_[head_ + i];
    bytes_ -= static_cast<std::uint32_t>(b.size());
    wire::Bytes().swap(b);
  }
  head_ += static_cast<std::uint32_t>(n);
  consumed_up_to_ = up_to;
  // After a re-send the cursor may point at messages now released: skip them.
  if (unsent_seq_ <= up_to) {
    unsent_seq_ = up_to + 1;
    unsent_offset_ = 0;
  }
  if (head_ == buf_.size()) {
    std::vector<wire::Bytes>().swap(buf_);  // an idle channel keeps no buffer
    head_ = 0;
  }
  return n;
}

void SendChannel::advance_unsent(std::size_t bytes_sent) {
  unsent_offset_ += static_cast<std::uint32_t>(bytes_sent);
  if (unsent_offset_ >= unsent_message().size()) {
    sent_up_to_ = std::max(sent_up_to_, unsent_seq_);
    ++unsent_seq_;
    unsent_offset_ = 0;
  }
}

void SendChannel::resend_unconsumed() {
  unsent_seq_ = consumed_up_to_ + 1;
  unsent_offset_ = 0;
}

SendState SendChannel::export_state() const {
  SendState s;
  s.next_seq = next_seq_;
  s.consumed_up_to = consumed_up_to_;
  s.unconsumed.assign(buf_.begin() + static_cast<std::ptrdiff_t>(head_), buf_.end());
  s.dest = dest;
  s.incarnation = incarnation;
  s.origin = origin;
  return s;
}

// ---------------------------------------------------------------------------------------
// RecvChannel

RecvChannel::RecvChannel(const RecvState& state)
    : origin_(state.origin),
      reply_incarnation_(state.reply_incarnation),
      next_expected_(state.consumed_up_to + 1),
      consumed_up_to_(state.consumed_up_to) {
  reply_site = state.reply_site;
}

bool RecvChannel::on_sender(std::uint32_t origin, Seq floor) {
  if (origin < origin_) return false;
  if (origin > origin_) {
    // What the old numbering delivered and was not yet consumed stays with the application;
    // its consumption no longer counts here (Transport::consume checks the origin).
    origin_ = origin;
    next_expected_ = 1;
    consumed_up_to_ = 0;
    reply_incarnation_ = 0;
    has_next_ = false;
    next_ = wire::Bytes();
    pending_.reset();
    bytes_ = 0;
  }
  if (floor >= next_expected_) {
    if (has_next_) {
      bytes_ -= static_cast<std::uint32_t>(next_.size());
      next_ = wire::Bytes();
      has_next_ = false;
    }
    if (pending_) {
      bytes_ -= static_cast<std::uint32_t>(pending_->erase_up_to(floor));
      if (pending_->size() == 0) pending_.reset();
    }
    next_expected_ = floor + 1;
    consumed_up_to_ = floor;
  }
  return true;
}

RecvChannel::Outcome RecvChannel::on_fragment(Seq seq, std::uint64_t total_len,
                                              std::uint64_t offset, wire::ByteView payload,
                                              const ChannelConfig& cfg) {
  if (seq < next_expected_) return Outcome::kDuplicate;
  // A legitimate sender never has more than max_unconsumed_messages beyond what was consumed.
  if (seq - consumed_up_to_ > cfg.max_unconsumed_messages) return Outcome::kOutOfWindow;
  if (total_len > cfg.max_message_bytes) return Outcome::kTooLarge;
  if (seq == next_expected_ && has_next_) return Outcome::kDuplicate;
  // Never binding with a sane configuration (it takes ~4 GiB held for one channel), but it
  // keeps bytes_ within its 32 bits whatever the configuration says.
  const std::uint64_t held_limit =
      std::min<std::uint64_t>(cfg.max_unconsumed_bytes + cfg.max_message_bytes, kMaxHeldBytes);
  if (seq == next_expected_ && offset == 0 && payload.size() == total_len &&
      bytes_ + total_len <= kMaxHeldBytes && (!pending_ || pending_->find(seq) == nullptr)) {
    // The common case, a whole message in order: no reorder-buffer entry.
    next_.assign(payload.begin(), payload.end());
    has_next_ = true;
    bytes_ += static_cast<std::uint32_t>(next_.size());
    return Outcome::kAccepted;
  }
  if (!pending_) pending_ = std::make_unique<Ring>();
  Pending* found = pending_->find(seq);
  if (found == nullptr) {
    // Bound what a sender can make us hold: its own buffer bound, plus one message that an
    // empty buffer always accepts.
    if (bytes_ + total_len > held_limit) {
      if (pending_->size() == 0) pending_.reset();
      return Outcome::kOutOfWindow;
    }
    found = &pending_->insert(seq, next_expected_);
    found->data.resize(static_cast<std::size_t>(total_len));
    bytes_ += static_cast<std::uint32_t>(total_len);
  }
  Pending& p = *found;
  if (p.data.size() != total_len) return Outcome::kInconsistent;
  if (p.complete()) return Outcome::kDuplicate;
  if (offset == 0 && payload.size() == total_len) {
    std::copy(payload.begin(), payload.end(), p.data.begin());
    p.received = total_len;
    p.ranges.reset();
    return Outcome::kAccepted;
  }
  // Fragments: merge [offset, end) into the received ranges, counting only new bytes, so a
  // fragment repeated after a re-send (possibly cut differently) is harmless.
  if (!p.ranges) p.ranges = std::make_unique<std::map<std::uint64_t, std::uint64_t>>();
  auto& ranges = *p.ranges;
  std::uint64_t start = offset, end = offset + payload.size();
  std::copy(payload.begin(), payload.end(), p.data.begin() + static_cast<std::ptrdiff_t>(offset));
  auto r = ranges.upper_bound(start);
  if (r != ranges.begin()) {
    auto prev = std::prev(r);
    if (prev->second >= start) r = prev;
  }
  std::uint64_t covered = 0;
  while (r != ranges.end() && r->first <= end) {
    std::uint64_t ov_start = std::max(r->first, start), ov_end = std::min(r->second, end);
    if (ov_end > ov_start) covered += ov_end - ov_start;
    start = std::min(start, r->first);
    end = std::max(end, r->second);
    r = ranges.erase(r);
  }
  ranges.emplace(start, end);
  p.received += payload.size() - covered;
  if (p.complete()) p.ranges.reset();
  return Outcome::kAccepted;
}

bool RecvChannel::pop_ready(Seq* seq, wire::Bytes* out) {
  if (has_next_) {
    *seq = next_expected_++;
    bytes_ -= static_cast<std::uint32_t>(next_.size());
    *out = std::move(next_);
    next_ = wire::Bytes();
    has_next_ = false;
    return true;
  }
  if (!pending_) return false;
  Pending* p = pending_->find(next_expected_);
  if (p == nullptr || !p->complete()) return false;
  *seq = next_expected_;
  bytes_ -= static_cast<std::uint32_t>(p->data.size());
  *out = std::move(p->data);
  pending_->erase(next_expected_);
  if (pending_->size() == 0) pending_.reset();  // idle channels keep no reorder buffer
  ++next_expected_;
  return true;
}

RecvChannel::Pending* RecvChannel::Ring::find(Seq seq) {
  if (slots_.empty()) return nullptr;
  Slot& s = slots_[seq & (slots_.size() - 1)];
  return s.seq == seq ? &s.p : nullptr;
}

RecvChannel::Pending& RecvChannel::Ring::insert(Seq seq, Seq base) {
  std::size_t n = slots_.empty() ? 16 : slots_.size();
  while (seq - base >= n) n *= 2;
  if (n != slots_.size()) {
    // Every held message lies in [base, base + old size): re-seat them in the larger ring.
    std::vector<Slot> grown(n);
    for (Slot& s : slots_)
      if (s.seq != 0) grown[s.seq & (n - 1)] = std::move(s);
    slots_ = std::move(grown);
  }
  Slot& s = slots_[seq & (n - 1)];
  s.seq = seq;
  s.p = Pending{};
  ++count_;
  return s.p;
}

std::uint64_t RecvChannel::Ring::erase_up_to(Seq seq) {
  std::uint64_t bytes = 0;
  for (Slot& s : slots_) {
    if (s.seq == 0 || s.seq > seq) continue;
    bytes += s.p.data.size();
    s.seq = 0;
    s.p = Pending{};
    --count_;
  }
  return bytes;
}

void RecvChannel::Ring::erase(Seq seq) {
  Slot& s = slots_[seq & (slots_.size() - 1)];
  s.seq = 0;
  s.p = Pending{};
  --count_;
}

Status RecvChannel::consume(Seq up_to) {
  if (up_to <= consumed_up_to_ || up_to >= next_expected_)
    return Status::error(Status::Code::kInvalidArgument,
                         "consume up to " + std::to_string(up_to) + ": consumed " +
                             std::to_string(consumed_up_to_) + ", delivered " +
                             std::to_string(next_expected_ - 1));
  consumed_up_to_ = up_to;
  return Status::ok_status();
}

}  // namespace mstream::proto
