#pragma once
// Path: the site-to-site half of the messaging core, one per remote site, shared by every
// channel between the two sites. It numbers datagrams, repeats them until the remote path
// acknowledges them (that acknowledgement is the "transport receipt": it stops
// retransmission and releases nothing), estimates the round-trip time after RFC 6298 from
// unambiguous samples only (Karn: never from a repeated datagram), bounds and backs off the
// retransmission timeout, and keeps a congestion window that grows on timely acks and
// shrinks on loss. Its frames' bodies are frozen when first sent, so a repeat is the same
// bytes under the same packet number.
//
// Selective repeat detects loss from selective acks (three later datagrams acknowledged, or a
// later-sent one acknowledged and a reordering window elapsed, after RACK, RFC 8985) and from
// the timeout; go-back-N from three duplicate cumulative acks and the timeout, and then
// repeats everything outstanding.
//
// Thread-safety: none; owned by one Transport.

#include <cstdint>
#include <deque>
#include <vector>

#include "mstream/status.hpp"
#include "proto/config.hpp"
#include "proto/types.hpp"
#include "wire/codec.hpp"
#include "wire/datagram.hpp"

namespace mstream::proto {

// RFC 6298 estimator. Samples must be unambiguous (from datagrams sent once).
class RttEstimator {
 public:
  explicit RttEstimator(const PathConfig& cfg);
  void on_sample(Time rtt);
  // Doubles the timeout, up to max_rto (RFC 6298 5.5).
  void back_off();
  Time rto() const { return rto_; }
  Time srtt() const { return srtt_; }
  Time rttvar() const { return rttvar_; }
  Time min_rtt() const { return min_rtt_; }
  bool has_sample() const { return has_sample_; }

 private:
  Time clamp(Time t) const;
  Time min_rto_, max_rto_;
  Time srtt_ = 0, rttvar_ = 0, min_rtt_ = kNever;
  Time rto_;
  bool has_sample_ = false;
};

class Path {
 public:
  Path(SiteId self, SiteId remote, const PathConfig& cfg);

  SiteId remote() const { return remote_; }
  // Switches the retransmission class, also mid-flight: both classes read the same state.
  // A receiver's class decides whether it keeps out-of-order datagrams; a sender's, how it
  // repairs losses. Mixed ends still deliver everything, only less efficiently.
  void set_retransmission(RetransmissionClass c) { cfg_.retransmission = c; }

  // --- Receiving -------------------------------------------------------------------------
  enum class Accept {
    kNew,        // process the frames
    kDuplicate,  // seen before: drop the frames, but acknowledge again
    kDiscard,    // out of order under go-back-N, or beyond the window: drop
  };
  // For a datagram of `bytes` bytes with packet number pn > 0. Acknowledgements are delayed
  // (up to max_ack_delay) to ride on the next datagram we send anyway, but go at once after
  // the second unacknowledged datagram of a burst (PathConfig::ack_burst_gap) or two MTU-sized
  // ones' worth of bytes (RFC 1122's "every second full-sized segment"), a gap, a duplicate or
  // a discard: those tell the sender something it needs for its loss detection or its window.
  Accept on_packet(PacketNumber pn, std::size_t bytes, Time now);
  // Processes the remote's acknowledgement of our datagrams. Returns false (and ignores it
  // whole) if it acknowledges a packet number never sent.
  bool on_ack(const wire::AckFrame& ack, Time now);

  // --- Sending ---------------------------------------------------------------------------
  // Something to acknowledge (rides on any datagram we build).
  bool ack_pending() const { return ack_pending_; }
  // How long an ACK or consumption ack may wait now (PathConfig::lossy_ack_delay).
  Time ack_delay(Time now) const {
    return lossy(now) ? std::min(cfg_.max_ack_delay, cfg_.lossy_ack_delay) : cfg_.max_ack_delay;
  }
  // An acknowledgement must go now, in a datagram of its own if nothing else goes.
  bool ack_due(Time now) const { return ack_pending_ && (ack_urgent_ || now >= ack_deadline_); }
  // Room under the congestion window and the session-wide window for one more datagram.
  bool can_send() const;
  bool has_lost() const { return !lost_.empty(); }
  // A tail-loss probe is due (RFC 8985 7): repeat the newest datagram, outside the window.
  bool has_probe() const { return probe_due_; }
  // REQUIRES: has_probe(). Returns false if nothing is outstanding any more.
  bool build_probe(Time now, wire::Bytes* out);
  // Bytes available for frames in the next new datagram (the header and a pending ACK are
  // already accounted for).
  std::size_t body_room() const;
  // Builds the datagram that repeats the oldest lost one. REQUIRES: has_lost() && can_send().
  // Returns false if every lost datagram was acknowledged meanwhile (nothing built).
  bool build_retransmission(Time now, wire::Bytes* out);
  // Builds a new ack-eliciting datagram around body. REQUIRES: can_send(), non-empty body
  // no larger than body_room().
  void build_new(wire::ByteView body, Time now, wire::Bytes* out);
  // Builds a datagram carrying only the ACK. REQUIRES: ack_pending().
  void build_ack_only(wire::Bytes* out);

  Time next_timeout() const;
  void on_timeout(Time now);

  // --- Introspection ---------------------------------------------------------------------
  const RttEstimator& rtt() const { return rtt_; }
  double cwnd() const { return cwnd_; }
  std::size_t in_flight() const { return in_flight_; }
  // Datagrams from the oldest unacknowledged one to the newest sent (some in between may be
  // acknowledged already): 0 exactly when everything sent was acknowledged.
  std::size_t outstanding() const { return sent_.size(); }
  PacketNumber largest_sent() const { return next_pn_ - 1; }
  std::uint64_t retransmissions() const { return retransmissions_; }
  std::uint64_t timeouts() const { return timeouts_; }
  std::uint64_t probes() const { return probes_; }
  const PathConfig& config() const { return cfg_; }
  // Receive-side: every packet number <= this has arrived.
  PacketNumber cumulative_received() const { return cum_; }

 private:
  struct SentPacket {
    PacketNumber pn = 0;
    Time first_sent = 0;
    Time last_sent = 0;
    std::uint32_t tx_count = 0;
    std::uint64_t tx_order = 0;  // position among all our transmissions, repeats included
    bool acked = false;
    bool lost = false;
    wire::Bytes body;
  };

  SentPacket* find(PacketNumber pn);
  void mark_acked(SentPacket& p, std::size_t* newly);
  void note_rack(const SentPacket& p, Time now);
  Time probe_timeout(Time now) const;
  bool lossy(Time now) const { return now < lossy_until_; }
  void note_loss(Time now) { lossy_until_ = now + cfg_.loss_memory; }
  void arm_timers(Time now);
  void mark_lost(SentPacket& p);
  void detect_losses_sr(Time now);
  void go_back();
  void on_loss_event(Time now, Time sent_time);
  void on_newly_acked(std::size_t n);
  void pop_acked_front();
  void make_ack(wire::AckFrame* ack) const;
  void assemble(PacketNumber pn, wire::ByteView body, bool with_ack, wire::Bytes* out);
  void clear_ack_pending() {
    ack_pending_ = ack_urgent_ = false;
    unacked_received_ = 0;
    unacked_bytes_ = 0;
    ack_deadline_ = kNever;
  }
  bool receive_bit(PacketNumber pn) const;
  void set_receive_bit(PacketNumber pn, bool v);

  SiteId self_, remote_;
  PathConfig cfg_;
  RttEstimator rtt_;

  // Sending state.
  PacketNumber next_pn_ = 1;
  std::deque<SentPacket> sent_;  // front is the oldest unacknowledged; pn ascending
  std::deque<PacketNumber> lost_;  // to repeat, oldest first
  std::size_t in_flight_ = 0;      // sent, not acknowledged, not deemed lost
  double cwnd_;
  double ssthresh_;
  Time recovery_start_ = -1;  // losses of datagrams sent before this are one loss event
  Time rto_deadline_ = kNever;
  Time rack_deadline_ = kNever;
  Time pto_deadline_ = kNever;
  bool probe_due_ = false;
  // A probe or a timeout's repeat went out and no ack of new data came since: the peer may be
  // unreachable, so the next timer is the (backed-off) RTO, not another probe at the short,
  // unbacked-off probe interval (RFC 8985 7.3, one probe per tail; RFC 6298 5.5).
  bool probe_unanswered_ = false;
  std::uint64_t tx_counter_ = 0;
  std::uint64_t rack_tx_order_ = 0;  // the latest transmission known to have arrived
  PacketNumber last_cum_ack_ = 0;
  std::size_t dup_acks_ = 0;
  PacketNumber gbn_recover_cum_ = 0;  // the cumulative ack when we last went back
  std::size_t gbn_repeated_ = 0;       // datagrams repeated then
  std::uint64_t retransmissions_ = 0;
  std::uint64_t timeouts_ = 0;
  std::uint64_t probes_ = 0;

  // Receiving state: every pn <= cum_ arrived; bits_ marks arrivals in (cum_, cum_+window].
  PacketNumber cum_ = 0;
  PacketNumber largest_received_ = 0;
  std::vector<std::uint64_t> bits_;
  bool ack_pending_ = false;
  bool ack_urgent_ = false;
  std::uint32_t unacked_received_ = 0;  // of the current burst, since our last ACK
  Time last_received_at_ = 0;           // of the last ack-eliciting datagram
  Time lossy_until_ = 0;                // PathConfig::loss_memory after the last sign of loss
  std::size_t unacked_bytes_ = 0;
  Time ack_deadline_ = kNever;

  friend class Transport;

 public:
  // Work queued by the Transport for this path: channels with unsent data, and the control
  // frames owed (consumption acks and rejections), drained into new datagrams.
  struct Control {
    wire::FrameType type;
    ChannelKey key;
    Seq seq;
    wire::RejectReason reason;
  };
  std::deque<ChannelKey> data_ready;
  std::deque<Control> control;
  // Control frames wait this long for a datagram to ride on (consumption acks, like ACKs,
  // are delayed up to max_ack_delay); kNever when there are none.
  Time control_deadline = kNever;
  // Messages consumed, of channels whose acks go this way, since the last datagram took the
  // control frames: a sender whose buffer they fill waits for their acks (Transport::
  // queue_consumed sends them at once past a quarter of a channel's bound).
  std::uint32_t consumed_unreported = 0;
  // For the failure detector and keepalives (Transport::set_keepalive): when a datagram from
  // the remote was last accepted, and when we last sent one there; -1: never.
  Time last_heard = -1;
  Time last_sent = -1;
  // Which processes of the two sites this path joins (wire/datagram.hpp "src_boot"): a path
  // is never carried from one boot of the remote to the next (Transport::reset_path).
  std::uint32_t boot = 0;
  std::uint32_t peer_boot = 0;
  // Secured transports: the remote's datagrams said it opens AEGIS-256 (wire/crypto.hpp,
  // kinds 6 and 7), so ours to it are sealed so.
  bool peer_opens_aegis = false;
  // kSealed when the Transport seals every datagram of this path (a secured one): they then
  // carry no checksum (wire/datagram.hpp).
  wire::Integrity integrity = wire::Integrity::kChecksum;
};

}  // namespace mstream::proto
