#pragma once
// Channels: the per sender/receiver stream pair half of the messaging core (seed 004 §2.3).
// A SendChannel numbers messages and keeps each until the receiver's consumption
// acknowledgement; a RecvChannel reorders, suppresses duplicates and reassembles fragments,
// then hands messages out strictly in sequence. Their sequence state is an explicit value
// (SendState, RecvState) so it can travel with a moving stream (seed 004: "the MStream takes a
// state vector of sequence numbers").
//
// Thread-safety: none; owned by one Transport.

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "mstream/status.hpp"
#include "proto/config.hpp"
#include "proto/types.hpp"
#include "wire/codec.hpp"

namespace mstream::proto {

// What a sender's side of one channel is, as a value.
struct SendState {
  Seq next_seq = 1;        // the sequence number the next append gets
  Seq consumed_up_to = 0;  // every message <= this was consumed and released
  // The unconsumed messages consumed_up_to + 1 .. next_seq - 1, in order.
  std::vector<wire::Bytes> unconsumed;
  SiteId dest = 0;  // where the receiver was last known to be
  // How many times the sender's side of the channel moved (Transport::import_send_state adds
  // one). Every DATA and FRAGMENT carries it, so a receiver can tell a stale copy sent from a
  // site the sender left from a fresh one sent by the site it lives at now.
  std::uint32_t incarnation = 0;
  // Which numbering of the channel this is: a stream recovered without its state after its
  // site failed numbers its channels afresh under a higher origin (doc/protocol.md).
  std::uint32_t origin = 0;
};

// What a receiver's side of one channel is, as a value. Messages delivered but not consumed
// are not part of it: the sender still holds them and re-sends them after a move.
struct RecvState {
  Seq consumed_up_to = 0;
  SiteId reply_site = 0;  // where consumption acks go: the sender's last known site
  std::uint32_t reply_incarnation = 0;  // the sender's incarnation at reply_site
  std::uint32_t origin = 0;             // the sender's numbering (SendState::origin)
};

class SendChannel {
 public:
  SendChannel() = default;
  explicit SendChannel(SendState state);

  // The most bytes a sender buffer holds, whatever the configuration says.
  static constexpr std::uint64_t kMaxBufferedBytes = 0xFFFFFFFFull;
  // The largest message a channel takes, whatever the configuration says.
  static constexpr std::uint64_t kMaxMessageSize = 0x7FFFFFFFull;

  // Checks the bounds of ChannelConfig; kWouldBlock or kTooLarge with nothing accepted.
  Status check_append(std::size_t size, const ChannelConfig& cfg) const;
  // REQUIRES: check_append() was ok. Returns the message's sequence number.
  Seq push(wire::Bytes payload);

  // Releases messages up to `up_to`. Returns how many were released; 0 for a stale ack.
  // An ack for a message never sent is refused (returns false in *bogus).
  std::size_t release(Seq up_to, bool* bogus);

  // Sending progress: messages before unsent_seq() were handed to the path (which repeats
  // them until its own acknowledgement); unsent_offset() is how much of the message at
  // unsent_seq() went out as fragments.
  bool has_unsent() const { return unsent_seq_ < next_seq_; }
  Seq unsent_seq() const { return unsent_seq_; }
  std::size_t unsent_offset() const { return unsent_offset_; }
  // REQUIRES: has_unsent().
  const wire::Bytes& unsent_message() const { return message(unsent_seq_); }
  void advance_unsent(std::size_t bytes_sent);
  // Sends every unconsumed message again, from the first (after a relocation or rejection).
  void resend_unconsumed();

  // REQUIRES: consumed_up_to() < seq < next_seq().
  const wire::Bytes& message(Seq seq) const { return buf_[head_ + (seq - consumed_up_to_ - 1)]; }

  Seq next_seq() const { return next_seq_; }
  Seq consumed_up_to() const { return consumed_up_to_; }
  std::size_t unconsumed_count() const { return buf_.size() - head_; }
  std::size_t unconsumed_bytes() const { return bytes_; }

  SendState export_state() const;

 private:
  std::vector<wire::Bytes> buf_;  // [head_, end) are the unconsumed messages
  Seq next_seq_ = 1;
  Seq consumed_up_to_ = 0;
  Seq unsent_seq_ = 1;
  Seq sent_up_to_ = 0;  // highest message ever handed whole to the path
  // 32 bits suffice: buffers hold at most 2^32 messages and messages are under 4 GiB
  // (wire::kMaxMessageBytes); idle channels are many, so their size matters.
  std::uint32_t head_ = 0;
  // 32 bits too (check_append keeps it below kMaxBufferedBytes), so that the incarnation fits
  // without growing an idle channel past 80 bytes.
  std::uint32_t bytes_ = 0;
  // 31 bits (messages are under 2 GiB, kMaxMessageSize), beside the flag below.
  std::uint32_t unsent_offset_ : 31 = 0;

 public:
  // Declared after the 32-bit counters above so that they share words: 80 bytes in all.
  std::uint32_t queued : 1 = 0;  // on its path's ready list
  SiteId dest = 0;
  std::uint32_t incarnation = 0;  // see SendState
  std::uint32_t origin = 0;       // see SendState
};

class RecvChannel {
 public:
  RecvChannel() = default;
  explicit RecvChannel(const RecvState& state);

  enum class Outcome {
    kAccepted,   // stored (it may complete a message)
    kDuplicate,  // already delivered or already held
    kOutOfWindow,
    kTooLarge,
    kInconsistent,  // a fragment disagreeing with earlier ones about the message's size
  };
  // The most bytes a channel holds (reordered, reassembling or ready), whatever the config.
  static constexpr std::uint64_t kMaxHeldBytes = 0x3FFFFFFFull;

  // A DATA frame (offset 0, total_len == payload size) or a FRAGMENT.
  Outcome on_fragment(Seq seq, std::uint64_t total_len, std::uint64_t offset,
                      wire::ByteView payload, const ChannelConfig& cfg);
  // The next message in sequence, if complete: moves it into *out and advances.
  bool pop_ready(Seq* seq, wire::Bytes* out);

  // REQUIRES: consumed_up_to() < up_to < next_expected().
  Status consume(Seq up_to);

  Seq next_expected() const { return next_expected_; }
  Seq consumed_up_to() const { return consumed_up_to_; }
  std::size_t buffered_messages() const {
    return (pending_ ? pending_->size() : 0) + (has_next_ ? 1 : 0);
  }
  std::size_t buffered_bytes() const { return bytes_; }

  RecvState export_state() const {
    return RecvState{consumed_up_to_, reply_site, reply_incarnation_, origin_};
  }

  // What a copy says of its sender besides the message (wire::SenderTag), applied before the
  // message itself. A copy of an older numbering than ours is stale: false, drop it. A newer
  // numbering (the sender was recovered without its state) starts the channel over. A floor
  // beyond what we delivered means our own state was lost or is behind (this stream was
  // recovered after its site failed): what the sender knows consumed is skipped, so the
  // channel resumes where the senders are (seed 004 2.4: the senders' sequence numbers
  // resynchronise the recovered receiver).
  bool on_sender(std::uint32_t origin, Seq floor);
  std::uint32_t origin() const { return origin_; }

  // Consumption acks go to reply_site, the site of the newest incarnation of the sender seen.
  // A copy of a message sent by the sender's incarnation `incarnation` may move them to the
  // copy's site unless a newer incarnation was already seen: copies sent from a site the
  // sender has left may arrive after fresh ones from its new site, in any order, and must not
  // take its acks back there (they would be dropped, and the sender, whose messages are all
  // transport-acknowledged, would wait for ever). Returns false for such a stale copy;
  // otherwise records `incarnation` as the newest.
  bool accept_incarnation(std::uint32_t incarnation) {
    if (incarnation < reply_incarnation_) return false;
    reply_incarnation_ = incarnation;
    return true;
  }
  std::uint32_t reply_incarnation() const { return reply_incarnation_; }

  SiteId reply_site = 0;

 private:
  // Declared here, beside the public reply_site and ack_queued, so that they share words:
  // idle channels are many, and this keeps a RecvChannel at 64 bytes.
  std::uint32_t origin_ = 0;

 public:
  std::uint32_t ack_queued : 1 = 0;  // a CONSUMED frame is owed and on the path's control list

 private:
  std::uint32_t has_next_ : 1 = 0;
  // 30 bits: on_fragment bounds what a channel holds below 1 GiB (kMaxHeldBytes), whatever
  // the configuration says.
  std::uint32_t bytes_ : 30 = 0;
  std::uint32_t reply_incarnation_ = 0;

  struct Pending {
    wire::Bytes data;  // sized total_len
    std::uint64_t received = 0;
    // offset -> end of the fragments received, only while a fragmented message is partial.
    std::unique_ptr<std::map<std::uint64_t, std::uint64_t>> ranges;
    bool complete() const { return received == data.size(); }
  };
  // The reorder buffer: a ring indexed by sequence number, as every held message lies within
  // the window after next_expected_ (a tree node per message showed up in profiles under
  // loss). It grows by doubling up to the window and is freed when it empties.
  class Ring {
   public:
    Pending* find(Seq seq);
    // REQUIRES: seq not present; seq - base < the window.
    Pending& insert(Seq seq, Seq base);
    void erase(Seq seq);
    // Forgets every message <= seq; returns their bytes.
    std::uint64_t erase_up_to(Seq seq);
    std::size_t size() const { return count_; }

   private:
    struct Slot {
      Seq seq = 0;  // 0: empty
      Pending p;
    };
    std::vector<Slot> slots_;  // size is a power of two
    std::size_t count_ = 0;
  };
  Seq next_expected_ = 1;
  Seq consumed_up_to_ = 0;
  // Out-of-order messages and partly reassembled ones; allocated only while there are some.
  std::unique_ptr<Ring> pending_;
  wire::Bytes next_;  // the message next_expected_, when it arrived whole and in order
};

}  // namespace mstream::proto
