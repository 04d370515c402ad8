// stream_destroy as a script's author expects it (doc/commands.md, stream_destroy): a script
// and a handler run top to bottom, so a destroy takes effect after the stream consumed every
// message its caller appended to it before. (Another sender's messages that come too late
// are refused and reported: tests/site_destroy_test.cpp.)

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "e2e_support.hpp"

namespace mstream::e2e {
namespace {

class Destroy : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(dir_.ok()); }
  TempDir dir_;
};

const std::vector<std::string> kFive = {"got msg1", "got msg2", "got msg3", "got msg4",
                                        "got msg5"};

// The issue's reproduction: five appends, then the destroy, in one shell. A slow handler
// keeps the messages unconsumed when the destroy would otherwise reach the stream.
TEST_F(Destroy, TakesEffectAfterTheShellsEarlierAppendsWereConsumed) {
  const CommandResult r = run_script(dir_, R"(
stream_create d -site 1
register_agent d {} { on_stream_append { after 30; puts "got $argv" } }
for {set i 1} {$i <= 5} {incr i} { stream_append d msg$i }
stream_destroy d
puts "destroyed: [stream_exists d]"
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(site_lines(r.out, 1), kFive) << r.describe();
  EXPECT_EQ(shell_lines(r.out), std::vector<std::string>{"destroyed: 0"}) << r.describe();
}

// A handler cannot wait: its site holds the destroy until the handler's stream's appends to
// the stream were consumed.
TEST_F(Destroy, InAHandlerTakesEffectAfterItsOwnAppends) {
  const CommandResult r = run_script(dir_, R"(
stream_create d -site 1
stream_create k -site 2
register_agent d {} { on_stream_append { after 30; puts "got $argv" } }
register_agent k {} {
  on_stream_append {
    for {set i 1} {$i <= 5} {incr i} { stream_append d msg$i }
    stream_destroy d
  }
}
stream_append k go
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(site_lines(r.out, 1), kFive) << r.describe();
}

// A handler destroys its own stream while the shell's later appends wait for it: they are
// refused and said to the script, and the run still ends (it waited for ever for their
// consumption: the shell now tells the leader again how many of its messages to wait for).
TEST_F(Destroy, AShellsMessagesRefusedByADestroyedStreamDoNotHoldUpTheRunsEnd) {
  const CommandResult r = run_script(dir_, R"(
stream_create r -site 1
register_agent r {} {
  on_stream_append {
    if {$argv eq "die"} { after 200; stream_destroy [stream_name] }
  }
}
stream_append r die
stream_append r a1
stream_append r a2
)",
                                     {"--sites", "2"}, {}, 30s);
  EXPECT_EQ(r.exit_code, 3) << r.describe();  // a refused append was reported
  EXPECT_NE(r.err.find("2 messages to stream \"r\" refused: the stream was destroyed"),
            std::string::npos)
      << r.describe();
}

}  // namespace
}  // namespace mstream::e2e
