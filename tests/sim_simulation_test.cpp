// Whole simulated runs against the real messaging core: determinism, hand-built scenarios that
// stress one fault, and a liveness checker shown to fire.
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "sim/runner.hpp"
#include "sim/scenario.hpp"
#include "sim/simulation.hpp"

namespace mstream::sim {
namespace {

using proto::kMillisecond;
using proto::kSecond;

std::string report(const SeedResult& r) {
  std::string s;
  for (const Violation& v : r.violations) s += fail_line(r.seed, v) + "\n";
  return s;
}

TEST(Scenario, IsAPureFunctionOfTheSeed) {
  for (std::uint64_t seed = 1; seed <= 50; ++seed)
    EXPECT_EQ(describe(derive_scenario(seed)), describe(derive_scenario(seed)));
  EXPECT_NE(describe(derive_scenario(1)), describe(derive_scenario(2)));
}

TEST(Scenario, SeedsCoverTheOptionSpace) {
  std::set<std::uint32_t> sites;
  std::set<std::string> profiles;
  bool go_back_n = false, selective = false, fragmented = false, near_max = false, probe = false;
  bool tiny_buffer = false, partition = false, one_way = false, clog = false;
  bool moves = false, mixed_classes = false;
  for (std::uint64_t seed = 1; seed <= 500; ++seed) {
    const Scenario s = derive_scenario(seed);
    sites.insert(s.sites());
    profiles.insert(s.profile);
    const auto rc = s.transport.path.retransmission;
    go_back_n |= rc == proto::RetransmissionClass::kGoBackN;
    selective |= rc == proto::RetransmissionClass::kSelectiveRepeat;
    tiny_buffer |= s.transport.channel.max_unconsumed_messages <= 2;
    moves |= !s.moves.empty();
    mixed_classes |= !s.class_overrides.empty();
    for (const FaultWindow& w : s.network.windows) {
      partition |= w.kind == FaultWindow::Kind::kPartition;
      one_way |= w.kind == FaultWindow::Kind::kOneWayPartition;
      clog |= w.kind == FaultWindow::Kind::kClog;
    }
    const std::size_t max = s.transport.channel.max_message_bytes;
    for (const ChannelPlan& c : s.channels) {
      for (std::uint32_t size : c.sizes) {
        fragmented |= size > s.transport.path.mtu && size <= max;
        near_max |= size == max;
        probe |= size > max;
      }
    }
  }
  EXPECT_EQ(sites.size(), 7u);  // 2..8
  EXPECT_EQ(profiles.size(), 4u);
  EXPECT_TRUE(go_back_n && selective);
  EXPECT_TRUE(fragmented && near_max && probe && tiny_buffer);
  EXPECT_TRUE(partition && one_way && clog);
  EXPECT_TRUE(moves && mixed_classes);
}

TEST(Simulation, SameSeedSameTraceHash) {
  for (std::uint64_t seed : {3u, 17u, 101u}) {
    const Scenario s = derive_scenario(seed);
    const SeedResult a = run_scenario(s);
    const SeedResult b = run_scenario(s);
    EXPECT_EQ(a.trace_hash, b.trace_hash) << "seed " << seed;
    EXPECT_EQ(a.summary.steps, b.summary.steps);
  }
  EXPECT_NE(run_scenario(derive_scenario(3)).trace_hash,
            run_scenario(derive_scenario(4)).trace_hash);
}

TEST(Simulation, PerfectNetworkDeliversEverything) {
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    const SeedResult r = run_seed(seed, false, ScenarioOverrides{.faults = false});
    EXPECT_TRUE(r.ok()) << report(r);
    EXPECT_EQ(r.summary.appended, r.summary.consumed);
    EXPECT_EQ(r.summary.network.lost_random + r.summary.network.corrupted, 0u);
  }
}

// A scenario with one channel between two sites, for faults built by hand.
Scenario two_sites(std::uint64_t seed) {
  Scenario s = derive_scenario(seed, ScenarioOverrides{.faults = false});
  s.network.sites = 2;
  s.network.calm_start = 2 * kSecond;
  s.network.links.assign(4, LinkFaults{});
  s.network.windows.clear();
  s.moves.clear();
  s.class_overrides.clear();
  s.streams = {StreamPlan{1, 0}, StreamPlan{2, 1}};
  ChannelPlan ch;
  ch.from = 0;
  ch.to = 1;
  for (int i = 0; i < 100; ++i) ch.sizes.push_back(static_cast<std::uint32_t>(1 + i * 13 % 900));
  ch.mean_gap = 5 * kMillisecond;
  s.channels = {ch};
  return s;
}

TEST(Simulation, CorruptedDatagramsAreRefusedAndRepaired) {
  Scenario s = two_sites(5);
  for (LinkFaults& f : s.network.links) {
    f.corrupt = 0.2;
    f.truncate = 0.1;
  }
  const SeedResult r = run_scenario(s);
  EXPECT_TRUE(r.ok()) << report(r);
  const NetworkStats& n = r.summary.network;
  EXPECT_GT(n.corrupted + n.truncated, 10u);
  EXPECT_EQ(r.summary.damaged_refused, n.corrupted + n.truncated);
  EXPECT_EQ(r.summary.consumed, 100u);
}

TEST(Simulation, PartitionForTheWholeFaultPhaseHealsInTheCalmPhase) {
  Scenario s = two_sites(6);
  FaultWindow w;
  w.side = {0};
  w.start = 0;
  w.end = s.network.calm_start;
  s.network.windows = {w};
  const SeedResult r = run_scenario(s);
  EXPECT_TRUE(r.ok()) << report(r);
  EXPECT_GT(r.summary.network.lost_partition, 0u);
  EXPECT_GE(r.summary.done_at, s.network.calm_start);
  EXPECT_EQ(r.summary.consumed, 100u);
}

TEST(Simulation, OneWayPartitionOfTheAcksHeals) {
  Scenario s = two_sites(7);
  FaultWindow w;
  w.kind = FaultWindow::Kind::kOneWayPartition;
  w.side = {1};  // the receiver's acknowledgements are cut, its data arrives
  w.start = 0;
  w.end = s.network.calm_start;
  s.network.windows = {w};
  const SeedResult r = run_scenario(s);
  EXPECT_TRUE(r.ok()) << report(r);
  EXPECT_EQ(r.summary.consumed, 100u);
}

TEST(Simulation, TinyBuffersExerciseBackPressure) {
  Scenario s = two_sites(8);
  s.transport.channel.max_unconsumed_messages = 1;
  s.channels[0].mean_gap = 0;
  s.streams[1].mean_processing = 2 * kMillisecond;
  const SeedResult r = run_scenario(s);
  EXPECT_TRUE(r.ok()) << report(r);
  EXPECT_GT(r.summary.would_block, 10u);
  EXPECT_EQ(r.summary.consumed, 100u);
}

TEST(Simulation, ReceiverMovesKeepExactlyOnceInOrder) {
  Scenario s = two_sites(12);
  s.network.sites = 3;
  s.network.links.assign(9, LinkFaults{});
  for (LinkFaults& f : s.network.links) f.loss = 0.05;
  s.channels[0].mean_gap = 10 * kMillisecond;
  s.streams[1].mean_processing = 3 * kMillisecond;
  // Away, back, and onto the sender's own site (a local channel), with slow location notices.
  s.moves = {MovePlan{200 * kMillisecond, 1, 2, 50 * kMillisecond},
             MovePlan{500 * kMillisecond, 1, 1, 1 * kMillisecond},
             MovePlan{900 * kMillisecond, 1, 0, 100 * kMillisecond}};
  const SeedResult r = run_scenario(s);
  EXPECT_TRUE(r.ok()) << report(r);
  EXPECT_EQ(r.summary.moves, 3u);
  EXPECT_EQ(r.summary.consumed, 100u);
}

TEST(Simulation, MixedRetransmissionClassesInterwork) {
  Scenario s = two_sites(13);
  for (LinkFaults& f : s.network.links) {
    f.loss = 0.1;
    f.reorder = 0.2;
    f.reorder_max = 5 * kMillisecond;
  }
  s.transport.path.retransmission = proto::RetransmissionClass::kSelectiveRepeat;
  s.class_overrides = {{1, 0, proto::RetransmissionClass::kGoBackN}};
  const SeedResult r = run_scenario(s);
  EXPECT_TRUE(r.ok()) << report(r);
  EXPECT_EQ(r.summary.consumed, 100u);
}

TEST(Simulation, LivenessCheckerFiresWhenTheBoundIsTooShort) {
  Scenario s = two_sites(9);
  FaultWindow w;
  w.side = {0};
  w.start = 0;
  w.end = s.network.calm_start;
  s.network.windows = {w};
  s.liveness_bound = 1 * kMillisecond;
  const SeedResult r = run_scenario(s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.violations[0].invariant, "liveness");
}

TEST(Simulation, ProgressCheckerFiresOnAStepBudget) {
  RunOptions o;
  o.max_steps = 10;
  const SeedResult r = run_scenario(two_sites(10), o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.violations[0].invariant, "progress");
}

TEST(Simulation, TraceNamesEveryStep) {
  std::ostringstream trace;
  RunOptions o;
  o.trace = &trace;
  const SeedResult r = run_scenario(two_sites(11), o);
  EXPECT_TRUE(r.ok()) << report(r);
  const std::string t = trace.str();
  EXPECT_NE(t.find("append 1->2 #100"), std::string::npos);
  EXPECT_NE(t.find("consumed 1->2 up to #100"), std::string::npos);
  EXPECT_NE(t.find("sends site 0->1"), std::string::npos);
}

TEST(Sweep, PrintsTheContractLastLine) {
  std::ostringstream out;
  SweepOptions o;
  o.first_seed = 1;
  o.count = 3;
  const SweepResult r = run_sweep(o, out);
  EXPECT_EQ(r.seeds, 3u);
  const std::string s = out.str();
  EXPECT_NE(s.find("sim: 3 seeds, " + std::to_string(r.failed) + " failed\n"), std::string::npos);
}

}  // namespace
}  // namespace mstream::sim
