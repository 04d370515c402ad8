#pragma once
// The real driver's clock. The sans-IO cores never read a clock (STYLE.md habit 4); the
// runtime reads this one and passes the value in as proto::Time.
// Thread-safety: safe from any thread.

#include <time.h>

#include <chrono>

#include "proto/types.hpp"

namespace mstream::runtime {

// CLOCK_MONOTONIC in nanoseconds: never jumps with wall-clock changes, so timers armed by the
// cores stay meaningful. A vDSO call, about 20 ns.
inline proto::Time monotonic_now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<proto::Time>(ts.tv_sec) * proto::kSecond + ts.tv_nsec;
}

// now + d without overflowing past kNever (callers pass "wait forever" as a huge duration).
inline proto::Time deadline_after(proto::Time now, std::chrono::nanoseconds d) {
  if (d.count() <= 0) return now;
  if (d.count() >= proto::kNever - now) return proto::kNever;
  return now + d.count();
}

}  // namespace mstream::runtime
