// Site and shell failures as a user meets them (DESIGN.md guarantee 6, "The mstream command"):
// a real `mstream leader --failure-timeout 500` and `mstream site` daemons on loopback, a
// `mstream run --session` script driving traffic, and a site or a shell killed with SIGKILL
// (or stopped with SIGSTOP) in the middle of it. Checked only through what a user sees: the
// daemons' output, the scripts' output and exit codes, `mstream status --json`.
//
// The traffic of most tests: the shell appends 1..N to a stream X, whose agent forwards each
// message to a collector stream C at site 0 (the leader's process, which never fails here);
// X's failure handler appends "FAIL@SITE" to C, SITE being where it ran. C keeps what it
// consumed, in order, and returns it for the message "dump". What C may hold is exactly what
// guarantee 6 allows for a stream that is not -durable; see check_collector().
//
// Pacing: the traffic loop makes a -sync append to P, a stream without agent at site 0, after
// every message: one round trip on loopback, so the kill lands in the middle of the traffic
// whatever the machine's speed. (A shell stays in the session even when silent: see
// ShellWaitingInAfterStaysInTheSession.)

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "e2e_support.hpp"

namespace mstream::e2e {
namespace {

constexpr const char* kLeaderReady = "mstream: leader listening on ";
constexpr int kTimeoutMs = 500;  // the leader's --failure-timeout in every test here
// Long enough for any detection (the timeout plus a few keepalive periods) on a loaded machine.
constexpr auto kDetection = 10s;
// Bounds a traffic run from start to exit: N messages at >= 5 ms each, plus one recovery.
constexpr auto kRunBound = 45s;

// P, C and the forwarder procedure: the common start of every traffic script. P and C live
// at site 0 unless `where` says otherwise (" -site 1").
std::string prelude(const std::string& where = "") {
  return "stream_create P" + where + "\nstream_create C" + where + R"(
register_agent C {} {
  set got {}
  on_stream_append {
    if {$argv eq "dump"} { return $got }
    lappend got $argv
    puts "C $argv"
  }
}
proc forwarder {name site fm} {
  stream_create $name -site $site -failure_manager $fm
  register_agent $name {} {
    on_stream_append { stream_append C $argv }
    on_stream_failure { stream_append C FAIL@[my_id] }
  }
}
)";
}

// The traffic loop: 1..N to X, one -sync append to P per message (see "Pacing" above).
std::string traffic_loop(int n) {
  return "puts ready\nfor {set i 1} {$i <= " + std::to_string(n) +
         "} {incr i} {\n"
         "  stream_append X $i\n"
         "  stream_append P $i -sync\n"
         "  after 5\n"
         "}\n"
         "puts done\n";
}

// What C consumed, split into the messages before the FAIL mark, the FAIL marks, and the
// messages after it.
struct CollectorRecord {
  std::vector<long> before;
  std::vector<std::string> fails;  // "FAIL@SITE", in order
  std::vector<long> after;
  std::vector<std::string> junk;  // anything else: never expected
};

CollectorRecord split_record(const std::string& dump) {
  CollectorRecord r;
  std::istringstream in(dump);
  for (std::string token; in >> token;) {
    if (token.rfind("FAIL@", 0) == 0) {
      r.fails.push_back(token);
      continue;
    }
    char* end = nullptr;
    const long v = std::strtol(token.c_str(), &end, 10);
    if (token.empty() || *end != '\0') {
      r.junk.push_back(token);
      continue;
    }
    (r.fails.empty() ? r.before : r.after).push_back(v);
  }
  return r;
}

// from..to, inclusive; empty when from > to.
std::vector<long> range(long from, long to) {
  std::vector<long> out;
  for (long v = from; v <= to; ++v) out.push_back(v);
  return out;
}

// Checks C's record against guarantee 6 for X, which is not -durable and whose site failed
// `fails` times (0 or 1), given that the shell appended 1..n to X in that order.
//
// What the design guarantees, and so all that is asserted:
//   - Before the failure, X consumed the shell's messages in order and forwarded each; C
//     consumes X's messages in order, each once (guarantee 1), so C holds 1..a for some a >= 0.
//     Of what the old X forwarded, whatever C had not consumed when X's site was fenced is
//     lost: the sender's state died with it.
//   - The leader fences the failed site before it starts the recovery (nothing the old X sends
//     is taken after that), and X's failure handler runs at the failure manager before any
//     further append handler, so the FAIL mark comes after everything C got from the old X and
//     before everything from the new one. It runs once.
//   - The shell re-sends, in order, every message whose consumption it had not seen
//     acknowledged: the new X consumes k..n for some k, each once and in order (delivery is
//     "in order and complete from the last acknowledged message"), and forwards it. So C then
//     holds exactly k..n.
//   - Nothing links k to a: k <= a means messages consumed twice (X consumed them but the
//     acknowledgement was lost with it), k > a + 1 means messages lost (X consumed them and
//     its forwards died unconsumed). Both are allowed without -durable, so neither "every
//     number appears" nor "no number appears twice" is asserted.
// Without a failure of X, C holds exactly 1..n.
::testing::AssertionResult check_collector(const CollectorRecord& r, long n, std::size_t fails,
                                           const std::string& fail_mark) {
  auto show = [](const std::vector<long>& v) {
    std::string s;
    for (long x : v) s += std::to_string(x) + " ";
    return s;
  };
  if (!r.junk.empty()) return ::testing::AssertionFailure() << "unexpected " << r.junk[0];
  if (r.fails.size() != fails)
    return ::testing::AssertionFailure()
           << r.fails.size() << " FAIL marks, expected " << fails << "; before: " << show(r.before);
  for (const std::string& f : r.fails)
    if (f != fail_mark)
      return ::testing::AssertionFailure()
             << "the failure handler ran as " << f << ", expected " << fail_mark;
  if (fails == 0) {
    if (r.before != range(1, n))
      return ::testing::AssertionFailure() << "not exactly 1.." << n << ": " << show(r.before);
    return ::testing::AssertionSuccess();
  }
  // For the log: where the window of loss or repetition fell in this run.
  std::printf("collector: 1..%zu, %s, %ld..%ld\n", r.before.size(), r.fails[0].c_str(),
              r.after.empty() ? 0L : r.after.front(), r.after.empty() ? 0L : r.after.back());
  if (r.before != range(1, static_cast<long>(r.before.size())))
    return ::testing::AssertionFailure() << "before FAIL, not 1..a: " << show(r.before);
  if (r.after.empty() || r.after.back() != n ||
      r.after != range(r.after.front(), r.after.front() + static_cast<long>(r.after.size()) - 1))
    return ::testing::AssertionFailure() << "after FAIL, not k.." << n << ": " << show(r.after);
  return ::testing::AssertionSuccess();
}

class Failures : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    leader_ = Background::start(
        dir_, "leader",
        {"leader", "--listen", "127.0.0.1:0", "--failure-timeout", std::to_string(kTimeoutMs)});
    ASSERT_NE(leader_, nullptr) << "the leader printed nothing";
    const std::string first = leader_->first_line();
    ASSERT_EQ(first.rfind(kLeaderReady, 0), 0u) << first;
    address_ = first.substr(std::string(kLeaderReady).size());
  }
  void TearDown() override {
    for (auto& run : runs_) run->process().signal(SIGKILL);
    for (auto& [id, site] : sites_) {
      site->process().signal(SIGCONT);  // a stopped site would not see SIGTERM
      site->stop();
    }
    if (leader_) leader_->stop();
  }

  // Starts a site; returns the id it printed in "mstream: site N joined ADDRESS".
  int add_site() {
    auto site = Background::start(dir_, "site" + std::to_string(++started_),
                                  {"site", "--leader", address_});
    if (site == nullptr) {
      ADD_FAILURE() << "the site printed nothing";
      return -1;
    }
    const int id = joined_id(site->first_line());
    if (id < 0) return -1;
    sites_[id] = std::move(site);
    return id;
  }
  // The N of "mstream: site N joined ADDRESS" (our leader's), else -1 and a failure.
  int joined_id(const std::string& line) {
    int id = -1;
    char joined[256] = {};
    if (std::sscanf(line.c_str(), "mstream: site %d joined %255s", &id, joined) != 2 ||
        joined != address_) {
      ADD_FAILURE() << "unexpected line: " << line;
      return -1;
    }
    return id;
  }
  void add_sites(int n) {
    for (int i = 1; i <= n; ++i) ASSERT_EQ(add_site(), i);
  }
  Background& site(int id) { return *sites_.at(id); }
  void kill_site(int id) {
    site(id).process().signal(SIGKILL);
    EXPECT_TRUE(site(id).process().wait(5s).has_value()) << "site " << id << " did not die";
  }

  // The leader said so on stderr within kDetection.
  bool leader_reported(const std::string& text) {
    return wait_until([&] { return contains(leader_->err(), text); }, kDetection);
  }
  static std::string site_failed(int id) {
    return "mstream leader: site " + std::to_string(id) + " failed: not heard from for " +
           std::to_string(kTimeoutMs) + " ms\n";
  }

  // Starts `mstream run --session ADDRESS NAME.tcl` with `script`, which prints "ready" first.
  Background* start_run(const std::string& name, const std::string& script) {
    dir_.write(name + ".tcl", script);
    auto run = Background::start(dir_, name, {"run", "--session", address_, name + ".tcl"}, 20s);
    if (run == nullptr) {
      ADD_FAILURE() << "the run printed nothing: " << read_file(dir_.file(name + ".err"));
      return nullptr;
    }
    EXPECT_EQ(run->first_line(), "ready") << run->out() << run->err();
    runs_.push_back(std::move(run));
    return runs_.back().get();
  }
  // Waits until C consumed message `k` (its handler prints "C k" at site 0).
  bool collector_reached(long k, std::chrono::nanoseconds timeout = 20s) {
    return leader_->wait_for_output("[0] C " + std::to_string(k) + "\n", timeout);
  }
  // Runs a short script on the session; its result.
  CommandResult query(const std::string& script) {
    return run_script(dir_, script, {"--session", address_}, {}, 30s);
  }
  // What C holds, once its last message is `last` (or after 10 s).
  CollectorRecord collector_record(long last) {
    std::string dump;
    wait_until(
        [&] {
          const CommandResult r = query("puts [lindex [stream_append C dump -sync] 0]\n");
          EXPECT_EQ(r.exit_code, 0) << r.describe();
          dump = r.out;
          const CollectorRecord rec = split_record(dump);
          const auto& tail = rec.fails.empty() ? rec.before : rec.after;
          return r.exit_code != 0 || (!tail.empty() && tail.back() == last);
        },
        10s);
    return split_record(dump);
  }
  // What C holds once the counter's message n reached it (or after 10 s).
  std::string durable_dump(long n) {
    std::string dump;
    const std::string last = std::to_string(n) + ":" + std::to_string(n);
    wait_until(
        [&] {
          const CommandResult r = query("puts [lindex [stream_append C dump -sync] 0]\n");
          dump = r.out;
          return r.exit_code != 0 || dump.find(last) != std::string::npos;
        },
        10s);
    return dump;
  }
  std::optional<Json> status_json() {
    const CommandResult r = run_mstream(dir_, {"status", "--session", address_, "--json"}, 20s);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    const auto lines = r.lines();
    if (lines.size() != 1) return std::nullopt;
    return JsonParser::parse(lines[0]);
  }
  // {site id: state} of `mstream status --json`.
  std::map<int, std::string> site_states() {
    std::map<int, std::string> out;
    if (auto s = status_json())
      for (const Json& site : (*s)["sites"].array())
        out[static_cast<int>(site["id"].number())] = site["state"].string();
    return out;
  }
  // A run must end on its own, with exit code 0, within kRunBound.
  static void expect_finishes(Background* run) {
    ASSERT_NE(run, nullptr);
    EXPECT_EQ(run->process().wait(kRunBound), 0) << run->out() << run->err();
  }

  TempDir dir_;
  std::unique_ptr<Background> leader_;
  std::map<int, std::unique_ptr<Background>> sites_;
  std::vector<std::unique_ptr<Background>> runs_;
  std::string address_;
  int started_ = 0;
};

TEST_F(Failures, SiteKilledMidTrafficIsRecoveredAtItsFailureManager) {
  ASSERT_NO_FATAL_FAILURE(add_sites(3));
  constexpr long kN = 400;
  Background* run =
      start_run("traffic", prelude() + "forwarder X 2 1\n" + traffic_loop(static_cast<int>(kN)));
  ASSERT_NE(run, nullptr);
  ASSERT_TRUE(collector_reached(100)) << leader_->out() << run->err();
  kill_site(2);
  EXPECT_TRUE(leader_reported(site_failed(2))) << leader_->err();
  expect_finishes(run);
  EXPECT_EQ(run->out(), "ready\ndone\n");

  const CollectorRecord rec = collector_record(kN);
  EXPECT_TRUE(check_collector(rec, kN, 1, "FAIL@1"));
  // The kill landed in the middle of the traffic: C had 1..100 before it.
  EXPECT_GE(rec.before.size(), 100u);
  EXPECT_LT(rec.before.size(), static_cast<std::size_t>(kN));

  const CommandResult after = query("puts [stream_location X]\nputs [get_peer_map]\n");
  ASSERT_EQ(after.exit_code, 0) << after.describe();
  const auto lines = after.lines();
  ASSERT_EQ(lines.size(), 2u) << after.out;
  EXPECT_EQ(lines[0], "1");
  EXPECT_TRUE(std::regex_search(lines[1], std::regex(R"(\{2 127\.0\.0\.1:[0-9]+ 0\})")))
      << lines[1];
  for (int live : {0, 1, 3})
    EXPECT_TRUE(std::regex_search(
        lines[1], std::regex("\\{" + std::to_string(live) + R"( 127\.0\.0\.1:[0-9]+ 1\})")))
        << lines[1];
  EXPECT_EQ(site_states(),
            (std::map<int, std::string>{{0, "live"}, {1, "live"}, {2, "failed"}, {3, "live"}}));
}

// The moving traffic: X goes back and forth between sites 2 and 3, a move after every 5th
// message (to 3 after 5, 15, 25, ...; to 2 after 10, 20, ...); each failed move is printed and
// the loop goes on. Before the move after message `slow_at` (0: none), the shell appends
// "slow" to X, whose handler then takes 2 s (forwarding nothing), waits until X has it, and
// prints "moving".
std::string moving_traffic(int n, int slow_at) {
  return prelude() + R"(
stream_create X -site 2 -failure_manager 1
register_agent X {} {
  on_stream_append { if {$argv eq "slow"} { after 2000 } else { stream_append C $argv } }
  on_stream_failure { stream_append C FAIL@[my_id] }
}
puts ready
set to 3
for {set i 1} {$i <= )" +
         std::to_string(n) + R"(} {incr i} {
  stream_append X $i
  if {$i == )" +
         std::to_string(slow_at) + R"(} {
    stream_append X slow
    stream_append P slow -sync
    after 20
    puts moving
  }
  if {$i % 5 == 0} {
    if {[catch {stream_move X $to} err]} { puts "move error: $err" }
    set to [expr {$to == 2 ? 3 : 2}]
  }
  stream_append P $i -sync
  after 5
}
puts "done at [stream_location X]"
)";
}

// What the shell of moving_traffic() printed: its failed moves, bar the refusals of moves to
// the failed site 3 once it is known failed, and where X was at the end.
struct MovesOutcome {
  std::vector<std::string> failed_moves;
  bool refused = false;  // some "move error: no such site 3"
  std::string where;
};

MovesOutcome moves_outcome(const std::string& out) {
  MovesOutcome m;
  for (const std::string& line : split_lines(out)) {
    if (line == "ready" || line == "moving") continue;
    if (line.rfind("done at ", 0) == 0) {
      m.where = line.substr(8);
    } else if (line == "move error: no such site 3") {
      m.refused = true;
    } else {
      m.failed_moves.push_back(line);
    }
  }
  return m;
}

// Every move involves site 3, so the first one after the kill meets its failure: the leader
// settles it with the other end (site 2) and the shell gets one clear error, which says
// whether the stream is still at site 2 (the move is called off) or not (it is recovered at
// its failure manager). Once site 3 is declared failed, moves to it are refused as to any
// unknown site.
constexpr const char* kMoveCalledOff =
    "move error: site 3 failed during the move; stream \"X\" stays at site 2";
constexpr const char* kMoveLost = "move error: site 3 failed during the move";

class FailuresDuringMoves : public Failures {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(Failures::SetUp());
    ASSERT_NO_FATAL_FAILURE(add_sites(3));
  }

  // Runs moving_traffic(kN, slow_at) and kills site 3 once `kill_when` holds; then checks what
  // holds whichever way the move ended, and returns the failed move's error.
  template <typename Condition>
  std::string run_and_kill(int slow_at, Condition kill_when) {
    Background* run = start_run("moves", moving_traffic(static_cast<int>(kN), slow_at));
    if (run == nullptr) return {};
    EXPECT_TRUE(kill_when(*run)) << leader_->out() << run->out() << run->err();
    kill_site(3);
    EXPECT_TRUE(leader_reported(site_failed(3))) << leader_->err();
    expect_finishes(run);

    const MovesOutcome m = moves_outcome(run->out());
    EXPECT_EQ(m.failed_moves.size(), 1u) << run->out();
    if (m.failed_moves.size() != 1) return {};
    const std::string& error = m.failed_moves[0];
    EXPECT_TRUE(error == kMoveCalledOff || error == kMoveLost) << error;
    EXPECT_TRUE(m.refused) << run->out();
    // At a live site: 2 if the move was called off (the next move to 2 does nothing, those to
    // 3 are refused); else 1, its failure manager, or 2, where the loop moved it from there.
    EXPECT_TRUE(m.where == "1" || m.where == "2") << run->out();
    if (error == kMoveCalledOff) {
      EXPECT_EQ(m.where, "2");
    }

    // Called off: X never failed, and C has exactly 1..N. Else X was recovered at site 1.
    const CollectorRecord rec = collector_record(kN);
    EXPECT_TRUE(check_collector(rec, kN, error == kMoveCalledOff ? 0 : 1, "FAIL@1"));
    EXPECT_EQ(site_states(),
              (std::map<int, std::string>{{0, "live"}, {1, "live"}, {2, "live"}, {3, "failed"}}));
    return error;
  }

  static constexpr long kN = 400;
};

TEST_F(FailuresDuringMoves, SiteKilledJustBeforeAStreamMovesToIt) {
  // C has 100: X has just been moved to site 2, and its next move is to site 3, which is dead
  // by then. Site 2 sends the stream out to it, so the leader, asking site 2, finds it gone.
  const std::string error = run_and_kill(0, [&](Background&) { return collector_reached(100); });
  EXPECT_EQ(error, kMoveLost);
}

TEST_F(FailuresDuringMoves, SiteKilledWhileAStreamThatIsThereMovesFromIt) {
  // C has 97: X is at site 3 since message 95, and is killed there with it; the move after
  // message 100 asks the dead site to send it out.
  const std::string error = run_and_kill(0, [&](Background&) { return collector_reached(97); });
  EXPECT_EQ(error, kMoveLost);
}

TEST_F(FailuresDuringMoves, MoveIsCalledOffWhenItsTargetDiesBeforeTheStreamLeft) {
  // The move after message 95 (from site 2 to 3) waits for X's 2 s handler to return, and
  // site 3 dies meanwhile: the leader, asking site 2 before that handler returned, finds X
  // still there and calls the move off; X goes on at site 2 and never fails.
  const std::string error =
      run_and_kill(95, [&](Background& run) { return run.wait_for_output("moving\n", 20s); });
  EXPECT_EQ(error, kMoveCalledOff);
}

TEST_F(Failures, RestartedSiteJoinsAsANewSiteAndHostsStreams) {
  ASSERT_NO_FATAL_FAILURE(add_sites(3));
  const CommandResult made = query(R"(
stream_create Y -site 2 -failure_manager 1
register_agent Y {} { on_stream_append { return [my_id] } }
puts [stream_append Y first -sync]
)");
  ASSERT_EQ(made.exit_code, 0) << made.describe();
  EXPECT_EQ(made.lines(), std::vector<std::string>{"2"});

  kill_site(2);
  ASSERT_TRUE(leader_reported(site_failed(2))) << leader_->err();
  // The same command again: site ids are never reused, so it is site 4.
  EXPECT_EQ(add_site(), 4);

  const CommandResult r = query(R"(
puts [site_list]
stream_create Z -site 4
register_agent Z {} { on_stream_append { puts "Z got $argv"; return [my_id] } }
puts [stream_append Z hello -sync]
puts [stream_append Y again -sync]
stream_move Y 4
puts [stream_append Y there -sync]
puts [stream_location Y]
)");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.lines(), (std::vector<std::string>{"0 1 3 4", "4", "1", "4", "4"}));
  EXPECT_TRUE(site(4).wait_for_output("[4] Z got hello\n", 10s)) << site(4).out();
  EXPECT_EQ(site_states(), (std::map<int, std::string>{
                               {0, "live"}, {1, "live"}, {2, "failed"}, {3, "live"}, {4, "live"}}));
}

TEST_F(Failures, StoppedSiteJoinsTheSessionAgainAsANewSite) {
  ASSERT_NO_FATAL_FAILURE(add_sites(3));
  const CommandResult made = query(R"(
stream_create Y -site 2 -failure_manager 1
register_agent Y {} { on_stream_append { return [my_id] } }
puts [stream_append Y first -sync]
)");
  ASSERT_EQ(made.exit_code, 0) << made.describe();
  // Stopped, site 2 is as silent as a dead one; resumed, it finds the leader silent (it was
  // fenced) and joins again under a new id, in the same process.
  site(2).process().signal(SIGSTOP);
  ASSERT_TRUE(leader_reported(site_failed(2))) << leader_->err();
  site(2).process().signal(SIGCONT);
  EXPECT_TRUE(wait_until(
      [&] { return contains(site(2).err(), "mstream site: site 2 joins the session again\n"); },
      kDetection))
      << site(2).err();
  ASSERT_TRUE(wait_until([&] { return split_lines(site(2).out()).size() >= 2; }, kDetection))
      << site(2).out();
  EXPECT_EQ(joined_id(split_lines(site(2).out())[1]), 4);
  EXPECT_TRUE(site(2).process().running());

  const CommandResult r = query(R"(
puts [site_list]
puts [stream_location Y]
puts [stream_append Y again -sync]
stream_create Z -site 4
register_agent Z {} { on_stream_append { puts "Z got $argv"; return [my_id] } }
puts [stream_append Z hello -sync]
)");
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.lines(), (std::vector<std::string>{"0 1 3 4", "1", "1", "4"}));
  EXPECT_TRUE(site(2).wait_for_output("[4] Z got hello\n", 10s)) << site(2).out();
}

TEST_F(Failures, KilledShellBlocksNothing) {
  ASSERT_NO_FATAL_FAILURE(add_sites(2));
  const CommandResult made = query(R"(
stream_create P
stream_create S -site 1
register_agent S {} {
  set n 0
  briefcase n
  on_stream_append { if {$argv eq "count"} { return $n }; after 2; incr n }
}
)");
  ASSERT_EQ(made.exit_code, 0) << made.describe();
  // The shell leaves a -temp stream, a backlog of 300 slow messages at S, and a -sync append
  // waiting behind them when it dies.
  Background* doomed = start_run("doomed", R"(
stream_create T -temp -site 2
for {set i 0} {$i < 300} {incr i} { stream_append S $i }
stream_append P sent -sync
puts ready
stream_append S last -sync
puts "not reached"
)");
  ASSERT_NE(doomed, nullptr);
  doomed->process().signal(SIGKILL);
  ASSERT_TRUE(doomed->process().wait(5s).has_value());
  EXPECT_TRUE(wait_until(
      [&] {
        return std::regex_search(
            leader_->err(), std::regex("mstream leader: shell [0-9]+ failed: not heard from for " +
                                       std::to_string(kTimeoutMs) + " ms\n"));
      },
      kDetection))
      << leader_->err();
  // Its -temp stream went with it.
  EXPECT_TRUE(wait_until(
      [&] {
        const CommandResult r = query("puts [stream_exists T]\n");
        return r.exit_code == 0 && r.out == "0\n";
      },
      kDetection));

  // A later script: creates, moves a stream that held the dead shell's messages, appends, and
  // its run ends once its own messages are consumed.
  const CommandResult later = query(R"(
stream_create D -site 2
register_agent D {} { on_stream_append { return [my_id] } }
puts [stream_append D hi -sync]
set before [lindex [stream_append S count -sync] 0]
stream_move S 2
set after [lindex [stream_append S count -sync] 0]
puts [expr {$after >= $before && $before <= 301}]
for {set i 0} {$i < 50} {incr i} { stream_append D $i; stream_append S $i }
puts [stream_location S]
)");
  EXPECT_EQ(later.exit_code, 0) << later.describe();
  EXPECT_EQ(later.lines(), (std::vector<std::string>{"2", "1", "2"}));
  // Shells are not sites: status lists the three sites, all live.
  EXPECT_EQ(site_states(), (std::map<int, std::string>{{0, "live"}, {1, "live"}, {2, "live"}}));
}

TEST_F(Failures, FailureManagerFailedFirstStreamIsRecoveredAtSiteZero) {
  ASSERT_NO_FATAL_FAILURE(add_sites(3));
  constexpr long kN = 600;
  Background* run =
      start_run("traffic", prelude() + "forwarder X 2 3\n" + traffic_loop(static_cast<int>(kN)));
  ASSERT_NE(run, nullptr);
  ASSERT_TRUE(collector_reached(60)) << leader_->out() << run->err();
  kill_site(3);
  ASSERT_TRUE(leader_reported(site_failed(3))) << leader_->err();
  kill_site(2);
  EXPECT_TRUE(leader_reported(site_failed(2))) << leader_->err();
  expect_finishes(run);

  // X's failure manager is gone: the leader's site takes it, and its failure handler ran there.
  const CollectorRecord rec = collector_record(kN);
  EXPECT_TRUE(check_collector(rec, kN, 1, "FAIL@0"));
  EXPECT_LT(rec.before.size(), static_cast<std::size_t>(kN));
  const CommandResult where = query("puts [stream_location X]\n");
  EXPECT_EQ(where.out, "0\n") << where.describe();
}

TEST_F(Failures, FailureManagerFailingWithTheSiteStreamIsRecoveredAtSiteZero) {
  ASSERT_NO_FATAL_FAILURE(add_sites(3));
  constexpr long kN = 400;
  Background* run =
      start_run("traffic", prelude() + "forwarder X 2 3\n" + traffic_loop(static_cast<int>(kN)));
  ASSERT_NE(run, nullptr);
  ASSERT_TRUE(collector_reached(100)) << leader_->out() << run->err();
  // The failure manager first, the stream's site at once after: the leader may declare them
  // failed in either order, or send the recovery to site 3 before it finds 3 failed too.
  kill_site(3);
  kill_site(2);
  EXPECT_TRUE(leader_reported(site_failed(2))) << leader_->err();
  EXPECT_TRUE(leader_reported(site_failed(3))) << leader_->err();
  expect_finishes(run);

  const CollectorRecord rec = collector_record(kN);
  EXPECT_TRUE(check_collector(rec, kN, 1, "FAIL@0"));
  EXPECT_LT(rec.before.size(), static_cast<std::size_t>(kN));
  const CommandResult where = query("puts [stream_location X]\n");
  EXPECT_EQ(where.out, "0\n") << where.describe();
}

TEST_F(Failures, ShellWaitingInAfterStaysInTheSession) {
  // A shell's keepalives come from a thread of their own (runtime::KeepaliveThread), so a
  // script that waits or computes longer than the failure timeout stays in the session.
  ASSERT_NO_FATAL_FAILURE(add_sites(1));
  const CommandResult r = query(R"(
stream_create W -site 1
register_agent W {} { on_stream_append { return [my_id] } }
after 1500
puts [stream_append W x -sync]
)");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.lines(), std::vector<std::string>{"1"});
  EXPECT_FALSE(contains(leader_->err(), "failed")) << leader_->err();
}

}  // namespace
}  // namespace mstream::e2e

namespace mstream::e2e {
namespace {

// A durable counter: each message increments n (its briefcase) and is forwarded to C as
// "n:message", so C shows both exactly-once consumption (every message once, in order) and
// the stream's state (n equals the message's number only if no state was lost and no message
// was applied twice).
constexpr const char* kDurableCounter = R"(
proc durable_counter {name site fm} {
  stream_create $name -site $site -failure_manager $fm -durable
  register_agent $name {} {
    set n 0
    briefcase n
    on_stream_append { incr n; stream_append C "$n:$argv" }
    on_stream_failure { stream_append C DFAIL@[my_id] }
  }
}
)";

// C's record for a durable counter fed 1..n: exactly "1:1 2:2 ... n:n", with `fails` marks
// `fail_mark` ("DFAIL@SITE") anywhere among them (DESIGN.md guarantee 6 for -durable: nothing
// lost, nothing consumed twice, no state lost).
::testing::AssertionResult check_durable(const std::string& dump, long n, std::size_t fails,
                                         const std::string& fail_mark) {
  std::istringstream in(dump);
  long expect = 1;
  std::size_t marks = 0;
  for (std::string token; in >> token;) {
    if (token.rfind("DFAIL@", 0) == 0) {
      if (token != fail_mark) return ::testing::AssertionFailure() << "mark " << token;
      ++marks;
      continue;
    }
    const std::string want = std::to_string(expect) + ":" + std::to_string(expect);
    if (token != want)
      return ::testing::AssertionFailure() << "expected " << want << ", got " << token
                                           << " in: " << dump;
    ++expect;
  }
  if (expect != n + 1)
    return ::testing::AssertionFailure() << "ended at " << expect - 1 << " of " << n << ": "
                                         << dump;
  if (marks != fails) return ::testing::AssertionFailure() << marks << " FAIL marks: " << dump;
  return ::testing::AssertionSuccess();
}

// A collector fed by a durable counter ("n:i", DFAIL@) and a forwarder (numbers, FAIL@) at
// once: the counter's part and the forwarder's, each to be checked against what the design
// promises it.
std::pair<std::string, std::string> split_durable_and_plain(const std::string& dump) {
  std::istringstream words(dump);
  std::string durable_part;
  std::string plain_part;
  for (std::string w; words >> w;) {
    const bool d = w.find(':') != std::string::npos || w.rfind("DFAIL@", 0) == 0;
    (d ? durable_part : plain_part) += w + " ";
  }
  return {durable_part, plain_part};
}

// The traffic loop, to `stream` instead of X.
std::string traffic_loop_to(const std::string& stream, int n) {
  std::string loop = traffic_loop(n);
  const std::string from = "stream_append X $i";
  loop.replace(loop.find(from), from.size(), "stream_append " + stream + " $i");
  return loop;
}

class DurableFailures : public Failures {
 protected:
  // Runs 1..n into D at site `site` (failure manager `fm`), killing `victim` once C has
  // `kill_at`; returns what C holds at the end.
  std::string run_and_kill(int site, int fm, int victim, long n, long kill_at) {
    Background* run = start_run("durable", prelude() + kDurableCounter + "durable_counter D " +
                                               std::to_string(site) + " " + std::to_string(fm) +
                                               "\n" + traffic_loop_to("D", static_cast<int>(n)));
    if (run == nullptr) return {};
    EXPECT_TRUE(leader_->wait_for_output("[0] C " + std::to_string(kill_at) + ":", 20s))
        << leader_->out() << run->err();
    kill_site(victim);
    EXPECT_TRUE(leader_reported(site_failed(victim))) << leader_->err();
    expect_finishes(run);
    return durable_dump(n);
  }
};

TEST_F(DurableFailures, AKilledSiteLosesNothingOfADurableStream) {
  ASSERT_NO_FATAL_FAILURE(add_sites(3));
  const std::string dump = run_and_kill(2, 1, 2, 300, 100);
  EXPECT_TRUE(check_durable(dump, 300, 1, "DFAIL@1"));
  const CommandResult where = query("puts [stream_location D]\n");
  EXPECT_EQ(where.out, "1\n") << where.describe();
}

TEST_F(DurableFailures, ADurableStreamWithoutAnAppendHandlerConsumesToo) {
  ASSERT_NO_FATAL_FAILURE(add_sites(2));
  // No handler runs, so only the site's own loop can start the checkpoint that acknowledges
  // the messages: -sync appends return, and a later one comes after all of them.
  const CommandResult r = query(
      "stream_create D -site 1 -failure_manager 2 -durable\n"
      "for {set i 0} {$i < 50} {incr i} { stream_append D $i }\n"
      "puts [stream_append D last -sync]\nputs ok\n");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "\nok\n") << r.describe();
}

TEST_F(DurableFailures, ADurableStreamWhoseFailureManagerFailsCheckpointsToSiteZero) {
  ASSERT_NO_FATAL_FAILURE(add_sites(3));
  // The failure manager dies first: D goes on at site 2, checkpointing to site 0 from then
  // on; nothing is lost and D's state is intact.
  const std::string dump = run_and_kill(2, 3, 3, 300, 100);
  EXPECT_TRUE(check_durable(dump, 300, 0, ""));
}

TEST_F(DurableFailures, ADurableStreamSurvivesItsFailureManagerAndThenItsSite) {
  ASSERT_NO_FATAL_FAILURE(add_sites(3));
  Background* run = start_run("durable", prelude() + kDurableCounter + "durable_counter D 2 3\n" +
                                             traffic_loop_to("D", 300));
  ASSERT_NE(run, nullptr);
  ASSERT_TRUE(leader_->wait_for_output("[0] C 80:", 20s)) << leader_->out() << run->err();
  kill_site(3);
  EXPECT_TRUE(leader_reported(site_failed(3))) << leader_->err();
  ASSERT_TRUE(leader_->wait_for_output("[0] C 160:", 20s)) << leader_->out() << run->err();
  kill_site(2);
  EXPECT_TRUE(leader_reported(site_failed(2))) << leader_->err();
  expect_finishes(run);
  const std::string dump = durable_dump(300);
  EXPECT_TRUE(check_durable(dump, 300, 1, "DFAIL@0"));
}

TEST_F(DurableFailures, ADurableStreamThatMovesKeepsItsStateAcrossAKill) {
  ASSERT_NO_FATAL_FAILURE(add_sites(3));
  std::string loop = traffic_loop_to("D", 300);
  // Moves between sites 2 and 3 every 40 messages; site 3 is killed while D lives there or
  // moves.
  loop.replace(loop.find("  after 5\n"), 10,
               "  after 5\n  if {$i % 40 == 0} { catch {stream_move D [expr {[stream_location D] "
               "== 2 ? 3 : 2}]} }\n");
  Background* run =
      start_run("durable", prelude() + kDurableCounter + "durable_counter D 2 1\n" + loop);
  ASSERT_NE(run, nullptr);
  ASSERT_TRUE(leader_->wait_for_output("[0] C 130:", 20s)) << leader_->out() << run->err();
  kill_site(3);
  EXPECT_TRUE(leader_reported(site_failed(3))) << leader_->err();
  expect_finishes(run);
  const std::string dump = durable_dump(300);
  // D was at site 3 (recovered at 1: one FAIL@1) or at site 2 (untouched) when 3 died.
  const bool recovered = dump.find("DFAIL@1") != std::string::npos;
  EXPECT_TRUE(check_durable(dump, 300, recovered ? 1 : 0, "DFAIL@1"));
}

}  // namespace
}  // namespace mstream::e2e

namespace mstream::e2e {
namespace {

// Partitions: the leader, site 1 and the shells in one network namespace, site 2 in another,
// joined by a veth pair the test makes and removes (DESIGN.md: tests use only loopback or
// namespaces they create). Taking site 2's end of the link down cuts it off: it is declared
// failed and fenced, its streams are recovered at site 1; brought back up, it finds itself
// out of the session and joins again as a new site. Needs root (ip netns); skipped otherwise.
class Partitions : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    if (::geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
    const int tag = static_cast<int>(::getpid() % 200) + 20;
    ns_a_ = "msa" + std::to_string(::getpid());
    ns_b_ = "msb" + std::to_string(::getpid());
    veth_a_ = "mva" + std::to_string(::getpid());
    veth_b_ = "mvb" + std::to_string(::getpid());
    ip_a_ = "10.231." + std::to_string(tag) + ".1";
    ip_b_ = "10.231." + std::to_string(tag) + ".2";
    const std::vector<std::string> setup = {
        "ip netns add " + ns_a_,
        "ip netns add " + ns_b_,
        "ip link add " + veth_a_ + " type veth peer name " + veth_b_,
        "ip link set " + veth_a_ + " netns " + ns_a_,
        "ip link set " + veth_b_ + " netns " + ns_b_,
        "ip -n " + ns_a_ + " addr add " + ip_a_ + "/24 dev " + veth_a_,
        "ip -n " + ns_b_ + " addr add " + ip_b_ + "/24 dev " + veth_b_,
        "ip -n " + ns_a_ + " link set lo up",
        "ip -n " + ns_b_ + " link set lo up",
        "ip -n " + ns_a_ + " link set " + veth_a_ + " up",
        "ip -n " + ns_b_ + " link set " + veth_b_ + " up",
    };
    made_ = true;
    for (const std::string& cmd : setup)
      if (std::system((cmd + " 2>/dev/null").c_str()) != 0)
        GTEST_SKIP() << "cannot make network namespaces (" << cmd << ")";
    leader_ = Background::start(
        dir_, "leader",
        {"leader", "--listen", ip_a_ + ":0", "--failure-timeout", std::to_string(kTimeoutMs)}, 10s,
        in(ns_a_));
    ASSERT_NE(leader_, nullptr) << "the leader printed nothing";
    const std::string first = leader_->first_line();
    ASSERT_EQ(first.rfind(kLeaderReady, 0), 0u) << first;
    address_ = first.substr(std::string(kLeaderReady).size());
    site1_ = start_site("site1", ns_a_, ip_a_);
    ASSERT_NE(site1_, nullptr);
    ASSERT_TRUE(contains(site1_->first_line(), "site 1 joined")) << site1_->out();
    site2_ = start_site("site2", ns_b_, ip_b_);
    ASSERT_NE(site2_, nullptr);
    ASSERT_TRUE(contains(site2_->first_line(), "site 2 joined")) << site2_->out();
  }
  void TearDown() override {
    for (auto* d : {&run_, &site2_, &site1_, &leader_})
      if (*d) (*d)->process().signal(SIGKILL);
    for (auto* d : {&run_, &site2_, &site1_, &leader_})
      if (*d) (void)(*d)->process().wait(5s);
    if (made_) {
      (void)std::system(("ip netns del " + ns_a_ + " 2>/dev/null").c_str());
      (void)std::system(("ip netns del " + ns_b_ + " 2>/dev/null").c_str());
    }
  }
  static std::vector<std::string> in(const std::string& ns) {
    for (const char* ip : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
      if (::access(ip, X_OK) == 0) return {ip, "netns", "exec", ns};
    return {"ip", "netns", "exec", ns};
  }
  std::unique_ptr<Background> start_site(const std::string& name, const std::string& ns,
                                         const std::string& ip) {
    return Background::start(dir_, name, {"site", "--leader", address_, "--listen", ip + ":0"}, 10s,
                             in(ns));
  }
  void link(bool up) {
    const std::string cmd = "ip -n " + ns_b_ + " link set " + veth_b_ + (up ? " up" : " down");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  CommandResult query(const std::string& script) {
    dir_.write("query.tcl", script);
    return run_mstream(dir_, {"run", "--session", address_, "query.tcl"}, 30s, "", in(ns_a_));
  }

  TempDir dir_;
  bool made_ = false;
  std::string ns_a_, ns_b_, veth_a_, veth_b_, ip_a_, ip_b_, address_;
  std::unique_ptr<Background> leader_, site1_, site2_, run_;
};

TEST_F(Partitions, ACutOffSiteIsFencedItsStreamsRecoveredAndItRejoinsWhenTheLinkComesBack) {
  // D (durable) and X (not) at site 2, failure manager site 1; the shell feeds both.
  std::string loop = traffic_loop(300);
  const std::string to_x = "  stream_append X $i\n";
  loop.replace(loop.find(to_x), to_x.size(), to_x + "  stream_append D $i\n");
  dir_.write("traffic.tcl",
             prelude() + kDurableCounter + "forwarder X 2 1\ndurable_counter D 2 1\n" + loop);
  run_ = Background::start(dir_, "traffic", {"run", "--session", address_, "traffic.tcl"}, 20s,
                           in(ns_a_));
  ASSERT_NE(run_, nullptr);
  ASSERT_TRUE(leader_->wait_for_output("[0] C 100:100\n", 20s)) << leader_->out() << run_->err();
  ASSERT_NO_FATAL_FAILURE(link(false));
  EXPECT_TRUE(wait_until([&] { return contains(leader_->err(), "site 2 failed: not heard from"); },
                         kDetection))
      << leader_->err();
  // Cut off, site 2 hears nothing from the leader either: it leaves the session.
  EXPECT_TRUE(wait_until([&] { return contains(site2_->err(), "left the session"); }, kDetection))
      << site2_->err();
  EXPECT_EQ(run_->process().wait(kRunBound), 0) << run_->out() << run_->err();

  std::string dump;
  wait_until(
      [&] {
        dump = query("puts [lindex [stream_append C dump -sync] 0]\n").out;
        return dump.find("300:300") != std::string::npos;
      },
      10s);
  // D's messages ("n:i", DFAIL@) and X's (numbers, FAIL@) interleave at C: each is checked
  // against what the design promises it, D exactly once with its state, X guarantee 6.
  const auto [durable_part, plain_part] = split_durable_and_plain(dump);
  EXPECT_TRUE(check_durable(durable_part, 300, 1, "DFAIL@1"));
  EXPECT_TRUE(check_collector(split_record(plain_part), 300, 1, "FAIL@1"));

  // The link back: site 2 joins again, as site 3, and hosts streams.
  ASSERT_NO_FATAL_FAILURE(link(true));
  EXPECT_TRUE(site2_->wait_for_output("mstream: site 3 joined", 20s))
      << site2_->out() << site2_->err();
  EXPECT_TRUE(contains(site2_->err(), "site 2 joins the session again")) << site2_->err();
  const CommandResult r = query(
      "stream_create Z -site 3\nregister_agent Z {} { on_stream_append { return [my_id] } }\n"
      "puts [stream_append Z hi -sync]\nputs [site_list]\nputs [stream_location D]\n");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "3\n0 1 3\n1\n") << r.describe();
}

// The leader's own failure (`mstream leader --state DIR`, doc/session.md "A restarted leader"):
// the leader is killed with SIGKILL in the middle of traffic and started again with the same
// address and state directory. The sites stay members (handlers paused while it is away), the
// session resumes where the leader's durable state left it, and nothing of a durable stream
// is lost or consumed twice. Here C and P live at site 1: site 0's streams die with the
// leader's process like a failed site's (RestartedLeaderRecoversTheStreamsOfSiteZero).
class LeaderRestarts : public Failures {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    ASSERT_NO_FATAL_FAILURE(start_leader("127.0.0.1:0"));
  }
  void start_leader(const std::string& listen) {
    leader_ = Background::start(dir_, "leader" + std::to_string(++leaders_),
                                {"leader", "--listen", listen, "--failure-timeout",
                                 std::to_string(kTimeoutMs), "--state", dir_.file("state")});
    ASSERT_NE(leader_, nullptr) << "the leader printed nothing";
    const std::string first = leader_->first_line();
    ASSERT_EQ(first.rfind(kLeaderReady, 0), 0u) << first << leader_->err();
    address_ = first.substr(std::string(kLeaderReady).size());
  }
  // Kills the leader, waits until both sites paused their handlers for want of it (the
  // failure timeout), and starts it again at its address.
  void restart_leader() {
    leader_->process().signal(SIGKILL);
    EXPECT_TRUE(leader_->process().wait(5s).has_value()) << "the leader did not die";
    dead_.push_back(std::move(leader_));
    for (int id : {1, 2})
      EXPECT_TRUE(
          wait_until([&] { return contains(site(id).err(), "handlers paused"); }, kDetection))
          << site(id).err();
    ASSERT_NO_FATAL_FAILURE(start_leader(address_));
    EXPECT_TRUE(leader_->wait_for_output("mstream: leader resumed its session", 5s))
        << leader_->out() << leader_->err();
  }
  // Both sites took the leader back, and neither left the session.
  void expect_sites_resumed() {
    for (int id : {1, 2}) {
      EXPECT_TRUE(wait_until([&] { return contains(site(id).err(), "handlers resume"); }, 10s))
          << site(id).err();
      EXPECT_FALSE(contains(site(id).err(), "left the session")) << site(id).err();
    }
  }
  std::vector<std::unique_ptr<Background>> dead_;
  int leaders_ = 0;
};

TEST_F(LeaderRestarts, KilledLeaderResumesTheSessionAndADurableStreamLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(add_sites(2));
  constexpr long kN = 300;
  Background* run = start_run("traffic", prelude(" -site 1") + kDurableCounter +
                                             "durable_counter D 2 1\n" + traffic_loop_to("D", kN));
  ASSERT_NE(run, nullptr);
  ASSERT_TRUE(site(1).wait_for_output("[1] C 100:100\n", 20s)) << site(1).out() << run->err();
  ASSERT_NO_FATAL_FAILURE(restart_leader());
  expect_finishes(run);
  expect_sites_resumed();

  const std::string dump = durable_dump(kN);
  EXPECT_TRUE(check_durable(dump, kN, 0, "DFAIL@1"));
  // The session goes on: the same sites, the streams where they were, control requests work.
  const CommandResult r = query(
      "puts [site_list]\nputs [stream_location D]\nstream_move D 1\nputs [stream_location D]\n"
      "stream_create E -site 2\nregister_agent E {} { on_stream_append { return [my_id] } }\n"
      "puts [stream_append E hi -sync]\n");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "0 1 2\n2\n1\n2\n") << r.describe();
}

// Site 0's streams die with the leader's process; the restarted leader recovers them like
// those of a failed site: X (site 0, failure manager site 1) at site 1, and the durable D
// (site 0, failure manager site 0) at site 0 from its checkpoint in the same state directory.
TEST_F(LeaderRestarts, RestartedLeaderRecoversTheStreamsOfSiteZero) {
  ASSERT_NO_FATAL_FAILURE(add_sites(2));
  constexpr long kN = 200;
  std::string loop = traffic_loop_to("D", kN);
  const std::string to_d = "  stream_append D $i\n";
  loop.replace(loop.find(to_d), to_d.size(), to_d + "  stream_append X $i\n");
  Background* run = start_run("traffic", prelude(" -site 1") + kDurableCounter +
                                             "forwarder X 0 1\ndurable_counter D 0 0\n" + loop);
  ASSERT_NE(run, nullptr);
  ASSERT_TRUE(site(1).wait_for_output("[1] C 60:60\n", 20s)) << site(1).out() << run->err();
  ASSERT_NO_FATAL_FAILURE(restart_leader());
  expect_finishes(run);
  expect_sites_resumed();

  const std::string dump = durable_dump(kN);
  const auto [durable_part, plain_part] = split_durable_and_plain(dump);
  EXPECT_TRUE(check_durable(durable_part, kN, 1, "DFAIL@0"));
  EXPECT_TRUE(check_collector(split_record(plain_part), kN, 1, "FAIL@1"));
  const CommandResult r = query("puts [stream_location X]\nputs [stream_location D]\n");
  EXPECT_EQ(r.out, "1\n0\n") << r.describe();
}

// Only a crash leaves a state to resume: a clean stop ends the session and removes it. A state
// that is not one is refused at startup, naming the file, and left as it was.
TEST_F(LeaderRestarts, ACleanStopRemovesTheStateAndAnUnreadableOneIsRefused) {
  ASSERT_NO_FATAL_FAILURE(add_sites(1));
  const std::string db = dir_.file("state") + "/leader.db";
  EXPECT_TRUE(std::filesystem::exists(db));
  EXPECT_EQ(leader_->stop(), 0);
  EXPECT_FALSE(std::filesystem::exists(db));
  EXPECT_TRUE(wait_until([&] { return !site(1).process().running(); }, 10s))
      << "the site was not told to stop";

  write_file(db, "this is not a database, and it must survive the refusal\n");
  const CommandResult r =
      run_mstream(dir_, {"leader", "--listen", "127.0.0.1:0", "--state", dir_.file("state")}, 20s);
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_TRUE(contains(r.err, "leader.db")) << r.describe();
  EXPECT_EQ(read_file(db), "this is not a database, and it must survive the refusal\n");
}

}  // namespace
}  // namespace mstream::e2e
