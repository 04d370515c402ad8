#pragma once
// DeferredExecutor: the simulator's stand-in for a site's worker threads. Work submitted to a
// lane does not run at once: at each later run_done() (one per step of the node) the oldest
// work of each lane finishes with a seeded chance, so network events, control messages and
// other streams' work interleave with a stream's handlers as they do with real threads, and
// the run is still a function of its seed. Lanes finish in FIFO order, like real ones.
//
// Thread-safety: none; the simulator's one thread.

#include <deque>
#include <functional>
#include <vector>

#include "proto/executor.hpp"
#include "sim/random.hpp"

namespace mstream::sim {

class DeferredExecutor final : public proto::Executor {
 public:
  // finish_chance in (0, 1]: per lane and run_done(), the chance its oldest work finishes.
  DeferredExecutor(std::size_t lanes, std::uint64_t seed, double finish_chance)
      : queues_(lanes == 0 ? 1 : lanes), rng_(seed), finish_chance_(finish_chance) {}

  std::size_t lanes() const override { return queues_.size(); }
  void submit(std::size_t lane, std::function<void()> work, std::function<void()> done) override {
    queues_[lane].push_back({std::move(work), std::move(done)});
    ++queued_;
  }
  void run_done() override {
    for (auto& q : queues_) {
      // Work that a `done` submits waits for a later run_done().
      for (std::size_t n = q.size();
           n > 0 && (finish_chance_ >= 1.0 || rng_.chance(finish_chance_)); --n) {
        Task t = std::move(q.front());
        q.pop_front();
        --queued_;
        t.work();
        if (t.done) t.done();  // may submit more; it waits for a later run_done()
      }
    }
  }
  // Work not yet finished counts: the node must keep stepping until it is.
  bool has_done() const override { return queued_ > 0; }

 private:
  struct Task {
    std::function<void()> work;
    std::function<void()> done;
  };
  std::vector<std::deque<Task>> queues_;
  std::size_t queued_ = 0;
  Rng rng_;
  double finish_chance_;
};

}  // namespace mstream::sim
