// A message that reaches a destroyed stream is refused back to its sender with a clear error,
// never dropped in silence (issue 18, part 1): for a handler's appends, the shells hear of it
// as of that agent's handler error.
#include <gtest/gtest.h>

#include <string>

#include "memory_session.hpp"

namespace mstream {
namespace {

using testing::MemorySession;

TEST(DestroyRefusals, AHandlersAppendsToADestroyedStreamAreReportedToTheShells) {
  // A bound of one unconsumed message per channel: the sender's 50 appends wait at its site,
  // one round trip each, and the destroy overtakes most of them.
  MemorySession s({.sites = 3, .leader_state = nullptr, .site_options = [](site::SiteOptions* o) {
                     o->transport.channel.max_unconsumed_messages = 1;
                     o->log_forwarded_errors = true;
                   }});
  site::ShellApi& shell = s.join_shell();
  tcl::CreateOptions at;
  at.site = 1;
  ASSERT_TRUE(shell.stream_create("/r", at).ok());
  ASSERT_TRUE(shell.register_agent("/r", "", "on_stream_append {}\n", "", false).ok());
  at.site = 2;
  ASSERT_TRUE(shell.stream_create("/s", at).ok());
  ASSERT_TRUE(shell
                  .register_agent("/s", "",
                                  "on_stream_append {\n"
                                  "  for {set i 0} {$i < 50} {incr i} {stream_append /r m$i}\n"
                                  "}\n",
                                  "", false)
                  .ok());
  ASSERT_TRUE(shell.stream_append("/s", "go", true).ok());
  ASSERT_TRUE(shell.stream_destroy("/r").ok());
  (void)s.run_until([] { return false; }, 200);
  const std::uint64_t handler_errors = s.site(2).counters().handler_errors;
  EXPECT_EQ(handler_errors, 1u);
  std::string line, told;
  site::SiteCore& core = s.shell_core(s.last_shell());
  while (core.poll_error(&line))
    if (line.find("refused: the stream was destroyed") != std::string::npos) told = line;
  EXPECT_NE(told.find("stream_append from stream \"/s\", site 2: "), std::string::npos) << told;
  EXPECT_NE(told.find("to stream \"/r\" refused"), std::string::npos) << told;
  EXPECT_GT(core.counters().errors_told, 0u);
}

}  // namespace
}  // namespace mstream
