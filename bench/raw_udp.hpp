#pragma once
// The raw UDP round trip: a 64-byte datagram to a forked echo process and back, with no
// protocol at all. The baseline of pingpong, and of move, which compares a protocol operation
// with the network round trip it is built from.
//
// Thread-safety: none. start() forks, so call it while this process is single-threaded; the
// echo may then be used while other threads run (e.g. during a BenchSession), so that the
// baseline is measured in the same window, under the same load, as what it is compared with.

#include <chrono>
#include <cstdint>
#include <memory>

#include "bench/bench.hpp"
#include "bench/process.hpp"

namespace mstream::bench {

class RawUdpEcho {
 public:
  // Forks the echo, on placement.child_core, waiting `wait` as this end does. It exits on its
  // own after `child_deadline`, whatever this process does. Errors: those of fork, kIoError.
  static Result<std::unique_ptr<RawUdpEcho>> start(WaitStrategy wait, const Placement& placement,
                                                   std::chrono::milliseconds child_deadline);
  // Stops the echo and reaps it.
  ~RawUdpEcho();
  RawUdpEcho(const RawUdpEcho&) = delete;
  RawUdpEcho& operator=(const RawUdpEcho&) = delete;

  // One round trip, ns. Errors: kUnavailable (no echo within 2 s), kIoError.
  Result<std::int64_t> round_trip();

 private:
  RawUdpEcho(runtime::ChildProcess child, WaitStrategy wait)
      : child_(std::move(child)), wait_(wait) {}
  runtime::ChildProcess child_;
  WaitStrategy wait_;
  int fd_ = -1;
  std::uint64_t next_ = 0;
};

}  // namespace mstream::bench
