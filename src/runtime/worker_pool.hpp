#pragma once
// WorkerPool: the real driver's proto::Executor: one thread per lane, each with its own FIFO of
// work, and an eventfd that becomes readable when finished work waits for run_done(), so the
// event loop sleeps on its socket and this one descriptor together (NodeLoop::set_wake_fd).
//
// Thread-safety: submit(), run_done() and the destructor are for one driver thread (as
// proto::Executor says); has_done() may be called from any thread.
// Lifetime: the destructor runs every work already submitted, then joins the threads, and
// drops the `done` of work that had not been collected.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "mstream/status.hpp"
#include "proto/executor.hpp"

namespace mstream::runtime {

class WorkerPool final : public proto::Executor {
 public:
  // Errors: kInvalidArgument (no lanes), kIoError (no eventfd).
  static Result<std::unique_ptr<WorkerPool>> start(std::size_t lanes);
  ~WorkerPool() override;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  std::size_t lanes() const override { return lanes_.size(); }
  void submit(std::size_t lane, std::function<void()> work, std::function<void()> done) override;
  void run_done() override;
  bool has_done() const override { return finished_count_.load(std::memory_order_acquire) > 0; }

  // Readable while has_done(); run_done() clears it.
  int wake_fd() const { return wake_fd_; }

 private:
  struct Task {
    std::function<void()> work;
    std::function<void()> done;
  };
  struct Lane {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Task> queue;  // GUARDED_BY(mu)
    bool stop = false;       // GUARDED_BY(mu)
    std::thread thread;
  };

  explicit WorkerPool(int wake_fd) : wake_fd_(wake_fd) {}
  void serve(Lane& lane);
  void finish(std::function<void()> done);

  std::vector<std::unique_ptr<Lane>> lanes_;
  int wake_fd_ = -1;
  std::mutex finished_mu_;
  std::vector<std::function<void()>> finished_;  // GUARDED_BY(finished_mu_)
  std::atomic<std::size_t> finished_count_{0};
};

}  // namespace mstream::runtime
