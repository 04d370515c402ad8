// The user-stream pin (proto/sender_pins.hpp, doc/security.md) in whole simulated sessions:
// wrong_site_frames says that a member forged DATA in a user stream's name, so it stays 0
// when nobody did, however fast streams move through lossy, partitioned networks with
// crashing sites and leaders, while the hostile member's impersonate_user lies are dropped
// and counted.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "sim/session_simulation.hpp"
#include "sim_test_support.hpp"

namespace mstream::sim {
namespace {

// Each of these honest seeds counted forgeries before the pin asked the leader (24 frames in
// seeds 1-40 alone at 37a8f2c), and each still makes the pin refuse honest frames it could not
// place at first (the trigger): late copies from a site a batched word named only after newer words
// (7, 27, 56, 77, 105, 124, 156, 181, 192), a word slower than the hold (107; 260 too until issue
// 19 changed its schedule), and, found while fixing those, the batch not told to a site that was
// the stream's site again (4255), the word of a move this site asked for coming from its target
// (4315), and a batch lost with the leader's process (21901).
TEST(SenderPinsSim, HonestSessionsCountNoForgery) {
  for (std::uint64_t seed : {7, 27, 56, 77, 105, 107, 124, 156, 181, 192, 4255, 4315, 21901}) {
    // As found, before the workload had ephemeral streams.
    const SessionResult r = run_session_seed(seed, false, ScenarioOverrides{.ephemerals = false});
    const proto::TransportStats& t = r.summary.transport;
    EXPECT_TRUE(r.ok()) << seed << ": " << names(r.violations);
    EXPECT_EQ(t.wrong_site_frames, 0u) << "honest seed " << seed;
    EXPECT_GT(t.held_frames + t.held_refused, 0u) << "seed " << seed << " no longer triggers";
  }
  proto::TransportStats total;
  for (std::uint64_t seed = 1; seed <= 40; ++seed)
    add_transport_stats(run_session_seed(seed, false).summary.transport, &total);
  EXPECT_EQ(total.wrong_site_frames, 0u);
  EXPECT_GT(total.held_frames, 0u);
}

// Every lie in a user stream's name that its receiver's site judged is counted there, and
// only those: never more than were told, and not one forged message is consumed (the
// session's invariants and full consumption). Lies that are not counted were lost on the
// way, went to a stream no longer at their target's site, or named a site the stream had
// been at (a stale copy).
TEST(SenderPinsSim, TheHostileMembersUserStreamLiesAreDroppedAndCounted) {
  std::uint64_t told = 0, counted = 0;
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    const SessionResult r =
        run_session_seed(seed, false, ScenarioOverrides{.crashes = false, .hostile = true});
    EXPECT_TRUE(r.ok()) << seed << ": " << names(r.violations);
    EXPECT_EQ(r.summary.consumed, r.summary.appended) << seed;
    const std::uint64_t lies = r.summary.lies[static_cast<std::size_t>(Lie::kImpersonateUser)];
    EXPECT_LE(r.summary.transport.wrong_site_frames, lies) << seed;
    told += lies;
    counted += r.summary.transport.wrong_site_frames;
  }
  EXPECT_GT(told, 100u);
  // Most reach a receiver whose site asks the leader in time.
  EXPECT_GT(counted, told / 4);
}

}  // namespace
}  // namespace mstream::sim
