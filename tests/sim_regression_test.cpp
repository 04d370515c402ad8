// Seeds that found bugs, replayed: each must hold every invariant, and each checks that what
// triggered its bug still happens in it (else the replay would pass for nothing).
#include <gtest/gtest.h>

#include <string>

#include "sim/simulation.hpp"

namespace mstream::sim {
namespace {

std::string names(const std::vector<Violation>& v) {
  std::string out;
  for (const Violation& x : v) out += x.invariant + ": " + x.detail + "\n";
  return out;
}

// A sender re-sent its whole window of consumed messages to a stream's new site; the answers
// to those duplicates overflowed the path's queue and were dropped, and the sender, its
// datagrams acknowledged, waited for ever (transport, go-back-N, window 4). The answers of
// one channel now merge into one.
TEST(SimRegression, AnswersToABurstOfDuplicatesAreNeverDropped) {
  for (std::uint64_t seed : {30020469u, 30021181u, 125742u, 82197u}) {
    const SeedResult r = run_seed(seed, false);
    EXPECT_TRUE(r.ok()) << seed << "\n" << names(r.violations);
    EXPECT_GT(r.summary.transport.consumed_answers_merged, 0u) << seed;
  }
}

}  // namespace
}  // namespace mstream::sim
