// The process side of `mstream run`: OutputMerger puts the lines of several pipes and of the
// shell in stamp order, and LocalSession starts, watches and always cleans up a leader and its
// sites. The daemons are fake_daemon, which keeps the daemon contract with no session behind
// it. Every wait is bounded, and every test checks that no process it started is left.

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/child_process.hpp"
#include "runtime/clock.hpp"
#include "runtime/local_session.hpp"
#include "runtime/output_merger.hpp"

namespace mstream {
namespace {

using namespace std::chrono_literals;
using runtime::ChildProcess;
using runtime::LineReader;
using runtime::LocalSession;
using runtime::LocalSessionOptions;
using runtime::monotonic_now;
using runtime::OutputMerger;
using runtime::OutputMergerOptions;
using runtime::stamped_line;

// The merger's output, in a temporary file that we read with pread() while the merger writes.
class CapturedOutput {
 public:
  CapturedOutput() : file_(std::tmpfile()) {}
  ~CapturedOutput() { std::fclose(file_); }
  std::FILE* file() { return file_; }

  std::string text() const {
    std::string all;
    char chunk[4096];
    for (;;) {
      const ssize_t n = pread(fileno(file_), chunk, sizeof(chunk), all.size());
      if (n <= 0) return all;
      all.append(chunk, static_cast<std::size_t>(n));
    }
  }
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::istringstream in(text());
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  // Waits at most `timeout` for `n` complete lines.
  bool wait_for_lines(std::size_t n, std::chrono::nanoseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const std::string t = text();
      if (static_cast<std::size_t>(std::count(t.begin(), t.end(), '\n')) >= n) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(2ms);
    }
  }

 private:
  std::FILE* file_;
};

// A pipe whose read end goes to a merger (which then owns it) and whose write end the test
// writes stamped lines to, as a daemon would.
struct TestPipe {
  int fds[2] = {-1, -1};
  TestPipe() { EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0); }
  ~TestPipe() { close_writer(); }
  LineReader reader() { return LineReader(fds[0]); }
  void write(const std::string& line) { ASSERT_TRUE(runtime::write_all(fds[1], line + "\n").ok()); }
  void close_writer() {
    if (fds[1] >= 0) close(std::exchange(fds[1], -1));
  }
};

std::unique_ptr<OutputMerger> start_merger(CapturedOutput& out, std::chrono::nanoseconds hold) {
  auto merger = OutputMerger::start(out.file(), OutputMergerOptions{.hold = hold});
  EXPECT_TRUE(merger.ok()) << merger.status().to_string();
  return std::move(*merger);
}

TEST(StampedLine, RoundTripsAndRejectsOtherLines) {
  const std::string line = stamped_line(123456789, 7, "a b  c");
  EXPECT_EQ(line, "@123456789 7 a b  c");
  const auto parsed = runtime::parse_stamped_line(line);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->stamp, 123456789);
  EXPECT_EQ(parsed->site, 7u);
  EXPECT_EQ(parsed->text, "a b  c");
  const auto empty = runtime::parse_stamped_line("@5 2");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->text, "");
  EXPECT_EQ(runtime::parse_stamped_line("@5 2 ")->text, "");
  for (const char* other : {"", "@", "@5", "@5 ", "@x 1 a", "@5 x a", "@-5 1 a", "@5 1x a", "5 1 a",
                            "mstream: site 1 joined 127.0.0.1:1", "@99999999999999999999999 1 a"})
    EXPECT_FALSE(runtime::parse_stamped_line(other)) << other;
}

TEST(OutputMerger, PrintsAnEarlierStampedLineFirstEvenWhenItArrivesLater) {
  CapturedOutput out;
  TestPipe site1, site2;
  auto merger = start_merger(out, 300ms);
  merger->add_source(site1.reader(), 1);
  merger->add_source(site2.reader(), 2);
  const proto::Time early = monotonic_now();
  std::this_thread::sleep_for(5ms);
  // Site 2 prints after site 1 did (say, because site 1's message caused it), but site 1's
  // line is still on its way through a slower pipe.
  site2.write(stamped_line(monotonic_now(), 2, "second"));
  std::this_thread::sleep_for(30ms);
  site1.write(stamped_line(early, 1, "first"));
  ASSERT_TRUE(out.wait_for_lines(2, 10s));
  EXPECT_EQ(out.lines(), (std::vector<std::string>{"[1] first", "[2] second"}));
}

TEST(OutputMerger, InterleavesShellLinesWithSiteLinesInTimeOrder) {
  CapturedOutput out;
  TestPipe site;
  auto merger = start_merger(out, 300ms);
  merger->add_source(site.reader(), 1);
  const proto::Time before = monotonic_now();
  std::this_thread::sleep_for(3ms);
  merger->shell_line("shell says");
  merger->shell_output("in two ");
  merger->shell_output("parts\n");
  std::this_thread::sleep_for(3ms);
  const proto::Time after = monotonic_now();
  // Both site lines reach us after the shell's; their stamps place them around it.
  site.write(stamped_line(before, 1, "site before"));
  site.write(stamped_line(after, 1, "site after"));
  ASSERT_TRUE(out.wait_for_lines(4, 10s));
  EXPECT_EQ(out.lines(), (std::vector<std::string>{"[1] site before", "shell says", "in two parts",
                                                   "[1] site after"}));
}

TEST(OutputMerger, FlushPrintsHeldLinesWithoutWaiting) {
  CapturedOutput out;
  TestPipe known, unknown;
  auto merger = start_merger(out, 60s);
  merger->add_source(known.reader(), 3);
  merger->add_source(unknown.reader(), std::nullopt);
  known.write(stamped_line(monotonic_now(), 4, ""));
  known.write("not stamped");
  unknown.write("as it is");
  EXPECT_EQ(out.text(), "");  // held for a minute
  merger->flush();
  EXPECT_EQ(out.lines(), (std::vector<std::string>{"[4] ", "[3] not stamped", "as it is"}));
  merger->shell_line("shell");
  EXPECT_EQ(out.lines().size(), 3u);
  merger->flush();
  EXPECT_EQ(out.lines().back(), "shell");
}

TEST(OutputMerger, PrintsUnterminatedLastLinesWhenDestroyed) {
  CapturedOutput out;
  TestPipe site;
  {
    auto merger = start_merger(out, 60s);
    merger->add_source(site.reader(), 1);
    ASSERT_TRUE(runtime::write_all(site.fds[1], "no newline").ok());
    site.close_writer();
    EXPECT_TRUE(merger->sources_closed());
    merger->shell_output("shell tail");
  }
  EXPECT_EQ(out.lines(), (std::vector<std::string>{"[1] no newline", "shell tail"}));
}

// --- LocalSession with fake daemons ---

LocalSessionOptions fake_options(std::uint32_t sites) {
  LocalSessionOptions o;
  o.binary = MSTREAM_FAKE_DAEMON;
  o.sites = sites;
  o.start_timeout = 10s;
  for (std::uint32_t k = 1; k <= sites; ++k) o.per_site_args.push_back({"--id", std::to_string(k)});
  return o;
}

std::vector<pid_t> all_pids(const LocalSession& session) {
  std::vector<pid_t> pids = {session.leader().pid};
  for (const auto& s : session.sites()) pids.push_back(s.pid);
  return pids;
}

// True once `pid` names no process (neither running nor a zombie). Reaps it first if it is
// our child, as it is when we are the subreaper of its dead parent.
bool gone_within(pid_t pid, std::chrono::nanoseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    waitpid(pid, nullptr, WNOHANG);
    if (kill(pid, 0) != 0 && errno == ESRCH) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
}

TEST(LocalSession, StartsALeaderAndItsSitesInAProcessGroupOfTheirOwn) {
  LocalSession session;
  Status st = session.start(fake_options(2));
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(session.leader_address(), "127.0.0.1:54321");
  ASSERT_EQ(session.sites().size(), 2u);
  EXPECT_EQ(session.sites()[0].site, 1u);
  EXPECT_EQ(session.sites()[1].site, 2u);
  EXPECT_EQ(session.sites()[1].address, "127.0.0.1:54321");
  EXPECT_NE(session.process_group(), getpgrp());
  for (const pid_t pid : all_pids(session)) EXPECT_EQ(getpgid(pid), session.process_group());
  EXPECT_TRUE(session.check_running().ok());

  st = session.shutdown(5s);
  EXPECT_TRUE(st.ok()) << st.to_string();
  for (const pid_t pid : all_pids(session)) EXPECT_TRUE(gone_within(pid, 0s)) << pid;
  EXPECT_FALSE(session.check_running().ok());
}

TEST(LocalSession, MergedOutputFollowsStampsAcrossDaemonsAndTheShell) {
  // The schedule starts once the session surely runs; stamps are fixed by it, and only the
  // lateness of a line (60 ms) must stay below the hold (300 ms) for the order to hold.
  // Without MSTREAM_STAMPED_OUTPUT reaching the daemons, site 1's late line would be stamped on
  // arrival and come out after site 2's.
  const proto::Time base = monotonic_now() + 300 * proto::kMillisecond;
  const std::string b = std::to_string(base);
  LocalSessionOptions options = fake_options(2);
  options.leader_args = {"--base", b, "--say", "400:leader line"};
  options.per_site_args[0].insert(options.per_site_args[0].end(),
                                  {"--base", b, "--say-late", "100:60:first"});
  options.per_site_args[1].insert(options.per_site_args[1].end(),
                                  {"--base", b, "--say", "130:second"});
  CapturedOutput out;
  {
    LocalSession session;
    Status st = session.start(options);
    ASSERT_TRUE(st.ok()) << st.to_string();
    auto merger = start_merger(out, 300ms);
    session.attach_output(*merger);
    const auto at = [base](int ms) {
      return std::chrono::nanoseconds(base + ms * proto::kMillisecond - monotonic_now());
    };
    std::this_thread::sleep_for(at(150));
    merger->shell_line("shell line");
    ASSERT_TRUE(out.wait_for_lines(4, 10s));
    st = session.shutdown(5s);
    EXPECT_TRUE(st.ok()) << st.to_string();
    merger->flush();
  }
  EXPECT_EQ(out.lines(),
            (std::vector<std::string>{"[1] first", "[2] second", "shell line", "[0] leader line"}));
}

TEST(LocalSession, DestroyingItLeavesNoProcessBehind) {
  std::vector<pid_t> pids;
  pid_t group;
  {
    LocalSession session;
    Status st = session.start(fake_options(3));
    ASSERT_TRUE(st.ok()) << st.to_string();
    pids = all_pids(session);
    group = session.process_group();
  }
  ASSERT_EQ(pids.size(), 4u);
  for (const pid_t pid : pids) EXPECT_TRUE(gone_within(pid, 0s)) << pid;
  EXPECT_NE(kill(-group, 0), 0);
}

TEST(LocalSession, ReportsASiteKilledBySigkill) {
  LocalSession session;
  Status st = session.start(fake_options(2));
  ASSERT_TRUE(st.ok()) << st.to_string();
  const pid_t victim = session.sites()[1].pid;
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((st = session.check_running()).ok() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(2ms);
  const std::string expected =
      "site 2 (pid " + std::to_string(victim) + ") died: killed by signal 9";
  EXPECT_EQ(st.code(), Status::Code::kUnavailable);
  EXPECT_EQ(st.message(), expected);
  st = session.shutdown(5s);
  EXPECT_EQ(st.message(), expected);
}

TEST(LocalSession, StartTimesOutWhenASiteNeverPrintsItsReadyLine) {
  LocalSessionOptions options = fake_options(2);
  options.per_site_args[1].push_back("--no-ready");
  options.start_timeout = 500ms;
  LocalSession session;
  const auto began = std::chrono::steady_clock::now();
  const Status st = session.start(options);
  EXPECT_LT(std::chrono::steady_clock::now() - began, 5s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("site 2 (pid "), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("did not print its ready line within 500 ms"), std::string::npos)
      << st.message();
  EXPECT_NE(kill(-session.process_group(), 0), 0);  // the leader and site 1 are gone too
}

TEST(LocalSession, StartReportsHowADaemonEndedBeforeItWasReady) {
  LocalSessionOptions options = fake_options(1);
  options.leader_args = {"--exit-before-ready", "3"};
  LocalSession session;
  Status st = session.start(options);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("leader (pid "), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("exited before it was ready: exited with code 3"), std::string::npos)
      << st.message();

  options = fake_options(1);
  options.binary = "/nonexistent/mstream";
  LocalSession missing;
  st = missing.start(options);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("exited with code 127"), std::string::npos) << st.message();
}

TEST(LocalSession, StartRejectsAnotherFirstLine) {
  LocalSessionOptions options = fake_options(1);
  options.per_site_args[0].push_back("--bad-ready");
  LocalSession session;
  const Status st = session.start(options);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("printed \"hello\" instead of"), std::string::npos) << st.message();
}

TEST(LocalSession, ShutdownKillsADaemonThatIgnoresSigterm) {
  LocalSessionOptions options = fake_options(2);
  options.per_site_args[0].push_back("--ignore-term");
  LocalSession session;
  Status st = session.start(options);
  ASSERT_TRUE(st.ok()) << st.to_string();
  const std::vector<pid_t> pids = all_pids(session);
  const auto began = std::chrono::steady_clock::now();
  st = session.shutdown(200ms);
  EXPECT_LT(std::chrono::steady_clock::now() - began, 5s);
  EXPECT_EQ(st.message(), "site 1 (pid " + std::to_string(pids[1]) +
                              ") did not stop within 200 ms of SIGTERM and was killed");
  for (const pid_t pid : pids) EXPECT_TRUE(gone_within(pid, 0s)) << pid;
}

// Makes this process the reaper of its orphaned descendants while it lives, so that the
// daemons of a dead child come to us and we can see them gone (a container's init may never
// reap them).
class SubreaperScope {
 public:
  SubreaperScope() { EXPECT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); }
  ~SubreaperScope() { prctl(PR_SET_CHILD_SUBREAPER, 0); }
};

class EndingSignal : public ::testing::TestWithParam<int> {};

TEST_P(EndingSignal, ToTheRunProcessLeavesNoDaemonBehind) {
  const int signal = GetParam();
  SubreaperScope subreaper;
  // The child plays `mstream run`: it installs the cleanup, starts a session, reports its
  // daemons and, when told, receives the signal. No gtest macros in there.
  auto run = ChildProcess::fork([signal](int input_fd, int output_fd) {
    if (!LocalSession::install_signal_cleanup().ok()) return 20;
    LocalSession session;
    if (!session.start(fake_options(2)).ok()) return 21;
    std::string report = "pids";
    for (const pid_t pid : all_pids(session)) report += " " + std::to_string(pid);
    if (!runtime::write_all(output_fd, report + "\n").ok()) return 22;
    if (!LineReader(input_fd).read_line(10s).ok()) return 23;
    raise(signal);
    return 24;  // the handler never returns
  });
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  auto report = run->output().read_line(10s);
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  std::istringstream in(*report);
  std::string word;
  in >> word;
  ASSERT_EQ(word, "pids");
  std::vector<pid_t> pids;
  for (pid_t pid; in >> pid;) pids.push_back(pid);
  ASSERT_EQ(pids.size(), 3u);

  ASSERT_TRUE(run->write_line("go").ok());
  const int code = run->wait(10s);
  EXPECT_EQ(code, signal == SIGINT ? 130 : 128 + signal);
  for (const pid_t pid : pids) EXPECT_TRUE(gone_within(pid, 10s)) << pid;
}

INSTANTIATE_TEST_SUITE_P(Signals, EndingSignal, ::testing::Values(SIGINT, SIGTERM, SIGHUP),
                         [](const auto& info) {
                           switch (info.param) {
                             case SIGINT:
                               return std::string("Sigint");
                             case SIGTERM:
                               return std::string("Sigterm");
                             default:
                               return std::string("Sighup");
                           }
                         });

}  // namespace
}  // namespace mstream
