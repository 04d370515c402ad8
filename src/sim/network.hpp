#pragma once
// The simulated network: decides, for each datagram a site sends, whether it arrives, when,
// how many times and in what shape. Every directed link has its own faults (Bernoulli and
// Gilbert-Elliott bursty loss, duplication, reordering, Pareto heavy-tailed delay, corruption,
// truncation, misrouting); on top, scheduled partitions (symmetric or one-way) drop
// everything on the links they cut, and clogs hold a link's datagrams until the clog ends
// (FoundationDB's clogging: a queue that stalls, not a loss).
//
// A link is a FIFO queue: base delay and jitter never reorder two datagrams of one link (a
// datagram arrives no earlier than the one sent before it). Only the faults reorder: the
// `reorder` extra delay, the heavy tail and duplicate copies take their own route.
//
// Faults apply only to datagrams sent before `calm_start`: after it every link delivers each
// datagram once, intact, after its base delay and jitter, so liveness can be judged.
//
// Corruption flips a burst of at most 4 bytes lying either inside the fixed header or inside
// the checksummed part: CRC-32C detects every burst of up to 32 bits, so each corrupted
// datagram must be refused by the receiver, and the simulator checks that it is.
//
// Thread-safety: none; owned by one Simulation.

#include <cstdint>
#include <string>
#include <vector>

#include "proto/types.hpp"
#include "sim/random.hpp"
#include "wire/codec.hpp"

namespace mstream::sim {

using proto::SiteId;
using proto::Time;

struct LinkFaults {
  Time base_delay = 100 * proto::kMicrosecond;
  Time jitter = 0;  // uniform extra delay in [0, jitter]; in the calm phase too
  double loss = 0;  // Bernoulli
  // Gilbert-Elliott: per datagram, good -> bad with burst_enter, bad -> good with
  // burst_leave; in the bad state a datagram is lost with burst_loss.
  double burst_enter = 0;
  double burst_leave = 1;
  double burst_loss = 0;
  double duplicate = 0;
  double reorder = 0;  // chance of an extra uniform delay in [0, reorder_max]
  Time reorder_max = 0;
  double tail = 0;  // chance of a Pareto extra delay (scale base_delay, shape tail_alpha)
  double tail_alpha = 1.5;
  Time tail_cap = 0;
  double corrupt = 0;
  double truncate = 0;
  double misroute = 0;  // delivered to a wrong site (needs 3 or more sites)
};

// A scheduled fault over several links: a partition cuts every link from `side` to the other
// sites (and back, unless one_way); a clog stalls the single link from -> to.
struct FaultWindow {
  enum class Kind : std::uint8_t { kPartition, kOneWayPartition, kClog };
  Kind kind = Kind::kPartition;
  std::vector<SiteId> side;  // partitions
  SiteId from = 0, to = 0;   // clogs
  Time start = 0, end = 0;   // [start, end)
};

struct NetworkPlan {
  std::uint32_t sites = 2;
  Time calm_start = 0;
  std::vector<LinkFaults> links;  // sites * sites, index from * sites + to; diagonal unused
  std::vector<FaultWindow> windows;

  LinkFaults& link(SiteId from, SiteId to) { return links[from * sites + to]; }
  const LinkFaults& link(SiteId from, SiteId to) const { return links[from * sites + to]; }
};

std::string describe(const LinkFaults& f);
std::string describe(const FaultWindow& w);

enum class Damage : std::uint8_t { kNone, kCorrupted, kTruncated, kMisrouted };

struct Arrival {
  Time at = 0;
  SiteId to = 0;
  wire::Bytes bytes;
  Damage damage = Damage::kNone;
};

struct NetworkStats {
  std::uint64_t sent = 0;
  std::uint64_t arrivals = 0;
  std::uint64_t lost_random = 0;
  std::uint64_t lost_burst = 0;
  std::uint64_t lost_partition = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t reordered = 0;
  std::uint64_t tail_delayed = 0;
  std::uint64_t clogged = 0;
  std::uint64_t corrupted = 0;
  std::uint64_t truncated = 0;
  std::uint64_t misrouted = 0;
};

class SimNetwork {
 public:
  SimNetwork(NetworkPlan plan, Rng rng);

  // The fate of a datagram sent at `now` on from -> to: appends its 0, 1 or 2 arrivals.
  void transmit(SiteId from, SiteId to, const wire::Bytes& bytes, Time now,
                std::vector<Arrival>* out);

  bool partitioned(SiteId from, SiteId to, Time t) const;
  // The end of the clog holding from -> to at t, or t itself when there is none.
  Time clogged_until(SiteId from, SiteId to, Time t) const;

  const NetworkStats& stats() const { return stats_; }
  const NetworkPlan& plan() const { return plan_; }

 private:
  struct Span {
    Time start, end;
  };
  std::size_t index(SiteId from, SiteId to) const { return from * plan_.sites + to; }
  // The arrival time of one copy released onto the link at `t`.
  Time arrival(std::size_t link, const LinkFaults& f, Time t, bool faulty, bool duplicate);
  bool lost(std::size_t link, const LinkFaults& f);
  void damage(const LinkFaults& f, Arrival* a);

  NetworkPlan plan_;
  Rng rng_;
  std::vector<std::uint8_t> bad_state_;     // Gilbert-Elliott state per link
  std::vector<Time> fifo_tail_;             // per link: the latest in-order arrival
  std::vector<std::vector<Span>> blocked_;  // partitions, per link
  std::vector<std::vector<Span>> clogs_;    // per link
  NetworkStats stats_;
};

}  // namespace mstream::sim
