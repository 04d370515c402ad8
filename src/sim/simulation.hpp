#pragma once
// One simulated run: N sites, each a proto::Transport, in one thread on simulated time,
// connected by a SimNetwork, driven by the workload of a Scenario, watched by an
// InvariantChecker. Nothing here touches a socket, a thread or a wall clock, and every
// random choice comes from the scenario's seed, so a run is a pure function of its seed:
// the trace hash (a digest of every event: time, kind, site, bytes) proves it.
//
// The loop takes the earliest of: a datagram arriving, an append, a consumer step, a stream
// move or a sender learning of one, or a Transport's own timeout (next_timeout()); ties go
// to timers first, then to events in the order they were scheduled. After every step on a site it
// drains the site's transmissions, deliveries, releases and rejections, and checks the site's
// bounds.

#include <cstdint>
#include <ostream>
#include <vector>

#include "proto/transport.hpp"
#include "sim/checker.hpp"
#include "sim/network.hpp"
#include "sim/scenario.hpp"

namespace mstream::sim {

struct RunOptions {
  // Every event, one line each, for reading a failing seed. Null: none.
  std::ostream* trace = nullptr;
  // A run taking more steps than this is stopped and reported (invariant "progress"): a
  // retransmission storm or a timer that never advances.
  std::uint64_t max_steps = 4'000'000;
};

struct RunSummary {
  Time end_time = 0;
  Time done_at = proto::kNever;  // when the last message was released
  std::uint64_t steps = 0;
  std::uint64_t timer_steps = 0;
  std::uint64_t appended = 0;
  std::uint64_t consumed = 0;
  std::uint64_t would_block = 0;  // appends refused by a full buffer (and retried)
  std::uint64_t too_large = 0;    // probes refused as they must be
  std::uint64_t damaged_refused = 0;
  std::uint64_t moves = 0;
  std::uint64_t refused_after_move = 0;  // kNoSuchStream rejections seen by senders
  NetworkStats network;
  proto::TransportStats transport;  // summed over the sites
};

struct SeedResult {
  std::uint64_t seed = 0;
  std::uint64_t trace_hash = 0;
  std::vector<Violation> violations;
  RunSummary summary;
  bool ok() const { return violations.empty(); }
};

// Adds one Transport's counters to *total.
void add_transport_stats(const proto::TransportStats& stats, proto::TransportStats* total);

// Runs one scenario once.
SeedResult run_scenario(const Scenario& scenario, const RunOptions& options = {});

// Derives the scenario of `seed` and runs it; with check_determinism, runs it a second time
// and adds a "determinism" violation if the two trace hashes differ.
SeedResult run_seed(std::uint64_t seed, bool check_determinism,
                    const ScenarioOverrides& overrides = {}, const RunOptions& options = {});

}  // namespace mstream::sim
