// The sandbox (COMMANDS.md, Sandbox) as a user of `mstream run` meets it: a hostile agent's
// handler, on a real site daemon, cannot open files or sockets, run programs, load libraries,
// make interpreters, take unbounded memory or hold its worker for ever. Each attack is an
// error reported to the shell with what stopped it, the message counts as handled, and the
// stream and its site go on serving.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "e2e_support.hpp"

namespace mstream::e2e {
namespace {

TEST(SandboxedAgents, EveryAttackIsStoppedWithAClearErrorAndTheStreamGoesOn) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  // The victim's agent runs whatever it is sent: the attacks come as messages.
  const CommandResult r = run_script(dir, R"T(
stream_create victim -site 1
stream_create bystander -site 1
register_agent victim {} {
  set runs 0
  on_stream_append {
    incr runs
    if {$argv eq "count"} { return $runs }
    eval $argv
  }
}
register_agent bystander {} { on_stream_append { return "bystander: $argv" } }
foreach attack {
  {open /etc/passwd}
  {socket 127.0.0.1 22}
  {exec /bin/true}
  {load /lib/x86_64-linux-gnu/libc.so.6}
  {interp create}
  {while 1 {}}
  {string repeat x 1000000000}
} { stream_append victim $attack }
puts [lindex [stream_append bystander hello -sync] 0]
puts "victim handled: [lindex [stream_append victim count -sync] 0]"
)T",
                                     {"--handler-time-limit", "300"});
  EXPECT_EQ(r.exit_code, 3) << r.describe();  // each attack's error was reported
  EXPECT_EQ(shell_lines(r.out),
            (std::vector<std::string>{"bystander: hello", "victim handled: 8"}))
      << r.describe();
  const std::string prefix = "error in append handler: stream \"victim\", agent 1, site 1: ";
  for (const char* why : {
           "invalid command name \"open\"",
           "invalid command name \"socket\"",
           "invalid command name \"exec\"",
           "invalid command name \"load\"",
           "invalid command name \"interp\"",
           "sandbox: time limit exceeded (300 ms per run)",
           "string repeat: the value would be 1000000000 bytes, over the sandbox's limit of "
           "67108864 bytes per value",
       })
    EXPECT_TRUE(contains(r.err, prefix + why)) << why << "\n" << r.err;
}

}  // namespace
}  // namespace mstream::e2e
