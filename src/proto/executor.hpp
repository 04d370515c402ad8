#pragma once
// Executor: where a node runs work that may take long (a site's handlers), as the drivers
// provide it. The simulator runs it inline, on its one thread, so a run stays deterministic;
// the real driver runs it on a few worker threads (runtime::WorkerPool), each a "lane".
// Work submitted to one lane runs in submission order, one at a time, always on the same
// thread (a Tcl interpreter may only be used by the thread that made it); lanes run in
// parallel. Each work's `done` then runs on the driver's thread.
//
// Thread-safety: submit() and run_done() are called by the driver's thread only.

#include <cstddef>
#include <functional>

namespace mstream::proto {

class Executor {
 public:
  virtual ~Executor() = default;
  // At least 1.
  virtual std::size_t lanes() const = 0;
  // REQUIRES: lane < lanes(). `work` runs on the lane's thread; `done` (may be empty) runs on
  // the driver's thread after it, from run_done() or, inline, before submit() returns.
  virtual void submit(std::size_t lane, std::function<void()> work,
                      std::function<void()> done) = 0;
  // Runs the `done` of every work finished so far, in the order they finished.
  virtual void run_done() = 0;
  // Whether some finished work's `done` waits for run_done().
  virtual bool has_done() const = 0;
};

// Runs everything at once on the calling thread (the simulator; tests).
class InlineExecutor final : public Executor {
 public:
  std::size_t lanes() const override { return 1; }
  void submit(std::size_t, std::function<void()> work, std::function<void()> done) override {
    work();
    if (done) done();
  }
  void run_done() override {}
  bool has_done() const override { return false; }
};

}  // namespace mstream::proto
