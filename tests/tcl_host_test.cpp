// TclHost: agents sharing one interpreter, each in its own namespace; handlers, briefcases,
// isolation, and the paper's figure 2 and figure 6 agents (seed 004) against a fake api.

#include "tcl/tcl_host.hpp"

#include <gtest/gtest.h>
#include <malloc.h>
#include <tcl.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tcl_fake_script_api.hpp"

namespace mstream::tcl {
namespace {

using testing::Evaluated;
using testing::FakeScriptApi;

// One site's view of a TclHost: loads and runs agents with the api's context set around each
// call, as a site does.
class Site {
 public:
  explicit Site(FakeScriptApi* api) : api_(api), host_(api) {}

  Status load(std::uint64_t agent, const std::string& body, const std::string& args = "",
              const std::string& stream = "foo", std::string* error_info = nullptr) {
    HandlerContext context{stream, "", agent};
    const HandlerContext* outer = std::exchange(api_->handler_context, &context);
    // Trusted: these tests look into the host's own interpreter; the sandbox has its own
    // tests (tcl_sandbox_test.cpp), and the namespace mechanics are the same there.
    Status status = host_.load_agent(agent, args, body, context, error_info, options_);
    api_->handler_context = outer;
    return status;
  }

  HandlerOutcome run(std::uint64_t agent, Event event, const std::string& argv = "",
                     const std::string& stream = "foo", const std::string& sender = "shell:1") {
    HandlerContext context{stream, sender, agent};
    const HandlerContext* outer = std::exchange(api_->handler_context, &context);
    HandlerOutcome outcome = host_.run(agent, event, context, argv);
    api_->handler_context = outer;  // runs may nest
    return outcome;
  }

  // Evaluates `script` at the interpreter's global level and returns its result.
  std::string eval(const std::string& script) {
    Evaluated out = testing::evaluate(host_.interp(), script);
    EXPECT_EQ(out.code, TCL_OK) << script << " -> " << out.result;
    return out.result;
  }

  TclHost& host() { return host_; }

 private:
  FakeScriptApi* api_;
  TclHost host_;
  AgentOptions options_{false, true, 0};
};

class Host : public ::testing::Test {
 protected:
  void load_ok(std::uint64_t agent, const std::string& body, const std::string& args = "",
               const std::string& stream = "foo") {
    std::string info;
    Status status = site_.load(agent, body, args, stream, &info);
    ASSERT_TRUE(status.ok()) << status.to_string() << "\n" << info;
  }
  std::string run_ok(std::uint64_t agent, Event event, const std::string& argv = "",
                     const std::string& stream = "foo", const std::string& sender = "shell:1") {
    HandlerOutcome outcome = site_.run(agent, event, argv, stream, sender);
    EXPECT_TRUE(outcome.ran);
    EXPECT_TRUE(outcome.ok) << outcome.result << "\n" << outcome.error_info;
    return outcome.result;
  }

  FakeScriptApi api_;
  Site site_{&api_};
};

TEST_F(Host, BodyRunsInTheAgentNamespaceWithArgv) {
  load_ok(1, "set got $argv; set ns [namespace current]; proc twice {x} {expr {$x * 2}}", "a b");
  EXPECT_TRUE(site_.host().has_agent(1));
  EXPECT_EQ(site_.host().agent_count(), 1u);
  EXPECT_EQ(site_.eval("set ::mstream::agent::1::got"), "a b");
  EXPECT_EQ(site_.eval("set ::mstream::agent::1::ns"), "::mstream::agent::1");
  EXPECT_EQ(site_.eval("::mstream::agent::1::twice 4"), "8");
  EXPECT_EQ(site_.eval("info exists ::got"), "0");
}

TEST_F(Host, HandlersGetTheMessageAsArgvAndReturnTheirResult) {
  load_ok(1, "on_stream_append {string toupper $argv}; on_stream_failure {return failed:$argv}");
  EXPECT_TRUE(site_.host().has_handler(1, Event::kAppend));
  EXPECT_TRUE(site_.host().has_handler(1, Event::kFailure));
  EXPECT_FALSE(site_.host().has_handler(1, Event::kRelocation));
  EXPECT_EQ(run_ok(1, Event::kAppend, "hello world"), "HELLO WORLD");
  EXPECT_EQ(run_ok(1, Event::kFailure, "x"), "failed:x");
  EXPECT_EQ(site_.eval("set ::mstream::agent::1::argv"), "x");
}

// A result nobody reads is not made; an error's message always is.
TEST_F(Host, AResultNobodyWantsIsNotMadeButAnErrorIsStillSaid) {
  load_ok(1, "on_stream_append { if {$argv eq {bad}} { error oops }; string toupper $argv }");
  HandlerContext context{"foo", "shell:1", 1};
  context.result_wanted = false;
  HandlerOutcome quiet = site_.host().run(1, Event::kAppend, context, "hi");
  EXPECT_TRUE(quiet.ran);
  EXPECT_TRUE(quiet.ok);
  EXPECT_EQ(quiet.result, "");
  HandlerOutcome failed = site_.host().run(1, Event::kAppend, context, "bad");
  EXPECT_FALSE(failed.ok);
  EXPECT_EQ(failed.result, "oops");
  EXPECT_EQ(run_ok(1, Event::kAppend, "hi"), "HI");
}

TEST_F(Host, AnEventWithoutHandlerDoesNotRun) {
  load_ok(1, "set x 1");
  HandlerOutcome outcome = site_.run(1, Event::kAppend, "m");
  EXPECT_FALSE(outcome.ran);
  EXPECT_FALSE(site_.run(99, Event::kAppend, "m").ran);
  EXPECT_FALSE(site_.host().has_handler(99, Event::kAppend));
}

TEST_F(Host, AgentsNeverShareUnqualifiedVariables) {
  // Globals of these names exist: Tcl 8.6 alone would make both agents write ::count.
  site_.eval("set ::count 100; set ::secret global; set ::counter(x) 7");
  const std::string body = "set count 0; on_stream_append {incr count; incr counter($argv)}";
  load_ok(1, body);
  load_ok(2, body);
  EXPECT_EQ(run_ok(1, Event::kAppend, "x"), "1");
  run_ok(1, Event::kAppend, "x");
  run_ok(1, Event::kAppend, "x");
  EXPECT_EQ(run_ok(2, Event::kAppend, "x"), "1");
  EXPECT_EQ(site_.eval("set ::mstream::agent::1::count"), "3");
  EXPECT_EQ(site_.eval("set ::mstream::agent::2::count"), "1");
  EXPECT_EQ(site_.eval("set ::mstream::agent::1::counter(x)"), "3");
  EXPECT_EQ(site_.eval("list $::count $::counter(x)"), "100 7");

  load_ok(3, "set secret mine");
  load_ok(4, "on_stream_append {list [info exists secret] [info exists count]}");
  EXPECT_EQ(run_ok(4, Event::kAppend), "0 0");
  EXPECT_EQ(site_.eval("list $::mstream::agent::3::secret $::secret"), "mine global");
}

TEST_F(Host, QualifiedGlobalsAndTclsOwnStillWork) {
  site_.eval("set ::shared 5");
  load_ok(1, "on_stream_append {incr ::shared; list $tcl_version [info exists env] $::shared}");
  EXPECT_EQ(run_ok(1, Event::kAppend), std::string(TCL_VERSION) + " 1 6");
}

// An agent's code reads as if it had an interpreter of its own (AGNI gave it one): `global` in
// its procedures means the agent's globals, not the shared interpreter's.
TEST_F(Host, GlobalInAnAgentProcedureMeansTheAgentsVariable) {
  site_.eval("set ::count 100");
  const std::string body =
      "set count 0\n"
      "proc bump {} { global count; incr count }\n"
      "proc real {} { global ::count; set count }\n"
      "on_stream_append { global count; bump; list $count [real] }";
  load_ok(1, body);
  load_ok(2, body);
  EXPECT_EQ(run_ok(1, Event::kAppend), "1 100");
  EXPECT_EQ(run_ok(1, Event::kAppend), "2 100");
  EXPECT_EQ(run_ok(2, Event::kAppend), "1 100");
  EXPECT_EQ(site_.eval("set ::count"), "100");
}

TEST_F(Host, ProcedureLocalsStayLocal) {
  site_.eval("set ::tmp 99");
  load_ok(1,
          "set total 0\n"
          "proc add {n} { set name tmp; set $name $n; variable total; incr total $tmp; "
          "return $tmp }\n"
          "on_stream_append { add $argv }");
  EXPECT_EQ(run_ok(1, Event::kAppend, "5"), "5");
  EXPECT_EQ(run_ok(1, Event::kAppend, "2"), "2");
  EXPECT_EQ(site_.eval("set ::mstream::agent::1::total"), "7");
  EXPECT_EQ(site_.eval("info exists ::mstream::agent::1::tmp"), "0");
  EXPECT_EQ(site_.eval("set ::tmp"), "99");
}

TEST_F(Host, HandlerErrorsCarryErrorInfo) {
  load_ok(1, "proc inner {} { error boom }\non_stream_append { inner }");
  HandlerOutcome outcome = site_.run(1, Event::kAppend, "m");
  EXPECT_TRUE(outcome.ran);
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.result, "boom");
  EXPECT_NE(outcome.error_info.find("boom\n    while executing\n\"error boom"), std::string::npos)
      << outcome.error_info;
  EXPECT_NE(outcome.error_info.find("(procedure \"inner\" line 1)"), std::string::npos)
      << outcome.error_info;
  // The agent is still there and runs again.
  EXPECT_TRUE(site_.host().has_agent(1));
  EXPECT_FALSE(site_.run(1, Event::kAppend, "m").ok);

  load_ok(2, "on_stream_append { break }");
  outcome = site_.run(2, Event::kAppend);
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.result, "invoked \"break\" outside of a loop");

  load_ok(3, "on_stream_append { return -code error nope }");
  outcome = site_.run(3, Event::kAppend);
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.result, "nope");
}

TEST_F(Host, AFailedLoadLeavesNothing) {
  std::string info;
  Status status =
      site_.load(1, "set x 1; on_stream_append {y}; error {bad init}", "", "foo", &info);
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(status.message(), "bad init");
  EXPECT_NE(info.find("bad init"), std::string::npos);
  EXPECT_FALSE(site_.host().has_agent(1));
  EXPECT_EQ(site_.host().agent_count(), 0u);
  EXPECT_EQ(site_.eval("namespace exists ::mstream::agent::1"), "0");
  load_ok(1, "set x 2");
  EXPECT_EQ(site_.eval("set ::mstream::agent::1::x"), "2");
  EXPECT_EQ(site_.load(1, "set x 3").code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(site_.eval("set ::mstream::agent::1::x"), "2");
  EXPECT_EQ(site_.load(5, "{unbalanced").code(), Status::Code::kInvalidArgument);
}

TEST_F(Host, AHandlerMayReplaceHandlers) {
  load_ok(1,
          "on_stream_append {\n"
          "  on_stream_append { return second:$argv }\n"
          "  on_stream_relocation { return moved }\n"
          "  return first:$argv\n"
          "}");
  EXPECT_FALSE(site_.host().has_handler(1, Event::kRelocation));
  EXPECT_EQ(run_ok(1, Event::kAppend, "a"), "first:a");
  EXPECT_EQ(run_ok(1, Event::kAppend, "b"), "second:b");
  EXPECT_EQ(run_ok(1, Event::kRelocation), "moved");
  load_ok(2, "on_stream_arrival {return arrived}; on_agent_finalize {on_agent_finalize {}}");
  EXPECT_EQ(run_ok(2, Event::kRelocation), "arrived");
  run_ok(2, Event::kFinalize);  // an empty script removes the handler
  EXPECT_FALSE(site_.host().has_handler(2, Event::kFinalize));
}

TEST_F(Host, IdenticalHandlersOfTwoAgentsStaySeparate) {
  // Tcl shares equal literals; each agent must still run its handler in its own namespace.
  load_ok(1, "set n 10; on_stream_append {incr n}");
  load_ok(2, "set n 20; on_stream_append {incr n}");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(run_ok(1, Event::kAppend), std::to_string(11 + i));
    EXPECT_EQ(run_ok(2, Event::kAppend), std::to_string(21 + i));
  }
}

const char* const kBriefcaseBody =
    "briefcase count counter never\n"
    "set count 0\n"
    "set local here\n"
    "array set counter {S1 0 S2 0}\n"
    "on_stream_append { incr count; incr counter($argv) }\n";

TEST_F(Host, BriefcaseCarriesScalarsAndArrays) {
  load_ok(1, kBriefcaseBody);
  for (const char* sender : {"S1", "S1", "S2", "a b", "{"}) run_ok(1, Event::kAppend, sender);
  site_.eval("set ::mstream::agent::1::local changed");
  std::string saved = site_.host().save_briefcase(1);

  FakeScriptApi other_api;
  Site other(&other_api);
  ASSERT_TRUE(other.load(1, kBriefcaseBody).ok());
  other.run(1, Event::kAppend, "S3");  // only at the target: must be gone after restore
  Status restored = other.host().restore_briefcase(1, saved);
  ASSERT_TRUE(restored.ok()) << restored.to_string();
  EXPECT_EQ(other.eval("set ::mstream::agent::1::count"), "5");
  EXPECT_EQ(other.eval("lsort -stride 2 [array get ::mstream::agent::1::counter]"),
            site_.eval("lsort -stride 2 [array get ::mstream::agent::1::counter]"));
  EXPECT_EQ(other.eval("info exists ::mstream::agent::1::counter(S3)"), "0");
  EXPECT_EQ(other.eval("set ::mstream::agent::1::counter({)"), "1");
  EXPECT_EQ(other.eval("set ::mstream::agent::1::local"), "here");  // not in the briefcase
  EXPECT_EQ(other.eval("info exists ::mstream::agent::1::never"), "0");
  // The restored briefcase travels on whole (array order may differ).
  EXPECT_EQ(other.host().save_briefcase(1).size(), saved.size());
}

TEST_F(Host, BriefcaseKindMayChangeBetweenScalarAndArray) {
  load_ok(1, "briefcase v; set v scalar-value");
  std::string scalar = site_.host().save_briefcase(1);
  load_ok(2, "briefcase v; array set v {k 1}");
  std::string array = site_.host().save_briefcase(2);
  ASSERT_TRUE(site_.host().restore_briefcase(1, array).ok());
  EXPECT_EQ(site_.eval("array get ::mstream::agent::1::v"), "k 1");
  ASSERT_TRUE(site_.host().restore_briefcase(2, scalar).ok());
  EXPECT_EQ(site_.eval("set ::mstream::agent::2::v"), "scalar-value");
  // An empty array still travels as an array.
  load_ok(3, "briefcase e; array set e {}");
  ASSERT_TRUE(site_.host().restore_briefcase(1, site_.host().save_briefcase(3)).ok());
  EXPECT_EQ(site_.eval("array exists ::mstream::agent::1::e"), "1");
}

TEST_F(Host, RestoringAMalformedBriefcaseChangesNothing) {
  load_ok(1, kBriefcaseBody);
  run_ok(1, Event::kAppend, "S1");
  const std::string before = site_.host().save_briefcase(1);
  const std::vector<std::string> bad = {
      "{",
      "count scalar",
      "count bogus 1",
      "a::b scalar 1",
      "::count scalar 1",
      "x(1) scalar 1",
      "{} scalar 1",
      "counter array {1 2 3}",
      "counter array {\"unbalanced}",
      "count scalar 7 counter array {odd}",
      std::string("na\0me scalar 1", 14),
  };
  for (const std::string& saved : bad) {
    Status status = site_.host().restore_briefcase(1, saved);
    EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << saved;
    EXPECT_EQ(site_.host().save_briefcase(1), before) << saved;
  }
  EXPECT_EQ(site_.host().restore_briefcase(42, before).code(), Status::Code::kNotFound);
  EXPECT_TRUE(site_.host().restore_briefcase(1, "").ok());  // nothing to restore

  // Random text made of Tcl's special characters: never a crash, never a half restore.
  std::mt19937 random(4);
  const std::string alphabet = "{}[]$\\\" \t\n;()::abcscalararray012";
  for (int round = 0; round < 3000; ++round) {
    std::string saved;
    int length = std::uniform_int_distribution<int>(0, 40)(random);
    for (int i = 0; i < length; ++i) {
      saved += alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(random)];
    }
    Status status = site_.host().restore_briefcase(1, saved);
    if (!status.ok()) {
      ASSERT_EQ(status.code(), Status::Code::kInvalidArgument) << saved;
    }
  }
  EXPECT_TRUE(site_.host().has_agent(1));
  run_ok(1, Event::kAppend, "S1");
}

TEST_F(Host, DropAgentFreesItsNamespaceAndHandlers) {
  load_ok(1, "set x 1; on_stream_append {incr x}");
  site_.host().drop_agent(1);
  EXPECT_FALSE(site_.host().has_agent(1));
  EXPECT_FALSE(site_.host().has_handler(1, Event::kAppend));
  EXPECT_EQ(site_.host().agent_count(), 0u);
  EXPECT_EQ(site_.eval("namespace exists ::mstream::agent::1"), "0");
  EXPECT_FALSE(site_.run(1, Event::kAppend).ran);
  site_.host().drop_agent(1);  // again: nothing
  load_ok(1, "on_stream_append {info exists x}");
  EXPECT_EQ(run_ok(1, Event::kAppend), "0");
}

TEST_F(Host, LoadingAndDroppingDoesNotLeak) {
  auto cycle = [&](int count) {
    for (int i = 0; i < count; ++i) {
      load_ok(7, "set a 1; array set b {x 1}; on_stream_append {incr a}; briefcase a b");
      run_ok(7, Event::kAppend);
      site_.host().drop_agent(7);
    }
  };
  cycle(500);  // Tcl's allocator caches settle
  std::size_t before = mallinfo2().uordblks;
  cycle(2000);
  std::size_t after = mallinfo2().uordblks;
  EXPECT_LT(after > before ? after - before : 0, 2000u * 64) << "bytes kept per load/drop";
}

TEST_F(Host, AnAgentMayBeDroppedFromItsOwnHandler) {
  load_ok(1, "on_stream_append { stream_append out $argv; set after 1; on_stream_append {x} }");
  api_.on_append = [&](const std::string&, const std::string&) { site_.host().drop_agent(1); };
  HandlerOutcome outcome = site_.run(1, Event::kAppend, "m");
  EXPECT_TRUE(outcome.ok) << outcome.result;
  EXPECT_FALSE(site_.host().has_agent(1));
  EXPECT_EQ(site_.eval("namespace exists ::mstream::agent::1"), "0");
  api_.on_append = nullptr;
  load_ok(1, "set fresh 1; on_stream_append {info exists after}");
  EXPECT_EQ(run_ok(1, Event::kAppend), "0");
}

// A site may run another agent's handler while one runs (e.g. a local append delivered at
// once): each sees its own variables and registers its own handlers.
TEST_F(Host, HandlersMayRunNested) {
  load_ok(1,
          "set who one\n"
          "on_stream_append { stream_append two $argv; list $who [set ::inner] [stream_name] }");
  load_ok(2,
          "set who two\n"
          "on_stream_append { on_stream_relocation {return two-moved}; return inner:$who:$argv }");
  api_.on_append = [&](const std::string&, const std::string& message) {
    HandlerOutcome inner = site_.run(2, Event::kAppend, message, "two", "one");
    site_.eval("set ::inner {" + inner.result + "}");
  };
  EXPECT_EQ(run_ok(1, Event::kAppend, "m", "one"), "one inner:two:m one");
  EXPECT_FALSE(site_.host().has_handler(1, Event::kRelocation));
  EXPECT_TRUE(site_.host().has_handler(2, Event::kRelocation));
  api_.on_append = nullptr;
}

TEST_F(Host, AnAgentDeletingNamespacesDoesNotCrashTheHost) {
  load_ok(1, "on_stream_append {namespace delete [namespace current]}");
  run_ok(1, Event::kAppend);
  HandlerOutcome outcome = site_.run(1, Event::kAppend);
  EXPECT_TRUE(outcome.ran);
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.result, "agent 1 has no namespace any more");
  EXPECT_EQ(site_.host().save_briefcase(1), "");
  site_.host().drop_agent(1);

  load_ok(2, "namespace delete ::mstream::agent");
  EXPECT_EQ(site_.host().restore_briefcase(2, "x scalar 1").code(), Status::Code::kNotFound);
  load_ok(3, "set y 1; on_stream_append {incr y}");
  EXPECT_EQ(run_ok(3, Event::kAppend), "2");
  // A namespace made by a script under the agents' name gives way to the agent.
  site_.eval("namespace eval ::mstream::agent::4 {variable planted 1}");
  load_ok(4, "on_stream_append {info exists planted}");
  EXPECT_EQ(run_ok(4, Event::kAppend), "0");
}

TEST_F(Host, AgentOnlyCommandsNeedARunningAgent) {
  load_ok(1, "on_stream_append {}");
  Evaluated out = testing::evaluate(site_.host().interp(), "on_stream_append {x}");
  EXPECT_EQ(out.code, TCL_ERROR);
  EXPECT_EQ(out.result, "on_stream_append: not inside an agent");
  out = testing::evaluate(site_.host().interp(), "briefcase x");
  EXPECT_EQ(out.result, "briefcase: not inside an agent");
}

// Figure 2 of the paper: the shell script, then foo's and bar's handlers as the sites run them.
TEST_F(Host, PaperFigure2Runs) {
  Tcl_Interp* shell = Tcl_CreateInterp();
  FakeScriptApi shell_api;
  ASSERT_TRUE(install_commands(shell, &shell_api).ok());
  Evaluated script = testing::evaluate(shell, R"(
stream_create bar
stream_create foo
register_agent bar {} {
    on_stream_append {
        puts $argv
        stream_relocate 1 ;#c
    }
    on_stream_relocation {
        set my_loc [stream_location]
        puts "I am at $my_loc" ;#d
    }
}
register_agent foo {} {
    stream_open bar
    on_stream_append {
        stream_append bar $argv ;#b
    }
}
stream_move bar 2
stream_move foo 1
stream_open foo
stream_append foo "Hello world" ;#a
)");
  ASSERT_EQ(script.code, TCL_OK) << script.result;
  Tcl_DeleteInterp(shell);
  ASSERT_EQ(shell_api.registered.size(), 2u);
  EXPECT_EQ(shell_api.calls.back(), "stream_append foo Hello world");

  load_ok(2, shell_api.registered[0].body, shell_api.registered[0].args, "bar");
  load_ok(1, shell_api.registered[1].body, shell_api.registered[1].args, "foo");
  api_.calls.clear();
  run_ok(1, Event::kAppend, "Hello world", "foo", "shell:1");
  EXPECT_EQ(api_.calls, (std::vector<std::string>{"stream_append bar Hello world"}));
  run_ok(2, Event::kAppend, "Hello world", "bar", "foo");
  EXPECT_EQ(api_.calls.back(), "stream_move bar 1");
  run_ok(2, Event::kRelocation, "", "bar", "");
  EXPECT_EQ(api_.written, (std::vector<std::pair<std::string, bool>>{{"Hello world", false},
                                                                     {"I am at 1", false}}));
}

// Figure 6(B) of the paper: the mobile dispatcher M, with find_max written out.
const char* const kDispatcher = R"(
proc find_max {name} {
    upvar $name counts
    set best ""
    set max -1
    foreach key [lsort [array names counts]] {
        if {$counts($key) > $max} { set max $counts($key); set best $key }
    }
    return $best
}
set consumers $argv
foreach consumer $consumers {
    stream_open $consumer                     ;#2
    set counter($consumer) 0                  ;#1
}
set count 0
on_stream_append {
    incr count
    set loc [stream_sender_name]              ;#3
    incr counter($loc)
    foreach stream $consumers {
        stream_append $stream $argv           ;#4
    }
    if { $count == 50 } {
        # find_max finds the max counter value
        set newloc [find_max counter]
        stream_relocate [stream_location $newloc]   ;#5
    }
}
on_stream_relocation {
    foreach consumer $consumers {
        set counter($consumer) 0              ;#6
    }
    set count 0
}
)";

TEST_F(Host, PaperFigure6DispatcherRelocatesAfter50Messages) {
  api_.locations = {{"S1", 1}, {"S2", 2}, {"S3", 3}, {"M", 1}};
  load_ok(9, kDispatcher, "S1 S2 S3", "M");
  EXPECT_EQ(api_.calls,
            (std::vector<std::string>{"stream_open S1", "stream_open S2", "stream_open S3"}));
  api_.calls.clear();
  for (int i = 1; i <= 50; ++i) {
    const char* sender = i % 5 == 0 ? "S1" : (i % 5 == 1 ? "S3" : "S2");  // S2 talks most
    run_ok(9, Event::kAppend, "line " + std::to_string(i), "M", sender);
    if (i < 50) {
      EXPECT_EQ(api_.calls.size(), 3u * i) << "no move before the 50th message";
    }
  }
  EXPECT_EQ(api_.calls[0], "stream_append S1 line 1");
  EXPECT_EQ(api_.calls[2], "stream_append S3 line 1");
  ASSERT_EQ(api_.calls.size(), 150u + 2u);
  EXPECT_EQ(api_.calls[150], "stream_location S2");
  EXPECT_EQ(api_.calls[151], "stream_move M 2");
  EXPECT_EQ(site_.eval("lsort -stride 2 [array get ::mstream::agent::9::counter]"),
            "S1 10 S2 30 S3 10");

  run_ok(9, Event::kRelocation, "", "M", "");
  EXPECT_EQ(site_.eval("lsort -stride 2 [array get ::mstream::agent::9::counter]"),
            "S1 0 S2 0 S3 0");
  EXPECT_EQ(site_.eval("set ::mstream::agent::9::count"), "0");
}

// The project's budget is 64 KB per Tcl agent at a site (DESIGN.md "Threads"). Measured with a
// namespace, a few variables, an array and three handlers, each compiled by one run.
TEST(TclHostCost, AnAgentCostsLessThan64KB) {
  FakeScriptApi api;
  TclHost host(&api);
  HandlerContext context{"s", "shell:1", 0};
  api.handler_context = &context;
  const std::string body =
      "set count 0; set name agent; array set counter {a 1 b 2}; briefcase count counter\n"
      "on_stream_append {incr count; incr counter(a)}\n"
      "on_stream_relocation {set count 0}\n"
      "on_agent_finalize {set done 1}\n";
  auto load_and_run = [&](std::uint64_t agent) {
    ASSERT_TRUE(host.load_agent(agent, "", body, context, nullptr).ok());
    for (Event event : {Event::kAppend, Event::kRelocation, Event::kFinalize}) {
      ASSERT_TRUE(host.run(agent, event, context, "m").ok);
    }
  };
  load_and_run(1'000'000);  // the interpreter's first-use costs are not per agent
  constexpr int kAgents = 1000;
  std::size_t before = mallinfo2().uordblks + mallinfo2().hblkhd;
  for (int i = 0; i < kAgents; ++i) load_and_run(static_cast<std::uint64_t>(i));
  std::size_t after = mallinfo2().uordblks + mallinfo2().hblkhd;
  double per_agent = static_cast<double>(after - before) / kAgents;
  std::printf("[ measure  ] %.0f bytes per Tcl agent (%d agents, 3 handlers each)\n", per_agent,
              kAgents);
  EXPECT_LT(per_agent, 64.0 * 1024);

  // Handler call time, for the report only (timing is not asserted).
  constexpr int kCalls = 200'000;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) (void)host.run(5, Event::kAppend, context, "message");
  double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
      kCalls;
  std::printf("[ measure  ] %.0f ns per append handler call (incr count; incr counter(a))\n", ns);
  api.handler_context = nullptr;
}

}  // namespace
}  // namespace mstream::tcl
