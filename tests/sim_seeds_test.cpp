// The simulator's seed sweep of the messaging core: 2,048 seeds, every invariant, each seed run
// twice to check determinism. Split in shards so that `ctest -j` spreads them over the cores. A
// failing seed prints its FAIL lines; replay it with `mstream sim --seed S` (add --trace for
// every event).
#include <gtest/gtest.h>

#include <sstream>

#include "sim/runner.hpp"

namespace mstream::sim {
namespace {

constexpr std::uint64_t kSeedsPerShard = 256;

class SimSeeds : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(SimSeeds, EveryInvariantHolds) {
  SweepOptions o;
  o.first_seed = 1 + GetParam() * kSeedsPerShard;
  o.count = kSeedsPerShard;
  o.determinism_every = 1;
  o.session = false;  // the session scenarios have their sweep in sim_session_test.cpp
  std::ostringstream out;
  const SweepResult r = run_sweep(o, out);
  EXPECT_EQ(r.seeds, kSeedsPerShard);
  EXPECT_EQ(r.failed, 0u) << out.str() << "replay with: mstream sim --seed " << r.first_failed_seed;
}

INSTANTIATE_TEST_SUITE_P(Shard, SimSeeds, ::testing::Range<std::uint64_t>(0, 8));

}  // namespace
}  // namespace mstream::sim
