// The limits of COMMANDS.md "Limits", as a user of `mstream run` meets them: each gives a clear
// error to the caller, and what was accepted before goes on working.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "e2e_support.hpp"

namespace mstream::e2e {
namespace {

class Limits : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(dir_.ok()); }
  TempDir dir_;
};

TEST_F(Limits, StreamsPerSiteAndAgentsPerStream) {
  const CommandResult r =
      run_script(dir_, R"T(
proc try {what args} {
  if {[catch $args msg]} { puts "$what: $msg" } else { puts "$what: ok" }
}
try a stream_create a -site 1
try b stream_create b -site 1
try c stream_create c -site 1
try "c at 2" stream_create c -site 2
try "move b to 2" stream_move b 2
try "move a to 2" stream_move a 2
stream_destroy b
try "d at 1" stream_create d -site 1
register_agent a {} { on_stream_append { return one } }
register_agent a {} { on_stream_append { return two } }
try "third agent" register_agent a {} { on_stream_append { return three } }
puts [stream_append a hi -sync]
)T",
                 {"--max-streams-per-site", "2", "--max-agents-per-stream", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(shell_lines(r.out), (std::vector<std::string>{
                                    "a: ok",
                                    "b: ok",
                                    "c: stream_create \"c\": site 1 hosts 2 streams, its limit",
                                    "c at 2: ok",
                                    "move b to 2: ok",
                                    "move a to 2: stream_move \"a\": site 2 hosts 2 streams, "
                                    "its limit",
                                    "d at 1: ok",
                                    "third agent: register_agent: stream \"a\" has 2 agents, its "
                                    "limit",
                                    "one two",
                                }))
      << r.describe();
}

TEST_F(Limits, MessageSizeCodeSizeAndWhatAHandlerMayHoldBack) {
  const CommandResult r = run_script(dir_, R"T(
proc try {what args} {
  if {[catch $args msg]} { puts "$what: $msg" } else { puts "$what: ok" }
}
stream_create sink -site 2
stream_create s -site 1
register_agent s {} {
  on_stream_append {
    set big [string repeat x 400000]
    set n 0
    if {[catch { while {$n < 10} { stream_append sink $big; incr n } } msg]} {
      return "appended $n, then: $msg"
    }
    return "appended $n"
  }
}
puts [stream_append s go -sync]
try "too large" stream_append s [string repeat y 1048577]
try "code too large" register_agent s {} "set x {[string repeat z 16777217]}"
puts "still: [stream_append s again -sync]"
)T",
                                     {"--max-held-bytes", "1000000"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(shell_lines(r.out),
            (std::vector<std::string>{
                "{appended 2, then: stream_append: stream \"s\" would hold 1200000 bytes of "
                "messages not yet sent, over its limit of 1000000 (its receivers consume too "
                "slowly)}",
                "too large: message of 1048577 bytes exceeds the 1048576-byte limit",
                "code too large: agent code exceeds 16777216 bytes",
                "still: {appended 2, then: stream_append: stream \"s\" would hold 1200000 bytes of "
                "messages not yet sent, over its limit of 1000000 (its receivers consume too "
                "slowly)}",
            }))
      << r.describe();
}

}  // namespace
}  // namespace mstream::e2e
