// The processes of `mstream run`'s embedded session: none is left behind however the run ends
// (success, a script error, Ctrl-C, SIGTERM), a site that dies mid-run makes the run fail
// naming it, and --timeout bounds the wait for a session that never quiesces.
//
// The script under watch prints "ready" and then waits for a flag file, so the test can look
// at the daemons while they surely run, then let the script go on.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <regex>
#include <string>
#include <vector>

#include "e2e_support.hpp"

namespace mstream::e2e {
namespace {

class Processes : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(dir_.ok()); }

  // Starts `mstream run test.tcl FLAG` with `script`, which must print "ready" first and then
  // wait for FLAG; returns once it printed "ready" and its daemons are recorded.
  void start_watched_run(const std::string& script) {
    dir_.write("test.tcl", script);
    run_ = Background::start(dir_, "run", {"run", "test.tcl", dir_.file("flag")}, 20s);
    ASSERT_NE(run_, nullptr) << "the run printed nothing";
    ASSERT_EQ(run_->first_line(), "ready") << run_->out() << run_->err();
    daemons_ = live_children(run_->pid());
    ASSERT_EQ(daemons_.size(), 4u) << "a leader and 3 sites";
    group_ = proc_info(daemons_[0])->pgrp;
    for (const pid_t pid : daemons_) {
      ASSERT_TRUE(contains(command_line(pid), "mstream")) << command_line(pid);
      EXPECT_EQ(proc_info(pid)->pgrp, group_);
    }
  }
  void release_script() { write_file(dir_.file("flag"), ""); }

  // Every daemon recorded, and every member of their process group, runs no more.
  void expect_no_daemon_left() {
    for (const pid_t pid : daemons_) EXPECT_TRUE(dead_within(pid, 10s)) << command_line(pid);
    EXPECT_TRUE(wait_until([&] { return live_group_members(group_).empty(); }, 10s));
  }
  // A site's pid (a daemon started as `mstream site ...`).
  pid_t some_site() const {
    for (const pid_t pid : daemons_)
      if (contains(command_line(pid), " site ")) return pid;
    return -1;
  }

  SubreaperScope subreaper_;  // so the daemons of a run that dies come to us to be seen gone
  TempDir dir_;
  std::unique_ptr<Background> run_;
  std::vector<pid_t> daemons_;
  pid_t group_ = -1;
};

constexpr const char* kWaitForFlag = R"(
stream_create foo -site 2
register_agent foo {} { on_stream_append { return [my_id] } }
puts ready
while {![file exists [lindex $argv 0]]} { after 10 }
)";

TEST_F(Processes, SuccessfulRunLeavesNoProcessBehind) {
  start_watched_run(std::string(kWaitForFlag) + "puts [lindex [stream_append foo done -sync] 0]\n");
  release_script();
  EXPECT_EQ(run_->process().wait(30s), 0) << run_->err();
  EXPECT_EQ(run_->out(), "ready\n2\n");
  expect_no_daemon_left();
}

TEST_F(Processes, ScriptErrorLeavesNoProcessBehind) {
  start_watched_run(std::string(kWaitForFlag) + "error \"late failure\"\n");
  release_script();
  const auto code = run_->process().wait(30s);
  ASSERT_TRUE(code.has_value()) << "the run did not end";
  EXPECT_TRUE(*code > 0 && *code < 128) << *code;
  EXPECT_TRUE(contains(run_->err(), "error in test.tcl: late failure")) << run_->err();
  expect_no_daemon_left();
}

TEST_F(Processes, CtrlCLeavesNoProcessBehind) {
  start_watched_run(kWaitForFlag);
  run_->process().signal(SIGINT);
  EXPECT_EQ(run_->process().wait(10s), 130);
  expect_no_daemon_left();
}

TEST_F(Processes, SigtermLeavesNoProcessBehind) {
  start_watched_run(kWaitForFlag);
  run_->process().signal(SIGTERM);
  EXPECT_EQ(run_->process().wait(10s), 128 + SIGTERM);
  expect_no_daemon_left();
}

TEST_F(Processes, SiteKilledDuringARunFailsTheRunNamingTheSite) {
  start_watched_run(std::string(kWaitForFlag) + R"(
for {set i 0} {$i < 200} {incr i} { stream_append foo $i -sync; after 10 }
puts "not reached"
)");
  const pid_t victim = some_site();
  ASSERT_GT(victim, 0);
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  release_script();
  const auto code = run_->process().wait(30s);
  ASSERT_TRUE(code.has_value()) << "the run did not end";
  EXPECT_TRUE(*code > 0 && *code < 128) << *code << "\n" << run_->err();
  EXPECT_FALSE(contains(run_->out(), "not reached"));
  // Site ids and start order normally agree, but only the pid is sure to be in the message.
  const std::regex named(R"(site [0-9]+ \(pid )" + std::to_string(victim) +
                         R"(\) died: killed by signal 9)");
  EXPECT_TRUE(std::regex_search(run_->err(), named)) << run_->err();
  expect_no_daemon_left();
}

TEST_F(Processes, TimeoutEndsAWaitForQuiescenceThatNeverComes) {
  // The handler appends to its own stream forever: the session never becomes quiescent.
  const CommandResult r = run_script(dir_, R"(
stream_create r -site 1
register_agent r {} { on_stream_append { after 2; stream_append r again } }
stream_append r go
)",
                                     {"--timeout", "1"}, {}, 30s);
  EXPECT_TRUE(r.failed()) << r.describe();
  EXPECT_TRUE(contains(r.err, "mstream run: the session did not become quiescent in time"))
      << r.err;
}

TEST_F(Processes, RunWaitsForEveryAppendedMessageBeforeItEnds) {
  // The script ends with messages still queued; the run consumes them all before exiting.
  const CommandResult r = run_script(dir_, R"(
stream_create r -site 1
stream_create s -site 2
register_agent r {} { on_stream_append { after 1; stream_append s $argv } }
register_agent s {} { on_stream_append { if {$argv % 50 == 0} { puts "s got $argv" } } }
for {set i 1} {$i <= 200} {incr i} { stream_append r $i }
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(site_lines(r.out, 2),
            (std::vector<std::string>{"s got 50", "s got 100", "s got 150", "s got 200"}));
}

}  // namespace
}  // namespace mstream::e2e
