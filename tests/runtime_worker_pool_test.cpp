// WorkerPool: the real driver's executor of handlers (src/runtime/worker_pool.hpp).
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/worker_pool.hpp"

namespace mstream::runtime {
namespace {

using namespace std::chrono_literals;

// Bounded: waits until the pool signals finished work, up to `limit`.
bool wait_readable(int fd, std::chrono::milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(limit.count())) == 1;
}

void run_done_until(WorkerPool& pool, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    (void)wait_readable(pool.wake_fd(), 100ms);
    pool.run_done();
  }
}

TEST(WorkerPool, RefusesNoLanes) {
  auto pool = WorkerPool::start(0);
  ASSERT_FALSE(pool.ok());
  EXPECT_EQ(pool.status().code(), Status::Code::kInvalidArgument);
}

TEST(WorkerPool, ALanesWorkRunsInOrderOnOneThreadThatIsNotTheCallers) {
  auto pool = WorkerPool::start(2);
  ASSERT_TRUE(pool.ok());
  std::vector<int> order;  // written by lane 1's thread only, read after every done
  std::vector<std::thread::id> threads;
  int done = 0;
  for (int i = 0; i < 100; ++i) {
    (*pool)->submit(
        1,
        [&, i] {
          order.push_back(i);
          threads.push_back(std::this_thread::get_id());
        },
        [&] { ++done; });
  }
  run_done_until(**pool, [&] { return done == 100; });
  ASSERT_EQ(done, 100);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
  for (const auto& t : threads) {
    EXPECT_EQ(t, threads.front());
    EXPECT_NE(t, std::this_thread::get_id());
  }
}

TEST(WorkerPool, DoneRunsOnlyInRunDoneOnTheCallersThread) {
  auto pool = WorkerPool::start(1);
  ASSERT_TRUE(pool.ok());
  std::atomic<bool> worked{false};
  std::thread::id done_on;
  (*pool)->submit(
      0, [&] { worked = true; }, [&] { done_on = std::this_thread::get_id(); });
  ASSERT_TRUE(wait_readable((*pool)->wake_fd(), 10'000ms));
  EXPECT_TRUE(worked.load());
  EXPECT_TRUE((*pool)->has_done());
  EXPECT_EQ(done_on, std::thread::id());  // not yet
  (*pool)->run_done();
  EXPECT_EQ(done_on, std::this_thread::get_id());
  EXPECT_FALSE((*pool)->has_done());
  EXPECT_FALSE(wait_readable((*pool)->wake_fd(), 0ms));  // cleared by run_done()
}

TEST(WorkerPool, LanesRunInParallel) {
  auto pool = WorkerPool::start(2);
  ASSERT_TRUE(pool.ok());
  // Lane 0 waits for lane 1: with one thread for both this would never end (bounded here).
  std::atomic<bool> lane1_ran{false};
  std::atomic<bool> lane0_saw{false};
  (*pool)->submit(0,
                  [&] {
                    const auto deadline = std::chrono::steady_clock::now() + 10s;
                    while (!lane1_ran && std::chrono::steady_clock::now() < deadline)
                      std::this_thread::sleep_for(1ms);
                    lane0_saw = lane1_ran.load();
                  },
                  {});
  (*pool)->submit(1, [&] { lane1_ran = true; }, {});
  pool->reset();  // runs what was submitted, then joins
  EXPECT_TRUE(lane0_saw.load());
}

TEST(WorkerPool, StoppingRunsEverySubmittedWorkAndDropsUncollectedDones) {
  auto pool = WorkerPool::start(3);
  ASSERT_TRUE(pool.ok());
  std::atomic<int> worked{0};
  bool done_ran = false;
  for (int i = 0; i < 300; ++i)
    (*pool)->submit(
        i % 3, [&] { ++worked; }, [&] { done_ran = true; });
  pool->reset();
  EXPECT_EQ(worked.load(), 300);
  EXPECT_FALSE(done_ran);
}

}  // namespace
}  // namespace mstream::runtime
