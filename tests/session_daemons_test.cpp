// A real session made by hand, as on several machines: `mstream leader`, `mstream site`s
// joining it, scripts run against it with `mstream run --session`, `mstream shell` fed from
// stdin, and `mstream status --json` (DESIGN.md "The mstream command (contract)").

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "e2e_support.hpp"

namespace mstream::e2e {
namespace {

constexpr const char* kLeaderReady = "mstream: leader listening on ";

class Daemons : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    leader_ = Background::start(dir_, "leader", {"leader", "--listen", "127.0.0.1:0"});
    ASSERT_NE(leader_, nullptr) << "the leader printed nothing";
    const std::string first = leader_->first_line();
    ASSERT_EQ(first.rfind(kLeaderReady, 0), 0u) << first;
    address_ = first.substr(std::string(kLeaderReady).size());
    ASSERT_NE(address_.find(':'), std::string::npos) << address_;
    ASSERT_FALSE(contains(address_, ":0")) << "the leader must print the port it bound";
  }
  void TearDown() override {
    for (auto& site : sites_) site->stop();
    if (leader_) leader_->stop();
  }

  // Starts a site (with `extra` arguments); returns the id it printed in "mstream: site N
  // joined ADDRESS".
  int add_site(const std::vector<std::string>& extra = {}) {
    const std::string name = "site" + std::to_string(sites_.size() + 1);
    std::vector<std::string> args = {"site", "--leader", address_};
    args.insert(args.end(), extra.begin(), extra.end());
    auto site = Background::start(dir_, name, args);
    if (site == nullptr) {
      ADD_FAILURE() << "the site printed nothing";
      return -1;
    }
    const std::string first = site->first_line();
    int id = -1;
    char joined[256] = {};
    if (std::sscanf(first.c_str(), "mstream: site %d joined %255s", &id, joined) != 2 ||
        joined != address_) {
      ADD_FAILURE() << "unexpected first line: " << first;
      return -1;
    }
    sites_.push_back(std::move(site));
    return id;
  }

  std::optional<Json> status_json() {
    const CommandResult r = run_mstream(dir_, {"status", "--session", address_, "--json"}, 20s);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    const auto lines = r.lines();
    EXPECT_EQ(lines.size(), 1u) << r.out;
    if (lines.size() != 1) return std::nullopt;
    auto json = JsonParser::parse(lines[0]);
    EXPECT_TRUE(json.has_value()) << "not JSON: " << lines[0];
    return json;
  }

  // The streams of a status object as {name: site}.
  static std::map<std::string, int> stream_sites(const Json& status) {
    std::map<std::string, int> out;
    for (const Json& s : status["streams"].array()) {
      out[s["name"].string()] = static_cast<int>(s["site"].number());
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Background> leader_;
  std::vector<std::unique_ptr<Background>> sites_;
  std::string address_;
};

TEST_F(Daemons, SitesJoinWithIdsInOrder) {
  EXPECT_EQ(add_site(), 1);
  EXPECT_EQ(add_site(), 2);
  EXPECT_EQ(add_site(), 3);
}

TEST_F(Daemons, StatusJsonListsEverySiteAndStream) {
  ASSERT_EQ(add_site(), 1);
  ASSERT_EQ(add_site(), 2);
  const CommandResult made = run_script(dir_, R"(
stream_create a -site 1
stream_create b -site 2
stream_create /app/c
stream_move a 2
)",
                                        {"--session", address_});
  ASSERT_EQ(made.exit_code, 0) << made.describe();

  const auto status = status_json();
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(status->is_object());
  ASSERT_TRUE(status->has("sites") && (*status)["sites"].is_array());
  ASSERT_TRUE(status->has("streams") && (*status)["streams"].is_array());

  const std::map<int, pid_t> pids = {
      {0, leader_->pid()}, {1, sites_[0]->pid()}, {2, sites_[1]->pid()}};
  std::set<int> ids;
  for (const Json& site : (*status)["sites"].array()) {
    ASSERT_TRUE(site.is_object());
    for (const char* key : {"id", "address", "pid", "state"})
      ASSERT_TRUE(site.has(key)) << "a site without \"" << key << "\"";
    ASSERT_TRUE(site["id"].is_number() && site["pid"].is_number());
    ASSERT_TRUE(site["address"].is_string() && site["state"].is_string());
    const int id = static_cast<int>(site["id"].number());
    ids.insert(id);
    ASSERT_EQ(pids.count(id), 1u) << "unexpected site " << id;
    EXPECT_EQ(static_cast<pid_t>(site["pid"].number()), pids.at(id)) << "site " << id;
    EXPECT_EQ(site["state"].string(), "live") << "site " << id;
    const std::string& address = site["address"].string();
    EXPECT_EQ(address.rfind("127.0.0.1:", 0), 0u) << address;
    if (id == 0) {
      EXPECT_EQ(address, address_);
    }
  }
  EXPECT_EQ(ids, (std::set<int>{0, 1, 2}));

  for (const Json& stream : (*status)["streams"].array()) {
    ASSERT_TRUE(stream.has("name") && stream["name"].is_string());
    ASSERT_TRUE(stream.has("site") && stream["site"].is_number());
  }
  EXPECT_EQ(stream_sites(*status), (std::map<std::string, int>{{"a", 2}, {"b", 2}, {"/app/c", 0}}));
}

// `mstream site --stats-file F` writes its counters to F when sent SIGUSR2 (what `mstream
// bench move` reads), as whole "NAME VALUE" lines.
TEST_F(Daemons, ASiteWritesItsCountersWhenAsked) {
  const std::string stats = dir_.path() + "/site.stats";
  ASSERT_EQ(add_site({"--stats-file", stats}), 1);
  const CommandResult moved = run_script(dir_, R"(
stream_create a -site 0
register_agent a {} { on_stream_relocation { } }
stream_move a 1
)",
                                         {"--session", address_});
  ASSERT_EQ(moved.exit_code, 0) << moved.describe();
  EXPECT_FALSE(std::filesystem::exists(stats)) << "written before it was asked";
  sites_[0]->process().signal(SIGUSR2);
  std::map<std::string, std::uint64_t> counters;
  wait_until(
      [&] {
        std::ifstream in(stats);
        std::string name;
        std::uint64_t value = 0;
        while (in >> name >> value) counters[name] = value;
        return !counters.empty();
      },
      5s);
  ASSERT_FALSE(counters.empty()) << "no counters in " << stats << " within 5 s";
  EXPECT_EQ(counters["moves_in"], 1u);
  EXPECT_EQ(counters["moves_out"], 0u);
  EXPECT_GT(counters["datagrams_out"], 0u);
  EXPECT_GT(counters["datagrams_in"], 0u);
  // At least its Installed to the leader and its answer to the shell.
  EXPECT_GE(counters["control_messages_out"], 2u);
  // The agent's relocation handler ran on a worker.
  EXPECT_GE(counters["worker_jobs"], 1u);
  EXPECT_TRUE(sites_[0]->process().running()) << "SIGUSR2 stopped the site";
}

TEST_F(Daemons, RunWithSessionLeavesTheSessionRunning) {
  ASSERT_EQ(add_site(), 1);
  ASSERT_EQ(add_site(), 2);
  const std::string hello = std::string(MSTREAM_EXAMPLES_DIR) + "/hello.tcl";
  const CommandResult r = run_mstream(dir_, {"run", "--session", address_, hello}, 60s);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  // The handlers' lines are printed by the daemons of the sites they ran at.
  EXPECT_TRUE(sites_[1]->wait_for_output("[2] Hello world\n", 10s)) << sites_[1]->out();
  EXPECT_TRUE(sites_[0]->wait_for_output("[1] I am at 1\n", 10s)) << sites_[0]->out();
  EXPECT_EQ(site_lines(sites_[1]->out(), 2),
            (std::vector<std::string>{"I am at 2", "Hello world"}));
  EXPECT_EQ(site_lines(sites_[0]->out(), 1), std::vector<std::string>{"I am at 1"});

  // Every daemon still runs, and the streams stay where the script left them.
  EXPECT_TRUE(leader_->process().running());
  for (auto& site : sites_) EXPECT_TRUE(site->process().running());
  const auto status = status_json();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(stream_sites(*status), (std::map<std::string, int>{{"bar", 1}, {"foo", 1}}));

  // A second script sees them.
  const CommandResult again = run_script(
      dir_, "puts [list_streams {[a-z]*}]\nstream_append foo again\n", {"--session", address_});
  EXPECT_EQ(again.exit_code, 0) << again.describe();
  EXPECT_EQ(again.lines(), std::vector<std::string>{"{bar 1} {foo 1}"});
  EXPECT_TRUE(sites_[0]->wait_for_output("[1] again\n", 10s)) << sites_[0]->out();
}

TEST_F(Daemons, RunWithSessionEndsOnceItsMessagesAreConsumed) {
  ASSERT_EQ(add_site(), 1);
  const CommandResult first = run_script(dir_, R"(
stream_create slow -site 1
register_agent slow {} {
  set handled 0
  on_stream_append {
    if {$argv eq "count"} { return $handled }
    after 2
    incr handled
  }
}
for {set i 0} {$i < 200} {incr i} { stream_append slow $i }
)",
                                         {"--session", address_});
  ASSERT_EQ(first.exit_code, 0) << first.describe();
  // Another shell's message comes after all of them only if they were consumed already.
  const CommandResult count = run_script(dir_, "puts [lindex [stream_append slow count -sync] 0]\n",
                                         {"--session", address_});
  EXPECT_EQ(count.exit_code, 0) << count.describe();
  EXPECT_EQ(count.lines(), std::vector<std::string>{"200"});
}

TEST_F(Daemons, HandlerErrorIsReportedToTheRunThatCausedIt) {
  ASSERT_EQ(add_site(), 1);
  const CommandResult r = run_script(dir_, R"(
stream_create e -site 1
register_agent e {} { on_stream_append { error "remote boom" } }
stream_append e hi
)",
                                     {"--session", address_});
  EXPECT_EQ(r.exit_code, 3) << r.describe();
  EXPECT_EQ(count_of(r.err, "error in append handler: stream \"e\", agent 1, site 1: remote boom"),
            1u)
      << r.err;
  EXPECT_TRUE(contains(r.err, "while executing\n\"error \"remote boom\"")) << r.err;
}

TEST_F(Daemons, TempStreamsGoWithTheShellThatMadeThem) {
  ASSERT_EQ(add_site(), 1);
  const CommandResult r = run_script(dir_, R"(
stream_create kept -site 1
stream_create scratch -temp -site 1
puts [lsort [list_streams {[a-z]*}]]
)",
                                     {"--session", address_});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.lines(), std::vector<std::string>{"{kept 1} {scratch 1}"});
  std::map<std::string, int> streams;
  EXPECT_TRUE(wait_until(
      [&] {
        const auto status = status_json();
        if (status) streams = stream_sites(*status);
        return streams.count("scratch") == 0;
      },
      10s));
  EXPECT_EQ(streams, (std::map<std::string, int>{{"kept", 1}}));
}

TEST_F(Daemons, ShellReadsCommandsFromStdin) {
  ASSERT_EQ(add_site(), 1);
  ASSERT_EQ(add_site(), 2);
  const std::string input = R"(stream_create x -site 2
register_agent x {} {
  on_stream_append { puts "x got $argv"; return "done at [my_id]" }
}
stream_append x hello -sync
no_such_command
stream_location
stream_location x
puts "from the shell"
stream_move x 1
stream_append x hi -sync
)";
  const CommandResult r = run_mstream(dir_, {"shell", "--session", address_}, 30s, input);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  // Each command's result on its own line (none for an empty one), errors on stderr, and the
  // shell goes on after an error.
  EXPECT_EQ(r.lines(), (std::vector<std::string>{"x", "1", "{done at 2}", "2", "from the shell",
                                                 "1", "{done at 1}"}));
  EXPECT_TRUE(contains(r.err, "invalid command name \"no_such_command\"")) << r.err;
  EXPECT_TRUE(contains(r.err, "stream_location: no stream given and not inside a handler"))
      << r.err;
  EXPECT_TRUE(sites_[1]->wait_for_output("[2] x got hello\n", 10s)) << sites_[1]->out();
  EXPECT_TRUE(sites_[0]->wait_for_output("[1] x got hi\n", 10s)) << sites_[0]->out();
}

TEST_F(Daemons, SitesStopWhenTheLeaderStops) {
  ASSERT_EQ(add_site(), 1);
  ASSERT_EQ(add_site(), 2);
  EXPECT_EQ(leader_->stop(), 0) << leader_->err();
  for (auto& site : sites_) EXPECT_EQ(site->process().wait(10s), 0) << site->err();
}

TEST(DaemonsWithoutLeader, StatusFailsClearlyWhenNoLeaderAnswers) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const CommandResult r = run_mstream(dir, {"status", "--session", "127.0.0.1:9", "--json"}, 30s);
  EXPECT_TRUE(r.failed()) << r.describe();
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(contains(r.err, "mstream status: ")) << r.err;
}

}  // namespace
}  // namespace mstream::e2e
