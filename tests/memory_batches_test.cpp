// Delivery batches in a whole session in memory (memory_session.hpp): site 1's handlers run on
// a lane the test holds and releases, so that what is on the lane at once, and in what order
// messages run when a batch stops early, can be seen.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <string>

#include "memory_session.hpp"

namespace mstream {
namespace {

using testing::MemorySession;

// One lane whose work waits while held, then runs (with its `done`) at the site's next step.
class HeldLane final : public proto::Executor {
 public:
  std::size_t lanes() const override { return 1; }
  void submit(std::size_t, std::function<void()> work, std::function<void()> done) override {
    jobs_.push_back({std::move(work), std::move(done)});
    ++submitted;
  }
  void run_done() override {
    while (!held && !jobs_.empty()) {
      Job j = std::move(jobs_.front());
      jobs_.pop_front();
      j.work();
      if (j.done) j.done();
    }
  }
  bool has_done() const override { return !held && !jobs_.empty(); }
  std::size_t waiting() const { return jobs_.size(); }

  bool held = false;
  std::size_t submitted = 0;

 private:
  struct Job {
    std::function<void()> work;
    std::function<void()> done;
  };
  std::deque<Job> jobs_;
};

// Each message is logged with the site it ran at; the log travels with the stream.
constexpr const char* kLogger = R"(
set log {}
briefcase log
on_stream_append {
  lappend log "$argv@[my_id]"
  if {$argv eq "go"} { stream_relocate 2 }
  if {$argv eq "slow"} { after 3 }
  return [join $log ,]
}
)";

struct Session {
  explicit Session(std::size_t batch)
      : s({.sites = 3,
           .leader_state = nullptr,
           .site_options =
               [this, batch](site::SiteOptions* o) {
                 if (o->self != 1 || o->shell) return;
                 o->executor = lane;
                 o->delivery_batch = batch;
                 o->delivery_slice = std::chrono::milliseconds(1);
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
  Session t(16);
  t.lane->held = true;
  std::string expected = "slow@1";
  t.append("slow");
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

}  // namespace
}  // namespace mstream
