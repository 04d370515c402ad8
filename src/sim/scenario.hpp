#pragma once
// A scenario: everything one simulated run does, derived from its seed alone: the sites and
// their protocol configuration, the network's faults and their schedule, the streams with
// their (possibly slow) consumers, and the workload of channels with their message sizes.
// describe() prints all of it, so a failing seed can be read as well as replayed.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/config.hpp"
#include "proto/types.hpp"
#include "sim/network.hpp"
#include "sim/random.hpp"

namespace mstream::sim {

// A receiving stream and its consumer: each delivery waits an exponential processing time
// (slow consumers make the sender's buffer fill up), the consumer takes up to `batch` queued
// messages of one channel per step, and does nothing during its stall.
struct StreamPlan {
  proto::StreamId id = 0;
  SiteId site = 0;
  Time mean_processing = 0;
  std::uint32_t batch = 1;
  Time stall_start = 0, stall_end = 0;  // empty when equal
};

// One sender/receiver pair and what the sender appends to it. Messages are appended one at a
// time, the next an exponential gap after the previous was accepted (0: back to back); a
// refused append (kWouldBlock) waits for the channel's next Released event. A size above the
// configured maximum is a probe that the append must refuse with kTooLarge.
struct ChannelPlan {
  std::size_t from = 0, to = 0;  // indices into Scenario::streams
  std::vector<std::uint32_t> sizes;
  Time start = 0;
  Time mean_gap = 0;
};

// A receiving stream moves to another site at `at` (seed 004: the stream's sequence state
// travels with it, nothing stays behind). Its senders learn the new location each after its
// own exponential delay around notify_mean, in move order (the leader orders moves), and
// meanwhile their data reaches the old site, which refuses it.
struct MovePlan {
  Time at = 0;
  std::size_t stream = 0;  // index into Scenario::streams
  SiteId to = 0;
  Time notify_mean = 0;
};

struct Scenario {
  std::uint64_t seed = 0;
  std::string profile;  // the name of the fault profile drawn
  proto::TransportConfig transport;
  NetworkPlan network;
  std::vector<StreamPlan> streams;
  std::vector<ChannelPlan> channels;
  std::vector<MovePlan> moves;  // in time order, all in the fault phase
  // Per site, the paths whose retransmission class differs from the session's (seed 003
  // switches classes at run time, so the two ends of a path may disagree for a while).
  struct ClassOverride {
    SiteId site = 0, peer = 0;
    proto::RetransmissionClass retransmission{};
  };
  std::vector<ClassOverride> class_overrides;
  // After calm_start, everything must be appended, consumed, released and quiet within this
  // (the planned appends themselves end well before: see derive_channel).
  Time liveness_bound = 60 * proto::kSecond;

  std::uint32_t sites() const { return network.sites; }
  Time calm_start() const { return network.calm_start; }
  std::uint64_t message_count() const;  // probes excluded
  std::uint64_t message_bytes() const;
};

struct ScenarioOverrides {
  bool faults = true;  // false: the "calm" profile whatever the seed draws
  bool moves = true;   // false: streams stay where they start
  // Session scenarios: draw channel bounds far below the default (2..64 unconsumed messages),
  // so control channels fill up too. Off by default while site::SiteCore never flushes a full
  // control channel's overflow (finding S1 in the simulator findings).
  bool small_buffers = false;
  // Session scenarios: some seeds crash (and maybe restart) sites during the workload, with
  // failure detection on (session_scenario.hpp). Only with faults.
  bool crashes = true;
  // Session scenarios: one more node joins as a site, knowing the session's secret, and
  // lies (SessionScenario::hostile).
  bool hostile = false;
  // Session scenarios: whether ephemeral streams (SessionStreamPlan::ephemeral) forward what
  // they handle to other receivers, as receivers do. Unset: each seed draws it per stream.
  std::optional<bool> ephemeral_forwards;
  // Session scenarios: some seeds add ephemeral streams. Off: the runs seeds made before
  // they existed (the regression tests replay what found their bugs).
  bool ephemerals = true;
  // The acknowledgement timing and send order seeds ran with before issue 19 (an ACK or
  // consumption ack held back at most 250 us, the second of any two unacknowledged datagrams
  // answered at once, paths polled in the order of their table): what the regression tests
  // replay. Off: each seed draws its timing (draw_ack_timing).
  bool legacy_acks = false;
};

// The acknowledgement timing and send order of a seed's session (PathConfig::max_ack_delay,
// ack_burst_gap, prompt_consumption_acks, send_in_ready_order, lossy_ack_delay, loss_memory),
// from its own stream so that the draws of earlier versions stay the same.
void draw_ack_timing(Rng& rng, bool legacy, proto::PathConfig* p);
// " ack_delay=... burst_gap=...", for a scenario's description.
std::string describe_ack_timing(const proto::PathConfig& p);

Scenario derive_scenario(std::uint64_t seed, const ScenarioOverrides& overrides = {});

// The fault profiles, shared with the session scenarios (session_scenario.hpp): the name of
// one drawn from rng ("calm" without faults), and the links and fault windows of `profile` for
// net->sites nodes, all before net->calm_start.
std::string draw_fault_profile(Rng& rng, bool faults);
void derive_faults(Rng& rng, std::string_view profile, NetworkPlan* net);

// Every derived option, one per line.
std::string describe(const Scenario& s);

}  // namespace mstream::sim
