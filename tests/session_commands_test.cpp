// The Tcl commands' errors as a user of `mstream run` sees them (COMMANDS.md: every command
// checks its arguments and raises a Tcl error with a clear message), and how `mstream run`
// itself ends: exit codes, the error with its line, the script's arguments. A script catches
// most errors and prints them, so one session checks many; the uncaught form is checked apart.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "e2e_support.hpp"

namespace mstream::e2e {
namespace {

class Commands : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(dir_.ok()); }
  // Runs `script`, which must succeed, and returns what the shell printed.
  std::vector<std::string> shell_output_of(const std::string& script,
                                           const std::vector<std::string>& run_args = {}) {
    const CommandResult r = run_script(dir_, script, run_args);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    return shell_lines(r.out);
  }
  TempDir dir_;
};

// Prints the message of each command's error, one line per command.
constexpr const char* kCreateUsage =
    "wrong # args: should be \"stream_create stream ?-temp? ?-durable? ?-failure_manager site? "
    "?-site site?\"";

constexpr const char* kPrintErrors = R"(
proc try_each {commands} {
  foreach cmd $commands {
    if {[catch $cmd msg]} { puts $msg } else { puts "no error from: $cmd" }
  }
}
)";

TEST_F(Commands, WrongNumberOfArgumentsNamesTheUsage) {
  const std::string script = std::string(kPrintErrors) + R"(
try_each {
  {stream_create} {stream_open} {stream_open a b} {stream_append a} {stream_append a b -sync c}
  {stream_move a} {stream_location a b} {stream_destroy} {stream_exists} {list_streams a b}
  {stream_creator} {register_agent a b} {register_agent a b c d} {agent_exit x} {my_id x}
  {site_list x} {get_peer_map x} {get_peer_addr} {stream_relocate} {stream_name x}
  {stream_sender_name x} {on_stream_append} {on_stream_relocation} {on_stream_arrival}
  {on_stream_failure} {on_agent_finalize} {briefcase}
}
)";
  const std::vector<std::string> expected = {
      kCreateUsage,
      R"(wrong # args: should be "stream_open stream")",
      R"(wrong # args: should be "stream_open stream")",
      R"(wrong # args: should be "stream_append handle message ?-sync?")",
      R"(wrong # args: should be "stream_append handle message ?-sync?")",
      R"(wrong # args: should be "stream_move stream site")",
      R"(wrong # args: should be "stream_location ?stream?")",
      R"(wrong # args: should be "stream_destroy stream")",
      R"(wrong # args: should be "stream_exists stream")",
      R"(wrong # args: should be "list_streams ?pattern?")",
      R"(wrong # args: should be "stream_creator stream")",
      R"(wrong # args: should be "register_agent stream args {body | -cpp type} ?-controller?")",
      R"(wrong # args: should be "register_agent stream args {body | -cpp type} ?-controller?")",
      R"(wrong # args: should be "agent_exit")",
      R"(wrong # args: should be "my_id")",
      R"(wrong # args: should be "site_list")",
      R"(wrong # args: should be "get_peer_map")",
      R"(wrong # args: should be "get_peer_addr site")",
      R"(wrong # args: should be "stream_relocate site")",
      R"(wrong # args: should be "stream_name")",
      R"(wrong # args: should be "stream_sender_name")",
      R"(wrong # args: should be "on_stream_append script")",
      R"(wrong # args: should be "on_stream_relocation script")",
      R"(wrong # args: should be "on_stream_arrival script")",
      R"(wrong # args: should be "on_stream_failure script")",
      R"(wrong # args: should be "on_agent_finalize script")",
      R"(wrong # args: should be "briefcase var ?var ...?")",
  };
  EXPECT_EQ(shell_output_of(script), expected);
}

TEST_F(Commands, UnknownStreamsSitesAndOptionsAreNamedInTheError) {
  const std::string script = std::string(kPrintErrors) + R"(
stream_create foo -site 1
try_each {
  {stream_open nosuch} {stream_append nosuch hi} {stream_append nosuch hi -sync}
  {stream_move nosuch 1} {stream_location nosuch} {stream_destroy nosuch}
  {stream_creator nosuch} {register_agent nosuch {} {}}
  {stream_move foo 9} {stream_create bar -site 9} {get_peer_addr 9}
  {stream_create foo} {stream_create foo -site 2}
  {stream_create bar -bogus} {stream_append foo hi -async}
  {stream_create bar -site x} {stream_create bar -site -1} {stream_move foo two}
  {stream_create bar -site} {stream_create bar -failure_manager}
}
puts [stream_exists nosuch]
puts [stream_exists bar]
)";
  const std::vector<std::string> expected = {
      R"(no such stream "nosuch")",
      R"(no such stream "nosuch")",
      R"(no such stream "nosuch")",
      R"(no such stream "nosuch")",
      R"(no such stream "nosuch")",
      R"(no such stream "nosuch")",
      R"(no such stream "nosuch")",
      R"(no such stream "nosuch")",
      "no such site 9",
      "no such site 9",
      "no such site 9",
      R"(stream "foo" exists)",
      R"(stream "foo" exists)",
      R"(bad option "-bogus": must be -temp, -durable, -failure_manager or -site)",
      R"(bad option "-async": must be -sync)",
      R"(expected site id but got "x")",
      R"(expected site id but got "-1")",
      R"(expected site id but got "two")",
      kCreateUsage,
      kCreateUsage,
      "0",
      "0",  // no failed create left a stream behind
  };
  EXPECT_EQ(shell_output_of(script), expected);
}

TEST_F(Commands, HandlerOnlyCommandsRefuseAShell) {
  const std::string script = std::string(kPrintErrors) + R"(
try_each {
  {stream_location} {agent_exit} {stream_relocate 1} {stream_name} {stream_sender_name}
  {on_stream_append {}} {on_stream_relocation {}} {on_agent_finalize {}} {briefcase x}
}
)";
  const std::vector<std::string> expected = {
      "stream_location: no stream given and not inside a handler",
      "agent_exit: not in a handler",
      "stream_relocate: not inside a handler",
      "stream_name: not inside a handler",
      "stream_sender_name: not inside a handler",
      "on_stream_append: not inside an agent",
      "on_stream_relocation: not inside an agent",
      "on_agent_finalize: not inside an agent",
      "briefcase: not inside an agent",
  };
  EXPECT_EQ(shell_output_of(script), expected);
}

TEST_F(Commands, ErrorsInsideAHandlerReachTheHandler) {
  // The handler catches each error and returns the messages, which -sync hands back.
  const std::string script = R"(
stream_create r -site 1
stream_create other -site 2
register_agent r {} {
  on_stream_append {
    set out {}
    foreach cmd {
      {stream_relocate 9} {stream_relocate} {stream_relocate x}
      {stream_move nosuch 1} {stream_move other 9} {stream_append nosuch hi}
      {stream_append other hi -sync} {stream_open nosuch} {stream_create other}
      {stream_destroy nosuch} {register_agent nosuch {} {}} {stream_location nosuch}
      {get_peer_addr 9} {on_stream_append} {briefcase a(1)} {briefcase ::x}
    } {
      if {[catch $cmd msg]} { lappend out $msg } else { lappend out "no error from: $cmd" }
    }
    return $out
  }
}
foreach m [lindex [stream_append r go -sync] 0] { puts $m }
puts "r is at [stream_location r]"
)";
  const std::vector<std::string> expected = {
      "no such site 9",
      R"(wrong # args: should be "stream_relocate site")",
      R"(expected site id but got "x")",
      R"(no such stream "nosuch")",
      "no such site 9",
      R"(no such stream "nosuch")",
      "stream_append -sync is not available in a handler: waiting there would stall every "
      "stream of the site",
      R"(no such stream "nosuch")",
      R"(stream "other" exists)",
      R"(no such stream "nosuch")",
      R"(no such stream "nosuch")",
      R"(no such stream "nosuch")",
      "no such site 9",
      R"(wrong # args: should be "on_stream_append script")",
      "bad briefcase variable \"a(1)\": must be a simple variable name",
      R"(bad briefcase variable "::x": must be a simple variable name)",
      "r is at 1",
  };
  EXPECT_EQ(shell_output_of(script), expected);
}

TEST_F(Commands, HandlerQueriesDescribeTheHandlersStreamAndSite) {
  const std::string script = R"(
stream_create r -site 2
stream_create s -site 3
register_agent r {} {
  on_stream_append {
    if {$argv eq "from s"} { puts "sender [stream_sender_name]" }
    return [list [stream_name] [stream_sender_name] [my_id] [stream_location] \
                 [stream_location s] [site_list] [stream_exists s] [stream_exists nosuch]]
  }
}
register_agent s {} { on_stream_append { stream_append r "from s" } }
stream_append s go
set shell_view [lindex [stream_append r hi -sync] 0]
puts [lindex $shell_view 0]
puts [string match shell:* [lindex $shell_view 1]]
puts [lrange $shell_view 2 end]
puts [my_id]
puts [site_list]
puts [list_streams {[rs]}]
puts [llength [get_peer_map]]
)";
  const std::vector<std::string> expected = {
      "r", "1", "2 2 3 {0 1 2 3} 1 0", "0", "0 1 2 3", "{r 2} {s 3}", "4",
  };
  const CommandResult r = run_script(dir_, script);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(shell_lines(r.out), expected);
  EXPECT_EQ(site_lines(r.out, 2), std::vector<std::string>{"sender s"});
}

// Finding E2E-5 (/tmp/e2e-findings.md): list_streams lists no system stream, though
// COMMANDS.md says they are included (e.g. /system/site/3).
TEST_F(Commands, ListStreamsIncludesSystemStreams) {
  const std::vector<std::string> lines = shell_output_of(R"(stream_create a -site 1
puts [list_streams]
puts [list_streams /system/*]
puts [stream_exists /system/site/2]
puts [stream_location /system/site/3]
puts [stream_creator /system/site/1]
puts [stream_exists /system/site/9]
puts [stream_exists /system/site/02]
)");
  EXPECT_EQ(lines,
            (std::vector<std::string>{"{/system/site/0 0} {/system/site/1 1} {/system/site/2 2} "
                                      "{/system/site/3 3} {a 1}",
                                      "{/system/site/0 0} {/system/site/1 1} {/system/site/2 2} "
                                      "{/system/site/3 3}",
                                      "1", "3", "1", "0", "0"}));
}

// No script may use a system stream as its own: each command says so, and the session goes on.
TEST_F(Commands, SystemStreamsAreRefusedToEveryCommandThatWouldChangeOrUseThem) {
  const std::vector<std::string> lines = shell_output_of(R"(
foreach cmd {
  {stream_create /system/site/7}
  {stream_create /system/mine}
  {stream_open /system/site/1}
  {stream_append /system/site/1 hello}
  {stream_move /system/site/1 2}
  {stream_destroy /system/site/1}
  {register_agent /system/site/1 {} {}}
} {
  catch $cmd msg opts
  puts "[lindex [dict get $opts -errorcode] 1]: $msg"
}
stream_create b -site 2
register_agent b {} {
  on_stream_append {
    catch {stream_append /system/site/1 x} msg
    return $msg
  }
}
puts [lindex [stream_append b go -sync] 0]
)");
  const std::string denied = "permission denied: permission denied: ";
  EXPECT_EQ(lines,
            (std::vector<std::string>{denied + "\"/system/site/7\" is a system stream",
                                      denied + "\"/system/mine\" is a system stream",
                                      denied + "\"/system/site/1\" is a system stream",
                                      denied + "\"/system/site/1\" is a system stream",
                                      denied + "\"/system/site/1\" is a system stream",
                                      denied + "\"/system/site/1\" is a system stream",
                                      denied + "\"/system/site/1\" is a system stream",
                                      "permission denied: \"/system/site/1\" is a system stream"}));
}

TEST_F(Commands, UncaughtErrorExitsNonZeroWithTheMessageAndItsLine) {
  const CommandResult r = run_script(dir_, R"(stream_create foo -site 1
puts "before the error"
stream_move foo 9
puts "after the error"
)");
  EXPECT_TRUE(r.failed()) << r.describe();
  EXPECT_EQ(r.lines(), std::vector<std::string>{"before the error"});
  EXPECT_TRUE(contains(r.err, "mstream run: error in test.tcl: no such site 9\n")) << r.err;
  EXPECT_TRUE(contains(r.err, "    while executing\n\"stream_move foo 9\"\n")) << r.err;
  EXPECT_TRUE(contains(r.err, "(file \"test.tcl\" line 3)")) << r.err;
}

TEST_F(Commands, ErrorInAProcNamesTheProcAndTheCallersLine) {
  const CommandResult r = run_script(dir_, R"(proc place {name} {
  stream_create $name
  stream_move $name 7
}

place foo
)");
  EXPECT_TRUE(r.failed()) << r.describe();
  EXPECT_TRUE(contains(r.err, "error in test.tcl: no such site 7")) << r.err;
  EXPECT_TRUE(contains(r.err, "(procedure \"place\" line 3)")) << r.err;
  EXPECT_TRUE(contains(r.err, "(file \"test.tcl\" line 6)")) << r.err;
}

TEST_F(Commands, WrongArgumentsUncaughtAreReportedWithTheirLine) {
  const CommandResult r = run_script(dir_, "\n\nstream_append onlyone\n");
  EXPECT_TRUE(r.failed()) << r.describe();
  EXPECT_TRUE(contains(
      r.err,
      R"(error in test.tcl: wrong # args: should be "stream_append handle message ?-sync?")"))
      << r.err;
  EXPECT_TRUE(contains(r.err, "(file \"test.tcl\" line 3)")) << r.err;
}

TEST_F(Commands, SuccessfulScriptExitsZeroWithItsLinesUnprefixed) {
  const CommandResult r = run_script(dir_, "puts hello\nputs -nonewline \"a \"\nputs b\n");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.lines(), (std::vector<std::string>{"hello", "a b"}));
  EXPECT_EQ(r.err, "");
}

TEST_F(Commands, ScriptArgumentsReachArgv) {
  const CommandResult r =
      run_script(dir_, "puts $argc\nputs $argv0\nforeach a $argv { puts <$a> }\n", {},
                 {"one", "two words", "-x"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.lines(), (std::vector<std::string>{"3", "test.tcl", "<one>", "<two words>", "<-x>"}));
}

TEST_F(Commands, RunOfAMissingScriptExitsTwo) {
  CommandResult r = run_mstream(dir_, {"run", "nosuch.tcl"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_TRUE(contains(r.err, "mstream run: cannot read nosuch.tcl")) << r.err;
  r = run_mstream(dir_, {"run"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_TRUE(contains(r.err, "missing SCRIPT")) << r.err;
}

TEST_F(Commands, RunStartsTheRequestedNumberOfSites) {
  EXPECT_EQ(shell_output_of("puts [site_list]\n", {"--sites", "2"}),
            std::vector<std::string>{"0 1 2"});
  EXPECT_EQ(shell_output_of("puts [site_list]\n"), std::vector<std::string>{"0 1 2 3"});
}

}  // namespace
}  // namespace mstream::e2e
