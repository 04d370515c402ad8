#pragma once
// The invariant checkers: the simulator reports every observable step of a run here (appends,
// deliveries, consumptions, CONSUMED frames on the wire, Released events, the state of each
// Transport after each step) and the checker compares it with DESIGN.md's guarantees 1 and 2.
// Each violation is named by its invariant so that `FAIL seed=S invariant=NAME` lines stay
// stable across versions:
//
//   fifo                   each pair is delivered and consumed in append order, no gaps
//   no_duplicate           each message delivered and consumed at most once
//   no_loss                every appended message is consumed (judged at the end of a run)
//   integrity              what is delivered is what was appended, byte for byte
//   ack_after_consumption  no CONSUMED frame and no Released event runs ahead of what the
//                          receiving application consumed (seed 004 §2.4)
//   bounded_buffers        sender buffers within ChannelConfig, receiver buffers within the
//                          window, a path's outstanding datagrams within max_window
//   rto_bounds             every path's retransmission timeout within [min_rto, max_rto]
//   ack_only_received      a path acknowledges only packet numbers that reached it intact
//                          (the transport receipt stops retransmission: a false one loses data)
//   liveness, determinism, corruption_rejected, wire_valid, api_contract,
//   unexpected_reject, bogus_ack, progress   (reported by the Simulation itself)
//
// Thread-safety: none; one per run.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proto/config.hpp"
#include "proto/transport.hpp"
#include "proto/types.hpp"
#include "wire/datagram.hpp"

namespace mstream::sim {

struct Violation {
  std::string invariant;
  std::string detail;       // of the first occurrence
  std::uint64_t count = 1;  // occurrences in the run
};

class InvariantChecker {
 public:
  explicit InvariantChecker(const proto::TransportConfig& config) : config_(config) {}

  void add_channel(proto::ChannelKey key);

  // The application side. Hashes identify payloads (see sim/random.hpp's hash_bytes).
  void on_append(proto::ChannelKey key, proto::Seq seq, std::uint64_t payload_hash);
  void on_delivery(proto::ChannelKey key, proto::Seq seq, std::uint64_t payload_hash);
  // The receiving stream moved: what was delivered and not consumed will be delivered again.
  void on_receiver_moved(proto::ChannelKey key);
  // One message consumed by the application (a batch reports each of its messages).
  void on_consume(proto::ChannelKey key, proto::Seq seq);

  // The protocol side: a CONSUMED frame leaving the receiver's site, a Released event at the
  // sender's.
  void on_consumed_frame(proto::ChannelKey key, proto::Seq up_to);
  void on_released(proto::ChannelKey key, proto::Seq up_to);

  // Path level: a datagram numbered pn from -> to arrived intact; an ACK frame sent by
  // `acker` to `peer`.
  void on_packet_received(proto::SiteId from, proto::SiteId to, proto::PacketNumber pn);
  void on_ack_sent(proto::SiteId acker, proto::SiteId peer, const wire::AckFrame& ack);

  // Buffer and timer bounds of one site's Transport; `sending` and `receiving` are the
  // channels with an end at that site, `peers` the other sites.
  void check_site(const proto::Transport& t, std::span<const proto::ChannelKey> sending,
                  std::span<const proto::ChannelKey> receiving,
                  std::span<const proto::SiteId> peers);

  // At the end of a run: every appended message consumed.
  void check_end();

  void fail(std::string_view invariant, std::string detail);
  bool ok() const { return violations_.empty(); }
  const std::vector<Violation>& violations() const { return violations_; }

  proto::Seq appended(proto::ChannelKey key) const;
  proto::Seq consumed(proto::ChannelKey key) const;
  proto::Seq released(proto::ChannelKey key) const;

 private:
  struct Record {
    std::vector<std::uint64_t> hashes;  // of message seq at [seq - 1]
    proto::Seq delivered = 0;           // highest delivered
    proto::Seq consumed = 0;
    proto::Seq released = 0;
  };
  Record* find(proto::ChannelKey key, std::string_view invariant, std::string_view what);
  const Record* find(proto::ChannelKey key) const;

  // What one directed path really received, to judge the receiver's ACKs against.
  struct Received {
    std::vector<bool> got;  // by packet number
    proto::PacketNumber cumulative = 0;
    bool has(proto::PacketNumber pn) const { return pn < got.size() && got[pn]; }
  };

  proto::TransportConfig config_;
  std::unordered_map<proto::ChannelKey, Record, proto::ChannelKeyHash> records_;
  std::unordered_map<std::uint64_t, Received> received_;  // by from << 32 | to
  std::vector<Violation> violations_;
};

std::string describe(proto::ChannelKey key);

}  // namespace mstream::sim
