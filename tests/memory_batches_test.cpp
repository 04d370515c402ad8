// Delivery batches in a whole session in memory (memory_session.hpp): site 1's handlers run on
// a lane the test holds and releases, so that what is on the lane at once, and in what order
// messages run when a batch stops early, can be seen.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "memory_session.hpp"

namespace mstream {
namespace {

using testing::MemorySession;

// Lanes whose work waits while held (all of them, or one), then runs (with its `done`) at the
// site's next step, in the order it was submitted.
class HeldLane final : public proto::Executor {
 public:
  explicit HeldLane(std::size_t lanes = 1) : lanes_(lanes) {}
  std::size_t lanes() const override { return lanes_; }
  void submit(std::size_t lane, std::function<void()> work, std::function<void()> done) override {
    jobs_.push_back({lane, std::move(work), std::move(done)});
    ++submitted;
  }
  void run_done() override {
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if (held || it->lane == held_lane) {
        ++it;
        continue;
      }
      Job j = std::move(*it);
      it = jobs_.erase(it);
      j.work();
      if (j.done) j.done();
      it = jobs_.begin();  // `done` may have submitted more
    }
  }
  bool has_done() const override {
    for (const Job& j : jobs_)
      if (!held && j.lane != held_lane) return true;
    return false;
  }
  // Held work: how much, and running the oldest now.
  std::size_t waiting() const { return jobs_.size(); }
  void run_one() {
    Job j = std::move(jobs_.front());
    jobs_.pop_front();
    j.work();
    if (j.done) j.done();
  }

  bool held = false;
  std::optional<std::size_t> held_lane;
  std::size_t submitted = 0;

 private:
  struct Job {
    std::size_t lane = 0;
    std::function<void()> work;
    std::function<void()> done;
  };
  std::size_t lanes_;
  std::deque<Job> jobs_;
};

// Each message is logged with the site it ran at; the log travels with the stream.
constexpr const char* kLogger = R"(
set log {}
briefcase log
on_stream_append {
  lappend log "$argv@[my_id]"
  if {$argv eq "go"} { stream_relocate 2 }
  return [join $log ,]
}
)";

struct Session {
  // sliced: the lane's clock reads a millisecond more at each reading, so that a batch stops at
  // its first look at it; else the site has no clock, and no slice.
  explicit Session(std::size_t batch, bool sliced = false)
      : s({.sites = 3,
           .leader_state = nullptr,
           .site_options =
               [this, batch, sliced](site::SiteOptions* o) {
                 if (o->self != 1 || o->shell) return;
                 o->executor = lane;
                 o->delivery_batch = batch;
                 o->delivery_slice = proto::kMillisecond;
                 if (sliced)
                   o->lane_clock = [t = proto::Time{0}]() mutable {
                     return t += proto::kMillisecond;
                   };
               }}),
        shell(s.join_shell()) {
    tcl::CreateOptions at;
    at.site = 1;
    EXPECT_TRUE(shell.stream_create("b", at).ok());
    EXPECT_TRUE(shell.register_agent("b", "", kLogger, "", false).ok());
  }
  void append(const std::string& m) { EXPECT_TRUE(shell.stream_append("b", m, false).ok()); }
  std::string log_after(const std::string& m) {
    lane->held = false;
    auto r = shell.stream_append("b", m, /*sync=*/true);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r->results : std::string();
  }

  std::shared_ptr<HeldLane> lane = std::make_shared<HeldLane>();
  MemorySession s;
  site::ShellApi& shell;
};

// The site does not wait for a batch's end to hand over the next one (the lane would wait for
// the site's thread in between), but never more than one ahead.
TEST(MemoryBatches, TheNextBatchGoesToTheLaneWhileOneRuns) {
  Session t(2);
  t.lane->held = true;
  for (const char* m : {"1", "2", "3", "4", "5", "6"}) t.append(m);
  EXPECT_TRUE(t.s.run_until([&] { return t.lane->waiting() >= 2; }, 200));
  (void)t.s.run_until([] { return false; }, 50);
  EXPECT_EQ(t.lane->waiting(), 2u);
  EXPECT_EQ(t.log_after("7"), "1@1,2@1,3@1,4@1,5@1,6@1,7@1");
}

// A handler that moves its own stream ends its batch; the batch handed over behind it runs
// nothing, and every message not run is delivered at the new site, in order.
TEST(MemoryBatches, BehindABatchThatStoppedNothingRunsAndTheOrderHolds) {
  Session t(2);
  t.lane->held = true;
  for (const char* m : {"go", "2", "3", "4", "5"}) t.append(m);
  EXPECT_TRUE(t.s.run_until([&] { return t.lane->waiting() >= 2; }, 200));
  EXPECT_EQ(t.log_after("6"), "go@1,2@2,3@2,4@2,5@2,6@2");
  auto where = t.shell.stream_location("b");
  ASSERT_TRUE(where.ok());
  EXPECT_EQ(*where, 2u);
}

// An operation for a stream (here a move another stream's handler asks for) stops its batches
// after the handler that is running, rather than after the batches: none had started, so
// every message runs at the new site.
TEST(MemoryBatches, AnOperationStopsTheBatchesInFlight) {
  Session t(4);
  tcl::CreateOptions at;
  at.site = 3;
  ASSERT_TRUE(t.shell.stream_create("mover", at).ok());
  ASSERT_TRUE(
      t.shell.register_agent("mover", "", "on_stream_append { stream_move b 2 }", "", false).ok());
  t.lane->held = true;
  for (const char* m : {"1", "2", "3", "4", "5", "6", "7", "8"}) t.append(m);
  EXPECT_TRUE(t.s.run_until([&] { return t.lane->waiting() >= 2; }, 200));
  ASSERT_TRUE(t.shell.stream_append("mover", "now", false).ok());
  // Long enough for the leader's order to reach site 1 (a simulated millisecond per round).
  (void)t.s.run_until([] { return false; }, 300);
  EXPECT_EQ(t.log_after("9"), "1@2,2@2,3@2,4@2,5@2,6@2,7@2,8@2,9@2");
}

// A batch whose slice ran out stops there (the lane's other streams get their turn); its rest
// and the batch behind it go back to the queue in order, and run at the same site.
TEST(MemoryBatches, ABatchWhoseSliceRanOutGivesItsRestBackInOrder) {
  Session t(16, /*sliced=*/true);
  t.lane->held = true;
  std::string expected = "1@1";
  t.append("1");
  for (int i = 2; i <= 20; ++i) {
    t.append(std::to_string(i));
    expected += "," + std::to_string(i) + "@1";
  }
  EXPECT_TRUE(t.s.run_until([&] { return t.lane->waiting() >= 2; }, 200));
  const std::size_t before = t.lane->submitted;
  EXPECT_EQ(t.log_after("21"), expected + ",21@1");
  // Without the stop: the two batches, and one for the last message.
  EXPECT_GT(t.lane->submitted - before, 1u) << "the slice never ran out";
}

// Work for a stream the site does not host (a Finalize of an agent the stream took away) ends
// on the lane before the stream's arrival there: its end must not make the arrived stream
// look idle, or a message from this site would be delivered before the arrival installed its
// agents, and consumed with no handler run.
TEST(MemoryBatches, AFinalizeForALeftStreamDoesNotEndItsArrivalsWork) {
  // Site 2 has two lanes: the stream's, which the test holds, and the feeder's.
  auto lane = std::make_shared<HeldLane>(2);
  MemorySession s({.sites = 3, .leader_state = nullptr, .site_options = [&](site::SiteOptions* o) {
                     if (o->self == 2 && !o->shell) o->executor = lane;
                   }});
  site::ShellApi& shell = s.join_shell();
  tcl::CreateOptions at;
  at.site = 2;
  for (const char* name : {"s", "f0", "f1"}) ASSERT_TRUE(shell.stream_create(name, at).ok());
  const std::size_t s_lane = s.site(2).directory().find("s")->id % 2;
  const std::string feeder = s.site(2).directory().find("f0")->id % 2 != s_lane ? "f0" : "f1";
  ASSERT_NE(s.site(2).directory().find(feeder)->id % 2, s_lane);
  ASSERT_TRUE(shell.register_agent("s", "", kLogger, "", false).ok());
  ASSERT_TRUE(
      shell
          .register_agent("s", "", "on_stream_append { if {$argv eq {bye}} agent_exit }", "", false)
          .ok());
  ASSERT_TRUE(
      shell.register_agent(feeder, "", "on_stream_append { stream_append s m }", "", false).ok());
  ASSERT_TRUE(shell.stream_move("s", 3).ok());
  at.site = 3;
  ASSERT_TRUE(shell.stream_create("mover", at).ok());
  ASSERT_TRUE(
      shell.register_agent("mover", "", "on_stream_append { stream_move s 2 }", "", false).ok());

  // The feeder opens s now: an open asked while s moves would wait for the move's end.
  ASSERT_TRUE(shell.stream_append(feeder, "go", false).ok());
  (void)s.run_until([] { return false; }, 100);
  ASSERT_TRUE(shell.stream_append("s", "x", true).ok());

  lane->held_lane = s_lane;
  ASSERT_TRUE(shell.stream_append("s", "bye", false).ok());  // its agent's Finalize at site 2
  ASSERT_TRUE(s.run_until([&] { return lane->waiting() >= 1; }, 500));
  ASSERT_TRUE(shell.stream_append("mover", "now", false).ok());  // s arrives at site 2
  ASSERT_TRUE(s.run_until([&] { return lane->waiting() >= 2; }, 500));
  lane->run_one();  // the Finalize ends; the arrival's work waits
  ASSERT_TRUE(shell.stream_append(feeder, "go", false).ok());  // "m" to s, from site 2
  (void)s.run_until([] { return false; }, 100);

  lane->held_lane.reset();
  auto r = shell.stream_append("s", "z", /*sync=*/true);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->results, "m@3,x@3,bye@3,m@2,z@2");
}

}  // namespace
}  // namespace mstream
