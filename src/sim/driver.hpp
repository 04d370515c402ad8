#pragma once
// The simulator's engine, shared by its two source files: driver.cpp runs the event loop and
// the network side (timers, datagrams, the wire checks), workload.cpp the application side
// (appends, consumers, releases, stream moves). Only simulation.cpp uses it.
//
// Thread-safety: none; one Driver per run.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/transport.hpp"
#include "sim/checker.hpp"
#include "sim/network.hpp"
#include "sim/random.hpp"
#include "sim/scenario.hpp"
#include "sim/simulation.hpp"
#include "wire/datagram.hpp"

namespace mstream::sim::detail {

using proto::ChannelKey;
using proto::PacketNumber;
using proto::Seq;
using proto::StreamId;

enum class Kind : std::uint8_t {
  kArrival = 1,
  kAppend,
  kConsume,
  kTimer,
  kSend,
  kDeliver,
  kRelease,
  kRefused,
  kMove,
  kRelocate,
};

struct Event {
  Time at = 0;
  std::uint64_t order = 0;  // insertion counter: equal times keep their scheduling order
  Kind kind = Kind::kArrival;
  std::uint32_t target = 0;    // the site (arrival), channel (append) or stream (consume)
  SiteId from = 0;             // arrival: the sending site
  proto::PacketNumber pn = 0;  // arrival: its packet number, as sent
  Damage damage = Damage::kNone;
  wire::Bytes bytes;
};

struct Later {
  bool operator()(const Event& a, const Event& b) const {
    return a.at != b.at ? a.at > b.at : a.order > b.order;
  }
};

struct ChannelRun {
  ChannelKey key;
  SiteId from_site = 0, to_site = 0;
  std::uint32_t to_stream = 0;  // index of the receiving stream
  SiteId sender_view = 0;       // where the sender believes the receiver lives
  std::size_t next = 0;         // index into the plan's sizes
  Seq appended = 0, consumed = 0, released = 0;
  bool blocked = false;  // refused with kWouldBlock: waits for a Released event
};

struct Pending {
  std::uint32_t channel = 0;
  Seq seq = 0;
};

// A sender site learning that `stream` now lives at `site`.
struct Relocation {
  SiteId sender_site = 0;
  std::uint32_t stream = 0;
  SiteId site = 0;
};

struct Consumer {
  std::deque<Pending> queue;  // delivered, not yet consumed, in delivery order
  bool scheduled = false;
};

// One run of one scenario. The scenario must outlive the Driver.
class Driver {
 public:
  Driver(const Scenario& s, const RunOptions& o);
  // Runs to the end (everything released and every site idle, or the liveness deadline, or a
  // progress failure). Call once.
  SeedResult run();

 private:
  // --- driver.cpp: the loop and the network side
  void schedule(Time at, Kind kind, std::uint32_t target);
  void schedule_arrival(SiteId from, proto::PacketNumber pn, Arrival&& a);
  void fire_timer(SiteId site);
  void on_arrival(Event& e);
  // After every step on a site: its transmissions, deliveries, releases and rejections,
  // then its bounds.
  void drain(SiteId site);
  void on_transmit(SiteId site, const proto::OutDatagram& out);
  void check_reject_frame(SiteId site, const wire::Frame& f);
  void rebuild_receiving();
  bool workload_done() const;
  bool quiescent() const;
  void judge_liveness();
  // Adds one entry to the trace hash.
  void note(Kind kind, std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0);
  void trace(const std::string& line);

  // --- workload.cpp: the application side
  void on_append(std::uint32_t channel);
  void on_consume(std::uint32_t stream);
  void schedule_consumer(std::uint32_t stream);
  void on_released(const proto::Released& r);
  void on_move(std::uint32_t move);
  void on_relocate(std::uint32_t relocation);

  const Scenario& sc_;
  RunOptions opt_;
  Rng rng_;
  SimNetwork net_;
  InvariantChecker checker_;
  std::vector<std::unique_ptr<proto::Transport>> sites_;
  std::vector<Time> timer_at_;
  std::vector<Time> last_timer_;
  std::vector<int> same_time_timers_;
  std::vector<std::vector<ChannelKey>> sending_, receiving_;
  std::vector<std::vector<SiteId>> peers_;
  std::vector<ChannelRun> channels_;
  std::unordered_map<ChannelKey, std::uint32_t, proto::ChannelKeyHash> channel_of_;
  std::vector<Consumer> consumers_;
  std::vector<SiteId> stream_site_;   // where each stream lives now
  std::vector<std::uint32_t> moved_;  // how often each stream moved
  std::vector<Relocation> relocations_;
  std::vector<PacketNumber> newest_pn_;  // per directed path: the newest numbered datagram sent
  std::vector<Time> last_notice_;        // per sender site and stream: keeps notices in order
  std::vector<Event> heap_;
  std::uint64_t order_ = 0;
  Time now_ = 0;
  bool done_ = false;
  bool stop_ = false;
  Digest digest_;
  RunSummary sum_;
  proto::OutDatagram out_;
  proto::Delivery delivery_;
  wire::DecodedDatagram decoded_;
  std::vector<Arrival> arrivals_;
};

}  // namespace mstream::sim::detail
