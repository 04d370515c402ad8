// Moves in a whole session in memory (memory_session.hpp): what a move asks of its sites'
// handler lanes.
#include <gtest/gtest.h>

#include <string>

#include "memory_session.hpp"

namespace mstream {
namespace {

using testing::MemorySession;

constexpr const char* kAgent = R"(
set n 0
briefcase n
on_stream_append { incr n; return $n }
on_stream_relocation { }
)";

std::uint64_t jobs(MemorySession& s, proto::SiteId site) {
  return s.site(site).counters().worker_jobs;
}

// A stream that ran no handler since it arrived leaves with the briefcases its arrival saved
// (after its relocation handlers, on its lane): its source needs no round trip to the lane.
// Once a handler ran, the briefcase is saved at the move again, and the handler's change
// travels.
TEST(MemoryMoves, AStreamIdleSinceItArrivedLeavesWithoutAskingItsLane) {
  MemorySession s({.sites = 3});
  site::ShellApi& shell = s.join_shell();
  tcl::CreateOptions at;
  at.site = 1;
  ASSERT_TRUE(shell.stream_create("m", at).ok());
  ASSERT_TRUE(shell.register_agent("m", "", kAgent, "", false).ok());
  ASSERT_TRUE(shell.stream_move("m", 2).ok());

  const std::uint64_t at_2 = jobs(s, 2);
  ASSERT_TRUE(shell.stream_move("m", 3).ok());
  EXPECT_EQ(jobs(s, 2), at_2) << "the source asked its lane for the briefcases";

  auto r = shell.stream_append("m", "x", /*sync=*/true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->results, "1");
  const std::uint64_t at_3 = jobs(s, 3);
  ASSERT_TRUE(shell.stream_move("m", 1).ok());
  EXPECT_EQ(jobs(s, 3), at_3 + 1) << "a handler ran since the arrival: the move saves again";
  r = shell.stream_append("m", "x", /*sync=*/true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->results, "2") << "the briefcase left without the handler's change";
}

}  // namespace
}  // namespace mstream
