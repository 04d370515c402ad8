#pragma once
// Process placement for the two-process benchmarks: a forked child with a pipe link to its
// parent, bounded waits on every read, and pinning to cores. Every child is reaped by its
// Child object: killed if it has not exited when the object goes away, so no benchmark path
// (error, timeout, exception) leaves a process behind.
//
// Thread-safety: none; fork from a single-threaded process.

#include <sched.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "mstream/status.hpp"

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

 private:
  cpu_set_t saved_;
  bool ok_ = false;
};

// One end of the parent/child link: 64-bit words over a pair of pipes. Writes of 8 bytes to a
// pipe are atomic, so a word never tears.
class Link {
 public:
  Link(int read_fd, int write_fd) : read_fd_(read_fd), write_fd_(write_fd) {}
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  bool send(std::uint64_t word);
  // Waits at most `timeout` for a word; nullopt on timeout, EOF or error.
  std::optional<std::uint64_t> receive(std::chrono::milliseconds timeout);
  // A word if one is already there; never waits.
  std::optional<std::uint64_t> try_receive() { return receive(std::chrono::milliseconds(0)); }

 private:
  int read_fd_;
  int write_fd_;
};

// A forked child process running `body`; its exit code is body's return value.
class Child {
 public:
  using Body = std::function<int(Link& to_parent)>;
  // Forks. The child pins itself to `core` (if >= 0), dies with its parent, runs body and
  // _exit()s without running the parent's atexit handlers or flushing its stdio buffers.
  // Errors: kIoError (pipe or fork failed).
  static Result<std::unique_ptr<Child>> spawn(int core, Body body);
  // Kills (SIGKILL) and reaps the child if it is still there.
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  Link& link() { return *link_; }
  pid_t pid() const { return pid_; }
  // Waits at most `timeout` for the child to exit; then kills it. Returns its exit code, or
  // -1 if it had to be killed or died of a signal.
  int wait(std::chrono::milliseconds timeout);

 private:
  Child(pid_t pid, std::unique_ptr<Link> link) : pid_(pid), link_(std::move(link)) {}
  pid_t pid_;
  bool reaped_ = false;
  std::unique_ptr<Link> link_;
};

// Seconds since an arbitrary epoch, as a double, for rates.
inline double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace mstream::bench
