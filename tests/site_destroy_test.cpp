// A shell whose messages a stream never took, because another sender destroyed the stream
// first, is told so (site/destroys.cpp, SiteCore::count_discarded): they are refused, never
// dropped in silence.
#include <gtest/gtest.h>

#include <string>

#include "site_test_support.hpp"

namespace mstream::site {
namespace {

TEST(Destroy, AShellHearsOfItsMessagesADestroyedStreamNeverTook) {
  constexpr SiteId kShell = kFirstShellId;
  Sites s{0, kShell};  // the stream's site 1 is unreachable: nothing is consumed
  wire::StreamRecord d;
  d.id = 777;
  d.name = "d";
  d.site = 1;
  d.epoch = 1;
  s[0].send_raw_control(kShell, control_stream(kShell), wire::Location{d, {}});
  s.pump();
  s[kShell].note_opened(777);  // as the leader's answer to its open would
  ASSERT_TRUE(s[kShell].append_from(s[kShell].sender_id(), "d", "one", false).ok());
  ASSERT_TRUE(s[kShell].append_from(s[kShell].sender_id(), "d", "two", false).ok());
  s.pump();
  EXPECT_TRUE(s[kShell].has_unconsumed(s[kShell].sender_id(), 777));
  std::string line;
  while (s[kShell].poll_error(&line)) {
  }
  wire::StreamRecord gone = d;
  gone.site = wire::kNoSite;  // destroyed, by someone else
  gone.epoch = 2;
  s[0].send_raw_control(kShell, control_stream(kShell), wire::Location{gone, {}});
  s.pump();
  EXPECT_EQ(s[kShell].counters().discarded_own, 2u);
  ASSERT_TRUE(s[kShell].poll_error(&line));
  EXPECT_EQ(line,
            "stream_append: 2 messages to stream \"d\" refused: the stream was destroyed before "
            "it consumed them");
  EXPECT_FALSE(s[kShell].has_unconsumed(s[kShell].sender_id(), 777));
}

}  // namespace
}  // namespace mstream::site
