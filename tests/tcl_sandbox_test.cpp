// The sandbox of mobile code (COMMANDS.md, Sandbox): what an agent that is not trusted cannot
// reach, the limits that abort a run (the interpreter then serves the next run as before), what
// a controller may expose, and that agents of different origins never share an interpreter.
#include <gtest/gtest.h>
#include <tcl.h>

#include <string>
#include <utility>

#include "tcl/tcl_host.hpp"
#include "tcl_fake_script_api.hpp"

namespace mstream::tcl {
namespace {

using ::mstream::tcl::testing::FakeScriptApi;

class Sandbox : public ::testing::Test {
 protected:
  Status load(std::uint64_t agent, const std::string& body, AgentOptions options = {}) {
    HandlerContext context{"s", "", agent};
    const HandlerContext* outer = std::exchange(api_.handler_context, &context);
    std::string info;
    Status status = host_.load_agent(agent, "", body, context, &info, options);
    api_.handler_context = outer;
    return status;
  }
  HandlerOutcome run(std::uint64_t agent, const std::string& argv = "m") {
    HandlerContext context{"s", "shell:1", agent};
    const HandlerContext* outer = std::exchange(api_.handler_context, &context);
    HandlerOutcome out = host_.run(agent, Event::kAppend, context, argv);
    api_.handler_context = outer;
    return out;
  }
  // Agent 1 runs `script` as its append handler; returns the outcome.
  HandlerOutcome attack(const std::string& script) {
    host_.drop_agent(1);
    EXPECT_TRUE(load(1, "on_stream_append {" + script + "}").ok());
    return run(1);
  }
  void expect_error(const std::string& script, const std::string& message) {
    HandlerOutcome out = attack(script);
    EXPECT_TRUE(out.ran) << script;
    EXPECT_FALSE(out.ok) << script << " -> " << out.result;
    EXPECT_EQ(out.result, message) << script;
  }
  // After an attack the same interpreter serves the next run normally.
  void expect_still_works() {
    ASSERT_TRUE(load(2, "on_stream_append {return ok:$argv}").ok() || host_.has_agent(2));
    HandlerOutcome out = run(2, "next");
    EXPECT_TRUE(out.ok) << out.result;
    EXPECT_EQ(out.result, "ok:next");
  }

  FakeScriptApi api_;
  TclHost host_{&api_};
};

TEST_F(Sandbox, FilesSocketsProgramsLibrariesAndInterpretersAreNotThere) {
  expect_error("open /etc/passwd", "invalid command name \"open\"");
  expect_error("socket example.com 80", "invalid command name \"socket\"");
  expect_error("exec /bin/sh -c true", "invalid command name \"exec\"");
  expect_error("load /lib/x86_64-linux-gnu/libc.so.6", "invalid command name \"load\"");
  expect_error("file delete /tmp/x", "invalid command name \"file\"");
  expect_error("source /etc/passwd", "invalid command name \"source\"");
  expect_error("glob /*", "invalid command name \"glob\"");
  expect_error("cd /", "invalid command name \"cd\"");
  expect_error("interp create", "invalid command name \"interp\"");
  expect_error("vwait forever", "invalid command name \"vwait\"");
  expect_error("update", "invalid command name \"update\"");
  expect_error("after 10 {set x 1}",
               "after: only \"after ms\" is available in a sandbox (a pause within the run's "
               "time limit)");
  expect_error("gets stdin", "can not find channel named \"stdin\"");
  expect_still_works();
}

TEST_F(Sandbox, ARunPastItsTimeLimitIsAbortedAndTheNextRunIsFine) {
  HandlerLimits limits;
  limits.time_ms = 200;
  host_.set_limits(limits);
  expect_error("while 1 {}", "sandbox: time limit exceeded (200 ms per run)");
  // Catching the error does not help: every command fails until the run ends.
  expect_error("while 1 { catch { while 1 {} } }", "sandbox: time limit exceeded (200 ms per run)");
  expect_error("after 100000", "sandbox: time limit exceeded (200 ms per run)");
  EXPECT_TRUE(attack("after 20; return slept").ok);
  expect_still_works();
}

TEST_F(Sandbox, ARunPastItsCommandLimitIsAborted) {
  HandlerLimits limits;
  limits.commands = 20000;
  host_.set_limits(limits);
  expect_error("while 1 { incr i }", "sandbox: command limit exceeded (20000 commands per run)");
  EXPECT_TRUE(attack("for {set i 0} {$i < 1000} {incr i} {}; return $i").ok);
  expect_still_works();
}

TEST_F(Sandbox, MemoryIsBoundedPerValueAndPerRun) {
  HandlerLimits limits;
  limits.value_bytes = 8u << 20;
  limits.memory_bytes = 64u << 20;
  limits.check_every = 50;
  host_.set_limits(limits);
  expect_error("string repeat x 1000000000",
               "string repeat: the value would be 1000000000 bytes, over the sandbox's limit "
               "of 8388608 bytes per value");
  expect_error("lrepeat 100000000 a",
               "lrepeat: the value would be 800000000 bytes, over the sandbox's limit of "
               "8388608 bytes per value");
  expect_error("set x [string repeat x 1000]; while 1 { append x $x }",
               "append: the value would be 16384000 bytes, over the sandbox's limit of 8388608 "
               "bytes per value");
  // Many values, each under the cap: the run's heap growth stops it.
  HandlerOutcome out =
      attack("set x [string repeat x 4000000]; while 1 { lappend l [string cat $x [incr i]] }");
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.result.rfind("sandbox: memory limit exceeded (the heap grew by ", 0), 0u)
      << out.result;
  host_.drop_agent(1);  // frees what it took
  expect_still_works();
}

TEST_F(Sandbox, AControllerExposesChosenCommandsAndNothingElseIsReachable) {
  ASSERT_TRUE(load(10,
                   "proc read_config {name} {"
                   "  if {![string match {[a-z]*} $name]} { error \"no such config\" };"
                   "  return \"config $name from [info exists ::env]\" };"
                   "proc secret {} { return hidden };"
                   "sandbox_expose read_config",
                   AgentOptions{true, true, 0})
                  .ok());
  HandlerOutcome out = attack("read_config alpha");
  EXPECT_TRUE(out.ok) << out.result;
  EXPECT_EQ(out.result, "config alpha from 1");  // it ran in the trusted interpreter
  expect_error("read_config ../etc", "no such config");
  expect_error("secret", "invalid command name \"secret\"");
  expect_error("sandbox_expose open",
               "sandbox_expose: only a site's or the session's controller may expose commands");
  // Exposed to a sandbox made after the exposure too.
  ASSERT_TRUE(load(3, "on_stream_append {read_config beta}", AgentOptions{false, false, 7}).ok());
  EXPECT_EQ(run(3).result, "config beta from 1");
}

TEST_F(Sandbox, AgentsOfDifferentOriginsNeverShareAnInterpreter) {
  ASSERT_TRUE(load(1, "set ::planted 1", AgentOptions{false, false, 1}).ok());
  ASSERT_TRUE(
      load(2, "on_stream_append {info exists ::planted}", AgentOptions{false, false, 1}).ok());
  ASSERT_TRUE(
      load(3, "on_stream_append {info exists ::planted}", AgentOptions{false, false, 2}).ok());
  ASSERT_TRUE(
      load(4, "on_stream_append {info exists ::planted}", AgentOptions{false, true, 0}).ok());
  EXPECT_EQ(run(2).result, "1");  // same origin: one interpreter, as DESIGN.md "Threads" allows
  EXPECT_EQ(run(3).result, "0");
  EXPECT_EQ(run(4).result, "0");
  EXPECT_NE(host_.interp_of(1), host_.interp_of(3));
  EXPECT_EQ(host_.interp_of(4), host_.interp());
}

// A domain is a shell or a site, and shells come and go: the sandbox of one whose agents are
// all gone is not kept for ever (about 280 KB each; issue 18, "Memory that only grows").
TEST_F(Sandbox, SandboxesOfDomainsWithNoAgentLeftAreBounded) {
  constexpr std::uint32_t kDomains = 10;
  for (std::uint32_t d = 1; d <= kDomains; ++d) {
    ASSERT_TRUE(load(d, "on_stream_append {return $argv}", AgentOptions{false, false, d}).ok());
    EXPECT_EQ(run(d, "x").result, "x");
    host_.drop_agent(d);
    EXPECT_LE(host_.sandbox_count(), TclHost::kIdleSandboxes);
  }
  // The most recently emptied one is still there for its domain's next agent; one with an
  // agent is never deleted, however many domains empty after it.
  Tcl_Interp* kept = nullptr;
  ASSERT_TRUE(load(100, "set n 1", AgentOptions{false, false, kDomains}).ok());
  kept = host_.interp_of(100);
  for (std::uint32_t d = 200; d < 200 + kDomains; ++d) {
    ASSERT_TRUE(load(d, "set n 1", AgentOptions{false, false, d}).ok());
    host_.drop_agent(d);
  }
  EXPECT_EQ(host_.interp_of(100), kept);
  EXPECT_LE(host_.sandbox_count(), TclHost::kIdleSandboxes + 1);
  ASSERT_TRUE(load(101, "on_stream_append {return ok}", AgentOptions{false, false, kDomains}).ok());
  EXPECT_EQ(host_.interp_of(101), kept);
  EXPECT_EQ(run(101).result, "ok");
}

// Issue 18: a sandbox Tcl would not make threw out of load_agent and ended the daemon. A
// trusted agent's script can take a sandbox's name (here the next domain's); then that domain's
// agent is refused with the reason, and nothing of the half-made sandbox is left.
TEST_F(Sandbox, ASandboxThatCannotBeMadeRefusesTheAgentWithTheReason) {
  ASSERT_TRUE(load(1, "interp create sandbox9", AgentOptions{false, true, 0}).ok());
  const std::size_t sandboxes = host_.sandbox_count();
  Status status = load(2, "on_stream_append {return ok}", AgentOptions{false, false, 9});
  EXPECT_EQ(status.code(), Status::Code::kInternal);
  EXPECT_EQ(status.message(),
            "cannot make a safe interpreter: interpreter named \"sandbox9\" already exists, "
            "cannot create");
  EXPECT_FALSE(host_.has_agent(2));
  EXPECT_EQ(host_.sandbox_count(), sandboxes);
  // Other domains are not affected.
  ASSERT_TRUE(load(3, "on_stream_append {return ok}", AgentOptions{false, false, 8}).ok());
  EXPECT_EQ(run(3).result, "ok");
}

}  // namespace
}  // namespace mstream::tcl
