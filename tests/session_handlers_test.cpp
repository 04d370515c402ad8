// Agents and their handlers as a user of `mstream run` sees them: initialization errors,
// errors inside handlers (reported, the message consumed, the stream running on), the results
// of -sync appends, agent_exit, and where handler output goes.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "e2e_support.hpp"

namespace mstream::e2e {
namespace {

class Handlers : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(dir_.ok()); }
  TempDir dir_;
};

TEST_F(Handlers, InitializationErrorIsReportedWithErrorInfoAndTheAgentIsNotAttached) {
  const CommandResult r = run_script(dir_, R"(
stream_create foo -site 1
set failed [catch {
  register_agent foo {} {
    on_stream_append { return attached }
    set x [expr {1 / 0}]
  }
} msg opts]
puts "failed: $failed"
puts "message has the error: [string match {*divide by zero*} $msg]"
puts "errorInfo has the line: [string match {*set x \[expr {1 / 0}\]*} [dict get $opts -errorinfo]]"
puts "handlers that ran: [llength [stream_append foo hi -sync]]"
register_agent foo {} { on_stream_append { return second } }
puts "after a good agent: [lindex [stream_append foo hi -sync] 0]"
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(shell_lines(r.out), (std::vector<std::string>{
                                    "failed: 1",
                                    "message has the error: 1",
                                    "errorInfo has the line: 1",
                                    "handlers that ran: 0",
                                    "after a good agent: second",
                                }));
}

TEST_F(Handlers, UncaughtInitializationErrorEndsTheRunWithErrorInfoAndLine) {
  const CommandResult r = run_script(dir_, R"(stream_create foo -site 2
register_agent foo {} {
  set ready 1
  error "cannot initialise"
}
puts unreachable
)");
  EXPECT_TRUE(r.failed()) << r.describe();
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(contains(r.err, "mstream run: error in test.tcl: cannot initialise")) << r.err;
  EXPECT_TRUE(contains(r.err, "\"error \"cannot initialise\"\"")) << r.err;
  EXPECT_TRUE(contains(r.err, "(file \"test.tcl\" line 2)")) << r.err;
}

TEST_F(Handlers, SyncAppendReturnsOneResultPerAgent) {
  const CommandResult r = run_script(dir_, R"(
stream_create r -site 1
puts "no agent: <[stream_append r hi -sync]>"
register_agent r {} { on_stream_append { return "a b" } }
register_agent r {} { on_stream_append { return [my_id] } }
register_agent r {} { set no_append_handler 1 }
register_agent r {} { on_stream_append { return $argv } }
set results [stream_append r {hello world} -sync]
puts [llength $results]
foreach x $results { puts <$x> }
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(shell_lines(r.out),
            (std::vector<std::string>{"no agent: <>", "3", "<a b>", "<1>", "<hello world>"}));
}

// Finding E2E-3 (/tmp/e2e-findings.md): a handler result holding an unbalanced brace or a
// trailing backslash makes the -sync result a malformed list.
TEST_F(Handlers, SyncResultsWithBracesStayOneListElementPerAgent) {
  const CommandResult r = run_script(dir_, R"(
stream_create r -site 1
register_agent r {} { on_stream_append { return "x \{" } }
register_agent r {} { on_stream_append { return "y\\" } }
register_agent r {} { on_stream_append { return "z \}" } }
set results [stream_append r hi -sync]
puts [llength $results]
foreach x $results { puts <$x> }
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(shell_lines(r.out), (std::vector<std::string>{"3", "<x {>", "<y\\>", "<z }>"}));
}

TEST_F(Handlers, AppendHandlerErrorIsReportedAndTheStreamKeepsRunning) {
  const CommandResult r = run_script(dir_, R"(
stream_create foo -site 1
register_agent foo {} {
  set handled 0
  on_stream_append {
    incr handled
    if {$argv eq "bad"} { error "boom on $argv" }
    return $handled
  }
}
puts [lindex [stream_append foo first -sync] 0]
stream_append foo bad
puts [lindex [stream_append foo next -sync] 0]
for {set i 0} {$i < 20} {incr i} { stream_append foo more }
puts [lindex [stream_append foo last -sync] 0]
)");
  EXPECT_EQ(r.exit_code, 3) << r.describe();
  // "bad" was handled exactly once and counted as consumed: the next messages are 3 and 24.
  EXPECT_EQ(shell_lines(r.out), (std::vector<std::string>{"1", "3", "24"}));
  EXPECT_TRUE(
      contains(r.err, "error in append handler: stream \"foo\", agent 1, site 1: boom on bad"))
      << r.err;
  EXPECT_TRUE(contains(r.err, "    while executing\n\"error \"boom on $argv\"")) << r.err;
}

// A site runs its handlers on worker threads (DESIGN.md "Threads"): a handler that takes long
// holds up its own stream, not the other streams of its site, which are pinned to another
// worker (streams 1 and 2 here, on the two workers), nor the site's network.
constexpr const char* kSlowBesideFast = R"(
stream_create slow -site 1
stream_create fast -site 1
register_agent slow {} { on_stream_append { after 1500; puts "slow done" } }
register_agent fast {} { on_stream_append { return "fast $argv" } }
stream_append slow go
puts [lindex [stream_append fast hi -sync] 0]
)";

std::ptrdiff_t index_of(const std::vector<std::string>& lines, const std::string& line) {
  auto it = std::find(lines.begin(), lines.end(), line);
  return it == lines.end() ? -1 : it - lines.begin();
}

TEST_F(Handlers, ASlowHandlerDoesNotHoldUpAStreamOnAnotherWorker) {
  const CommandResult r = run_script(dir_, kSlowBesideFast, {"--workers", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  const std::vector<std::string> lines = split_lines(r.out);
  ASSERT_GE(index_of(lines, "fast hi"), 0) << r.out;
  ASSERT_GE(index_of(lines, "[1] slow done"), 0) << r.out;
  EXPECT_LT(index_of(lines, "fast hi"), index_of(lines, "[1] slow done")) << r.out;
}

TEST_F(Handlers, WithoutWorkersASlowHandlerHoldsUpItsWholeSite) {
  // Held up for 1.5 s, the site would look failed under the default 1 s failure timeout.
  const CommandResult r =
      run_script(dir_, kSlowBesideFast, {"--workers", "0", "--failure-timeout", "10000"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  const std::vector<std::string> lines = split_lines(r.out);
  ASSERT_GE(index_of(lines, "fast hi"), 0) << r.out;
  EXPECT_LT(index_of(lines, "[1] slow done"), index_of(lines, "fast hi")) << r.out;
}

TEST_F(Handlers, ABadWorkerCountIsRefused) {
  const CommandResult r = run_script(dir_, "puts hi\n", {"--workers", "-3"});
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(contains(r.err, "--workers")) << r.err;
}

// DESIGN.md guarantee 2: a stream with no append handler consumes at once; one attached
// later, or leaving with agent_exit, starts or stops the handling from the next message.
TEST_F(Handlers, AStreamWithoutAppendHandlerConsumesAndAttachingOneStartsHandling) {
  const CommandResult r = run_script(dir_, R"(
stream_create s -site 1
register_agent s {} { on_stream_relocation { puts moved } }
for {set i 0} {$i < 50} {incr i} { stream_append s early$i }
puts "sync:[stream_append s plain -sync]"
register_agent s {} {
  on_stream_append {
    puts "got $argv"
    if {$argv eq "bye"} { agent_exit }
    return ok
  }
}
puts "sync:[stream_append s one -sync]"
stream_append s bye
puts "sync:[stream_append s after -sync]"
stream_move s 2
puts "sync:[stream_append s last -sync]"
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(shell_lines(r.out), (std::vector<std::string>{"sync:", "sync:ok", "sync:", "sync:"}));
  EXPECT_EQ(site_lines(r.out, 1), (std::vector<std::string>{"got one", "got bye"}));
  EXPECT_EQ(site_lines(r.out, 2), std::vector<std::string>{"moved"});
}

// Finding E2E-2 (/tmp/e2e-findings.md): under `mstream run` the site, the leader and the
// shell each print the same handler error, so the user reads it three times. Issue 18: and
// each report said the message twice, once more as the head of its errorInfo.
TEST_F(Handlers, AppendHandlerErrorIsReportedOnce) {
  const CommandResult r = run_script(dir_, R"(
stream_create foo -site 1
register_agent foo {} { on_stream_append { error "boom $argv" } }
stream_append foo once
)");
  EXPECT_EQ(r.exit_code, 3) << r.describe();
  EXPECT_EQ(count_of(r.err, "boom once"), 1u) << r.err;
  EXPECT_TRUE(contains(r.err,
                       "error in append handler: stream \"foo\", agent 1, site 1: boom once\n"
                       "    while executing\n\"error \"boom $argv\" \""))
      << r.err;
}

// Issue 18: the -sync append returned `{invalid command name "no_such_cmd"}` as a result.
TEST_F(Handlers, SyncAppendRaisesTheFirstFailedHandlerAndKeepsTheOthersResults) {
  const CommandResult r = run_script(dir_, R"(
stream_create x -site 1
register_agent x {} { on_stream_append { return "first $argv" } }
register_agent x {} { on_stream_append { no_such_cmd } }
register_agent x {} { on_stream_append { error "third fails too" } }
register_agent x {} { on_stream_append { return last } }
puts "failed: [catch {stream_append x m -sync} msg opts]"
puts $msg
puts [dict get $opts -errorcode]
puts [dict get $opts -results]
puts "the stream goes on: [catch {stream_append x n -sync} msg opts] [dict get $opts -results]"
)");
  EXPECT_EQ(r.exit_code, 3) << r.describe();
  EXPECT_EQ(shell_lines(r.out),
            (std::vector<std::string>{
                "failed: 1",
                "error in append handler: stream \"x\", agent 2, site 1: invalid command name "
                "\"no_such_cmd\"",
                "MSTREAM HANDLER x 2 1",
                "1 {first m} 4 last",
                "the stream goes on: 1 1 {first n} 4 last",
            }))
      << r.describe();
  // Raised in the script, agent 2's error is not reported besides; agent 3's is, each time.
  EXPECT_EQ(count_of(r.err, "no_such_cmd"), 0u) << r.err;
  EXPECT_EQ(count_of(r.err, "error in append handler: stream \"x\", agent 3, site 1: third "
                            "fails too"),
            2u)
      << r.err;
}

// A durable stream answers a -sync append once a checkpoint covers the message: the failure
// waits with the result (DurableState::Consumed) and is raised the same.
TEST_F(Handlers, ASyncAppendToADurableStreamRaisesItsHandlersErrorToo) {
  const CommandResult r = run_script(dir_, R"(stream_create d -site 1 -durable
register_agent d {} { on_stream_append { if {$argv eq "bad"} { error "durable boom" }; return ok } }
puts [catch {stream_append d bad -sync} msg opts]
puts $msg
puts [dict get $opts -errorcode]
puts [stream_append d good -sync]
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(shell_lines(r.out),
            (std::vector<std::string>{
                "1",
                "error in append handler: stream \"d\", agent 1, site 1: durable boom",
                "MSTREAM HANDLER d 1 1",
                "ok",
            }))
      << r.describe();
  EXPECT_EQ(count_of(r.err, "durable boom"), 0u) << r.err;
}

TEST_F(Handlers, AnUncaughtSyncAppendErrorEndsTheScriptWithIt) {
  const CommandResult r = run_script(dir_, R"(stream_create x -site 2
register_agent x {} { on_stream_append { error "no good" } }
stream_append x m -sync
puts unreachable
)");
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(contains(r.err,
                       "mstream run: error in test.tcl: error in append handler: stream \"x\", "
                       "agent 1, site 2: no good\n"))
      << r.err;
  EXPECT_TRUE(contains(r.err, "(file \"test.tcl\" line 3)")) << r.err;
}

// Issue 18: a move whose relocation handler failed at the target returned the target as if
// all went well.
TEST_F(Handlers, AMoveRaisesTheRelocationErrorAndTheStreamStillArrives) {
  const CommandResult r = run_script(dir_, R"(
stream_create q -site 1
register_agent q {} {
  on_stream_relocation { error "cannot settle at [my_id]" }
  on_stream_append { return [my_id] }
}
puts "failed: [catch {stream_move q 3} msg opts]"
puts $msg
puts [dict get $opts -errorcode]
puts [stream_location q]
puts [lindex [stream_append q hi -sync] 0]
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(shell_lines(r.out),
            (std::vector<std::string>{
                "failed: 1",
                "stream \"q\" is at site 3, but the relocation handler of agent 1 failed there: "
                "cannot settle at 3",
                "MSTREAM HANDLER q 1 3",
                "3",
                "3",
            }))
      << r.describe();
  // Raised in the script that moved it: not reported besides.
  EXPECT_EQ(count_of(r.err, "cannot settle"), 0u) << r.err;
}

TEST_F(Handlers, AMoveRaisesAnInitializationErrorAtTheTarget) {
  const CommandResult r = run_script(dir_, R"(
stream_create q -site 1
register_agent q {} { on_stream_append { return fine } }
register_agent q {} {
  if {[my_id] == 2} { error "no room at 2" }
  on_stream_append { return [my_id] }
}
stream_move q 2
puts unreachable
)");
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(contains(r.err,
                       "mstream run: error in test.tcl: stream \"q\" is at site 2, but the "
                       "initialization handler of agent 2 failed there: no room at 2"))
      << r.err;
}

TEST_F(Handlers, AgentExitDetachesTheAgentAfterItsHandlerReturns) {
  const CommandResult r = run_script(dir_, R"(
stream_create q -site 2
register_agent q {} {
  on_stream_append { agent_exit; return "still running" }
  on_agent_finalize { puts "finalized at [my_id]" }
}
register_agent q {} { on_stream_append { return stays } }
foreach m {1 2} { puts [join [stream_append q $m -sync] |] }
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(shell_lines(r.out), (std::vector<std::string>{"still running|stays", "stays"}));
  EXPECT_EQ(site_lines(r.out, 2), std::vector<std::string>{"finalized at 2"});
}

TEST_F(Handlers, StreamWithoutAppendHandlerConsumesAtOnce) {
  const CommandResult r = run_script(dir_, R"(
stream_create sink -site 1
for {set i 0} {$i < 500} {incr i} { stream_append sink "message $i" }
puts "sync: <[stream_append sink last -sync]>"
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(shell_lines(r.out), std::vector<std::string>{"sync: <>"});
}

TEST_F(Handlers, HandlerOutputIsPrefixedWithItsSite) {
  const CommandResult r = run_script(dir_, R"(
foreach s {0 1 2 3} {
  stream_create p$s -site $s
  register_agent p$s {} {
    on_stream_append {
      puts "at [my_id]: $argv"
      puts -nonewline "two "
      puts stdout parts
    }
  }
  stream_append p$s hi -sync
}
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  for (int s = 0; s <= 3; ++s) {
    EXPECT_EQ(site_lines(r.out, s),
              (std::vector<std::string>{"at " + std::to_string(s) + ": hi", "two parts"}))
        << r.out;
  }
  EXPECT_TRUE(shell_lines(r.out).empty()) << r.out;
}

// Finding E2E-1 (/tmp/e2e-findings.md): a daemon stamps a handler's line when it drains its
// output after a loop round, not when the handler printed, so the shell's line printed after
// the -sync result (caused by the handler) often comes out first.
TEST_F(Handlers, ShellLineCausedByAHandlerComesAfterTheHandlersLine) {
  const CommandResult r = run_script(dir_, R"(
stream_create foo -site 1
register_agent foo {} { on_stream_append { puts "handler $argv"; return $argv } }
for {set i 1} {$i <= 5} {incr i} { puts "shell [lindex [stream_append foo $i -sync] 0]" }
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  std::vector<std::string> expected;
  for (int i = 1; i <= 5; ++i) {
    expected.push_back("[1] handler " + std::to_string(i));
    expected.push_back("shell " + std::to_string(i));
  }
  EXPECT_EQ(r.lines(), expected);
}

// Issue 18: `mstream run` exited 0 after handler errors, which a script that ran to its end
// otherwise gives no sign of.
TEST_F(Handlers, ARunWithAReportedHandlerErrorExitsWithItsOwnStatusUnlessKeepGoing) {
  const std::string script = R"(stream_create x -site 1
register_agent x {} { on_stream_append { error "boom $argv" } }
stream_append x m
puts done
)";
  const CommandResult r = run_script(dir_, script);
  EXPECT_EQ(r.exit_code, 3) << r.describe();
  EXPECT_EQ(shell_lines(r.out), (std::vector<std::string>{"done"})) << r.describe();
  EXPECT_TRUE(contains(r.err, "error in append handler: stream \"x\", agent 1, site 1: boom m"))
      << r.err;
  EXPECT_TRUE(contains(r.err,
                       "mstream run: 1 handler error or refused append reported during the run "
                       "(exit status 3; --keep-going exits 0)\n"))
      << r.err;

  const CommandResult kept = run_script(dir_, script, {"--keep-going"});
  EXPECT_EQ(kept.exit_code, 0) << kept.describe();
  EXPECT_TRUE(contains(kept.err, "boom m")) << kept.err;
  EXPECT_FALSE(contains(kept.err, "reported during the run")) << kept.err;
}

// A -sync append's error is raised in the script: caught there, it is the script's business.
TEST_F(Handlers, ARaisedHandlerErrorTheScriptCaughtLeavesTheExitStatusAlone) {
  const CommandResult r = run_script(dir_, R"(stream_create x -site 1
register_agent x {} { on_stream_append { error "boom" } }
puts [catch {stream_append x m -sync}]
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(shell_lines(r.out), (std::vector<std::string>{"1"})) << r.describe();
}

}  // namespace
}  // namespace mstream::e2e
