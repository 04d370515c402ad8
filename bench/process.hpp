#pragma once
// Process placement for the two-process benchmarks: which cores the parent and its child run
// on, and the link between them. The child itself is a runtime::ChildProcess, the project's
// one way to fork with bounded waits and with the child killed and reaped on every path; what
// is here is benchmark policy on top of it: pinning, and the words the two processes exchange.
//
// Thread-safety: none; fork from a single-threaded process.

#include <sched.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "mstream/status.hpp"
#include "runtime/child_process.hpp"

namespace mstream::bench {

using Clock = std::chrono::steady_clock;

// Which cores the parent and the child of a two-process benchmark run on; -1 is unpinned.
struct Placement {
  int parent_core = -1;
  int child_core = -1;
  bool pinned() const { return parent_core >= 0 && child_core >= 0; }
  std::string describe() const;
};

// Two different cores this process may run on, or unpinned when `pin` is false or fewer than
// two are allowed.
Placement choose_placement(bool pin);
// Pins the calling thread (and the threads it creates later) to `core`; false on failure.
bool pin_to_core(int core);

// Restores the calling thread's CPU affinity on destruction, so a benchmark that pinned the
// parent does not leave the `mstream` process pinned.
class AffinityGuard {
 public:
  AffinityGuard();
  ~AffinityGuard();
  AffinityGuard(const AffinityGuard&) = delete;
  AffinityGuard& operator=(const AffinityGuard&) = delete;

  // pin_to_core(core) until this guard goes away. Errors: kIoError.
  Status pin(int core);

 private:
  cpu_set_t saved_;
  bool ok_ = false;
};

// One process's end of the link between a benchmark's parent and child: 64-bit words (ports,
// stop signals), each written as one decimal text line over the child's pipes. Owns no fd.
class Link {
 public:
  // The child's end: it reads `input` and writes to `output_fd`; both must outlive the Link.
  Link(runtime::LineReader& input, int output_fd) : input_(&input), output_fd_(output_fd) {}
  // The parent's end of the link to `child`, which must outlive the Link and stay in place.
  explicit Link(runtime::ChildProcess& child) : Link(child.output(), child.input_fd()) {}

  bool send(std::uint64_t word);
  // Waits at most `timeout` for a word; nullopt on timeout, EOF, error or a malformed line.
  std::optional<std::uint64_t> receive(std::chrono::milliseconds timeout);
  // A word if one is already there; never waits.
  std::optional<std::uint64_t> try_receive();

 private:
  runtime::LineReader* input_;
  int output_fd_;
};

// Forks a benchmark's child with runtime::ChildProcess::fork. The child pins itself to `core`
// (if >= 0) before `body` runs, and exits with body's result (2 if it could not pin).
// Errors: those of ChildProcess::fork.
Result<runtime::ChildProcess> fork_pinned(int core,
                                          const std::function<int(Link& to_parent)>& body);

// Seconds since an arbitrary epoch, as a double, for rates.
inline double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace mstream::bench
