// The mstream script commands in a shell interpreter (install_commands), against a fake api:
// argument checking and its exact messages, results, error mapping and puts routing.

#include <gtest/gtest.h>
#include <tcl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tcl/tcl_host.hpp"
#include "tcl_fake_script_api.hpp"

namespace mstream::tcl {
namespace {

using testing::Evaluated;
using testing::FakeScriptApi;

class ShellCommands : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { Tcl_FindExecutable(nullptr); }
  void SetUp() override {
    interp_ = Tcl_CreateInterp();
    ASSERT_TRUE(install_commands(interp_, &api_).ok());
  }
  void TearDown() override { Tcl_DeleteInterp(interp_); }

  Evaluated eval(const std::string& script) { return testing::evaluate(interp_, script); }
  std::string ok(const std::string& script) {
    Evaluated out = eval(script);
    EXPECT_EQ(out.code, TCL_OK) << script << " -> " << out.result;
    return out.result;
  }
  // The error message of `script`, which must fail.
  std::string error(const std::string& script) {
    Evaluated out = eval(script);
    EXPECT_EQ(out.code, TCL_ERROR) << script << " -> " << out.result;
    last_error_code_ = out.error_code;
    return out.result;
  }

  FakeScriptApi api_;
  Tcl_Interp* interp_ = nullptr;
  std::string last_error_code_;
};

TEST_F(ShellCommands, WrongArgumentCountsNameTheUsage) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"stream_create",
       "stream_create stream ?-temp? ?-durable? ?-failure_manager site? ?-site site?"},
      {"stream_create foo -site",
       "stream_create stream ?-temp? ?-durable? ?-failure_manager site? ?-site site?"},
      {"stream_open", "stream_open stream"},
      {"stream_open a b", "stream_open stream"},
      {"stream_append foo", "stream_append handle message ?-sync?"},
      {"stream_append foo a -sync x", "stream_append handle message ?-sync?"},
      {"stream_move foo", "stream_move stream site"},
      {"stream_move foo 1 2", "stream_move stream site"},
      {"stream_location a b", "stream_location ?stream?"},
      {"stream_destroy", "stream_destroy stream"},
      {"stream_exists", "stream_exists stream"},
      {"list_streams a b", "list_streams ?pattern?"},
      {"stream_creator", "stream_creator stream"},
      {"register_agent foo {}", "register_agent stream args {body | -cpp type} ?-controller?"},
      {"register_agent foo {} body extra",
       "register_agent stream args {body | -cpp type} ?-controller?"},
      {"agent_exit now", "agent_exit"},
      {"my_id 1", "my_id"},
      {"site_list 1", "site_list"},
      {"get_peer_map 1", "get_peer_map"},
      {"get_peer_addr", "get_peer_addr site"},
      {"stream_relocate", "stream_relocate site"},
      {"stream_name x", "stream_name"},
      {"stream_sender_name x", "stream_sender_name"},
      {"on_stream_append", "on_stream_append script"},
      {"on_stream_relocation a b", "on_stream_relocation script"},
      {"on_stream_arrival", "on_stream_arrival script"},
      {"on_stream_failure", "on_stream_failure script"},
      {"on_agent_finalize", "on_agent_finalize script"},
      {"briefcase", "briefcase var ?var ...?"},
  };
  for (const auto& [script, usage] : cases) {
    EXPECT_EQ(error(script), "wrong # args: should be \"" + usage + "\"") << script;
    EXPECT_EQ(last_error_code_, "TCL WRONGARGS") << script;
  }
  EXPECT_TRUE(api_.calls.empty());
}

TEST_F(ShellCommands, SiteIdsMustBeNonNegativeIntegers) {
  EXPECT_EQ(error("stream_move foo x"), "expected site id but got \"x\"");
  EXPECT_EQ(last_error_code_, "MSTREAM {invalid argument}");
  EXPECT_EQ(error("stream_move foo -1"), "expected site id but got \"-1\"");
  EXPECT_EQ(error("stream_move foo 4294967296"), "expected site id but got \"4294967296\"");
  EXPECT_EQ(error("stream_move foo 1.5"), "expected site id but got \"1.5\"");
  EXPECT_EQ(error("get_peer_addr {}"), "expected site id but got \"\"");
  EXPECT_EQ(error("stream_relocate x"), "expected site id but got \"x\"");
  EXPECT_EQ(error("stream_create foo -site x"), "expected site id but got \"x\"");
  EXPECT_EQ(error("stream_create foo -failure_manager -2"), "expected site id but got \"-2\"");
  EXPECT_TRUE(api_.calls.empty());
  EXPECT_EQ(ok("stream_move foo 4294967295"), "4294967295");
}

TEST_F(ShellCommands, StreamCreatePassesItsOptions) {
  EXPECT_EQ(ok("stream_create foo"), "foo");
  EXPECT_FALSE(api_.last_create.temp);
  EXPECT_FALSE(api_.last_create.site.has_value());
  EXPECT_EQ(ok("stream_create bar -temp -durable -failure_manager 3 -site 2"), "bar");
  EXPECT_TRUE(api_.last_create.temp);
  EXPECT_TRUE(api_.last_create.durable);
  EXPECT_EQ(api_.last_create.failure_manager, SiteNumber{3});
  EXPECT_EQ(api_.last_create.site, SiteNumber{2});
  EXPECT_EQ(error("stream_create baz -foo"),
            "bad option \"-foo\": must be -temp, -durable, -failure_manager or -site");
  EXPECT_EQ(last_error_code_, "TCL LOOKUP INDEX option -foo");
  EXPECT_EQ(error("stream_create foo"), "stream \"foo\" exists");
  EXPECT_EQ(last_error_code_, "MSTREAM {already exists}");
}

TEST_F(ShellCommands, StreamAppendIsAsyncUnlessSync) {
  api_.append_result = "{handled it}";
  EXPECT_EQ(ok("stream_append foo {hello world}"), "");
  EXPECT_EQ(ok("stream_append foo hi -sync"), "{handled it}");
  EXPECT_EQ(error("stream_append foo hi -async"), "bad option \"-async\": must be -sync");
  EXPECT_EQ(api_.calls, (std::vector<std::string>{"stream_append foo hello world",
                                                  "stream_append foo hi -sync"}));
}

// Issue 18: a -sync append whose handler failed returned the handler's message as if it
// were a result; it raises, naming stream, agent and site, with the others' results kept.
TEST_F(ShellCommands, SyncAppendRaisesTheFailedHandlersErrorWithTheOtherResults) {
  api_.append_failure = HandlerFailure{"foo", 2, 1, "append", "invalid command name \"nope\""};
  api_.append_result = "1 {first agent} 3 third";
  EXPECT_EQ(error("stream_append foo hi -sync"),
            "error in append handler: stream \"foo\", agent 2, site 1: invalid command name "
            "\"nope\"");
  EXPECT_EQ(last_error_code_, "MSTREAM HANDLER foo 2 1");
  EXPECT_EQ(ok("catch {stream_append foo hi -sync} msg opts; dict get $opts -results"),
            "1 {first agent} 3 third");
  // Inside a procedure too: the error is the command's, not a `return` from the procedure.
  EXPECT_EQ(ok("proc p {} { stream_append foo hi -sync; return reached }; "
               "list [catch p msg opts] [dict get $opts -errorcode]"),
            "1 {MSTREAM HANDLER foo 2 1}");
  EXPECT_EQ(ok("stream_append foo hi"), "");  // without -sync nothing waits, nothing raises
}

TEST_F(ShellCommands, MoveRaisesWhenAHandlerFailedOnArrivalAndSaysWhereTheStreamIs) {
  api_.move_failure = HandlerFailure{"q", 4, 2, "relocation", "cannot settle"};
  EXPECT_EQ(error("stream_move q 2"),
            "stream \"q\" is at site 2, but the relocation handler of agent 4 failed there: "
            "cannot settle");
  EXPECT_EQ(last_error_code_, "MSTREAM HANDLER q 4 2");
  EXPECT_EQ(api_.locations["q"], SiteNumber{2});
  api_.move_failure.reset();
  EXPECT_EQ(ok("stream_move q 3"), "3");
}

TEST_F(ShellCommands, ApiErrorsKeepTheirMessageAndCode) {
  EXPECT_EQ(error("stream_open missing"), "no such stream \"missing\"");
  EXPECT_EQ(last_error_code_, "MSTREAM {not found}");
  EXPECT_EQ(error("stream_append missing x"), "no such stream \"missing\"");
  EXPECT_EQ(error("stream_move missing 1"), "no such stream \"missing\"");
  EXPECT_EQ(error("stream_location missing"), "no such stream \"missing\"");
  EXPECT_EQ(error("stream_destroy missing"), "no such stream \"missing\"");
  EXPECT_EQ(error("stream_creator missing"), "no such stream \"missing\"");
  EXPECT_EQ(error("register_agent missing {} {}"), "no such stream \"missing\"");
  EXPECT_EQ(error("agent_exit"), "agent_exit: not inside a handler");
  // And a script can catch them like any Tcl error.
  EXPECT_EQ(ok("catch {stream_open missing} msg opts; list $msg [dict get $opts -errorcode]"),
            "{no such stream \"missing\"} {MSTREAM {not found}}");
}

TEST_F(ShellCommands, ExceptionsStopAtTheCommandBoundary) {
  EXPECT_EQ(error("stream_open throwing"), "internal error: fake failure");
  EXPECT_EQ(last_error_code_, "MSTREAM internal");
  EXPECT_EQ(error("stream_exists throwing"), "internal error: fake failure");
  EXPECT_EQ(ok("stream_exists foo"), "1");  // the interpreter goes on
}

TEST_F(ShellCommands, QueriesReturnTclValues) {
  api_.streams = {{"foo", 1}, {"/system/site/3", 3}, {"fox", 2}};
  api_.peers = {{0, "127.0.0.1:7000", true}, {3, "10.0.0.3:7003", false}};
  EXPECT_EQ(ok("stream_open foo"), "foo");
  EXPECT_EQ(ok("stream_exists foo"), "1");
  EXPECT_EQ(ok("stream_exists missing"), "0");
  EXPECT_EQ(ok("list_streams"), "{foo 1} {/system/site/3 3} {fox 2}");
  EXPECT_EQ(ok("list_streams fo*"), "{foo 1} {fox 2}");
  EXPECT_EQ(ok("list_streams /system/*"), "{/system/site/3 3}");
  EXPECT_EQ(ok("list_streams nothing*"), "");
  EXPECT_EQ(ok("stream_creator foo"), "2");
  EXPECT_EQ(ok("stream_destroy foo"), "");
  EXPECT_EQ(ok("my_id"), "1");
  EXPECT_EQ(ok("site_list"), "0 1 2 3");
  EXPECT_EQ(ok("get_peer_map"), "{0 127.0.0.1:7000 1} {3 10.0.0.3:7003 0}");
  EXPECT_EQ(ok("get_peer_addr 3"), "10.0.0.3:7003");
  EXPECT_EQ(error("get_peer_addr 9"), "no such site 9");
  EXPECT_EQ(last_error_code_, "MSTREAM {not found}");
  api_.locations["foo"] = 3;
  EXPECT_EQ(ok("stream_location foo"), "3");
  EXPECT_EQ(ok("stream_move foo 2"), "2");
  EXPECT_EQ(ok("expr {[stream_location foo] + 1}"), "3");
}

TEST_F(ShellCommands, RegisterAgentTakesABodyOrACppType) {
  EXPECT_EQ(ok("register_agent foo {a b} {on_stream_append {puts $argv}}"), "17");
  EXPECT_EQ(ok("register_agent foo {} -cpp Echo"), "17");
  EXPECT_EQ(api_.calls,
            (std::vector<std::string>{"register_agent foo {a b} {on_stream_append {puts $argv}} {}",
                                      "register_agent foo {} {} {Echo}"}));
  EXPECT_EQ(error("register_agent foo {} -cpp {}"), "register_agent: empty C++ agent type");
}

TEST_F(ShellCommands, HandlerOnlyCommandsFailInAShell) {
  EXPECT_EQ(error("stream_relocate 1"), "stream_relocate: not inside a handler");
  EXPECT_EQ(last_error_code_, "MSTREAM {invalid argument}");
  EXPECT_EQ(error("stream_name"), "stream_name: not inside a handler");
  EXPECT_EQ(error("stream_sender_name"), "stream_sender_name: not inside a handler");
  EXPECT_EQ(error("stream_location"), "stream_location: no stream given and not inside a handler");
  EXPECT_TRUE(api_.calls.empty());
}

TEST_F(ShellCommands, HandlerCommandsUseTheApiContext) {
  HandlerContext context{"M", "S2", 5};
  api_.handler_context = &context;
  api_.locations["M"] = 1;
  EXPECT_EQ(ok("stream_name"), "M");
  EXPECT_EQ(ok("stream_sender_name"), "S2");
  EXPECT_EQ(ok("stream_location"), "1");
  EXPECT_EQ(ok("stream_relocate 3"), "3");
  EXPECT_EQ(api_.calls, (std::vector<std::string>{"stream_location M", "stream_move M 3"}));
}

TEST_F(ShellCommands, AgentOnlyCommandsFailOutsideAnAgent) {
  for (const char* command : {"on_stream_append", "on_stream_relocation", "on_stream_arrival",
                              "on_stream_failure", "on_agent_finalize"}) {
    EXPECT_EQ(error(std::string(command) + " {puts hi}"),
              std::string(command) + ": not inside an agent");
  }
  EXPECT_EQ(error("briefcase a b"), "briefcase: not inside an agent");
  EXPECT_EQ(error("briefcase a::b"),
            "bad briefcase variable \"a::b\": must be a simple variable name");
  EXPECT_EQ(error("briefcase ok a(1)"),
            "bad briefcase variable \"a(1)\": must be a simple variable name");
}

TEST_F(ShellCommands, PutsToStdoutGoesToTheApi) {
  ok("puts hello");
  ok("puts stdout {two words}");
  ok("puts -nonewline partial");
  ok("puts -nonewline stdout more");
  ok("puts stdout old nonewline");
  EXPECT_EQ(api_.written, (std::vector<std::pair<std::string, bool>>{{"hello", false},
                                                                     {"two words", false},
                                                                     {"partial", true},
                                                                     {"more", true},
                                                                     {"old", true}}));
}

TEST_F(ShellCommands, PutsToOtherChannelsIsTclsOwn) {
  std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("mstream_tcl_puts_" + std::to_string(getpid()));
  ok("set f [open {" + file.string() + "} w]");
  ok("puts $f first; puts -nonewline $f second; close $f");
  std::ifstream in(file);
  std::stringstream contents;
  contents << in.rdbuf();
  EXPECT_EQ(contents.str(), "first\nsecond");
  std::filesystem::remove(file);
  EXPECT_TRUE(api_.written.empty());
  EXPECT_EQ(error("puts nosuch text"), "can not find channel named \"nosuch\"");
  EXPECT_EQ(error("puts"), "wrong # args: should be \"puts ?-nonewline? ?channelId? string\"");
}

TEST_F(ShellCommands, InstallingTwiceKeepsTheBuiltinPuts) {
  ASSERT_TRUE(install_commands(interp_, &api_).ok());
  ok("puts again");
  EXPECT_EQ(api_.written.size(), 1u);
  EXPECT_EQ(error("puts nosuch text"), "can not find channel named \"nosuch\"");
  EXPECT_FALSE(install_commands(nullptr, &api_).ok());
  EXPECT_FALSE(install_commands(interp_, nullptr).ok());
}

}  // namespace
}  // namespace mstream::tcl
