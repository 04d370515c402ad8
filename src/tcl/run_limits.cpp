#include "tcl/run_limits.hpp"

#include <malloc.h>

#include <algorithm>
#include <climits>

namespace mstream::tcl {
namespace {

std::uint64_t heap_bytes() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

}  // namespace

void RunLimits::watch(Tcl_Interp* sb) {
  Tcl_LimitAddHandler(sb, TCL_LIMIT_COMMANDS, on_command_limit, this, nullptr);
}

// Only arm() keeps its reading: one taken by a check, in the middle of a run that then freed
// what it took, would make the next run's baseline too high and its budget too large.
std::uint64_t RunLimits::baseline(std::chrono::steady_clock::time_point now) {
  if (heap_read_at_ == std::chrono::steady_clock::time_point{} ||
      now - heap_read_at_ >= kHeapReadEvery) {
    heap_seen_ = heap_bytes();
    heap_read_at_ = now;
  }
  return heap_seen_;
}

// Tcl's time limit is on its own clock (the wall clock): read at most once per
// kHeapReadEvery, and carried forward by the steady clock in between, so that a run does not
// pay for a second clock reading. A step of the wall clock shifts the limits set within
// kHeapReadEvery after it, as it shifts those of the runs already going.
Tcl_Time RunLimits::wall_clock(std::chrono::steady_clock::time_point now) {
  if (wall_read_at_ == std::chrono::steady_clock::time_point{} ||
      now - wall_read_at_ >= kHeapReadEvery) {
    Tcl_GetTime(&wall_seen_);
    wall_read_at_ = now;
    return wall_seen_;
  }
  const auto since = std::chrono::duration_cast<std::chrono::microseconds>(now - wall_read_at_);
  const std::uint64_t us =
      static_cast<std::uint64_t>(wall_seen_.usec) + static_cast<std::uint64_t>(since.count());
  Tcl_Time t = wall_seen_;
  t.sec += static_cast<long>(us / 1000000);
  t.usec = static_cast<long>(us % 1000000);
  return t;
}

void RunLimits::arm(Tcl_Interp* sb) {
  abort_reason_.clear();
  Tcl_LimitTypeReset(sb, TCL_LIMIT_COMMANDS | TCL_LIMIT_TIME);
  const int now = command_count(sb);
  run_start_ = static_cast<std::uint32_t>(now);
  const auto start = std::chrono::steady_clock::now();
  if (limits_.memory_bytes > 0) heap_base_ = baseline(start);
  deadline_ = start + std::chrono::milliseconds(limits_.time_ms);
  if (limits_.commands > 0 || limits_.memory_bytes > 0) {
    set_next_check(sb, now);
    Tcl_LimitTypeSet(sb, TCL_LIMIT_COMMANDS);
  }
  if (limits_.time_ms > 0) {
    Tcl_Time t = wall_clock(start);
    const std::uint64_t us = static_cast<std::uint64_t>(t.usec) + (limits_.time_ms % 1000) * 1000;
    t.sec += static_cast<long>(limits_.time_ms / 1000 + us / 1000000);
    t.usec = static_cast<long>(us % 1000000);
    Tcl_LimitSetTime(sb, &t);
    Tcl_LimitTypeSet(sb, TCL_LIMIT_TIME);
  }
}

void RunLimits::set_next_check(Tcl_Interp* sb, int now) const {
  std::uint64_t step =
      limits_.memory_bytes > 0 ? std::max<std::uint32_t>(limits_.check_every, 1) : limits_.commands;
  if (limits_.commands > 0) step = std::min(step, limits_.commands);
  const std::int64_t next =
      std::min<std::int64_t>(std::int64_t{now} + static_cast<std::int64_t>(step), INT_MAX);
  Tcl_LimitSetCommands(sb, static_cast<int>(next));
}

// Tcl calls this when the command count reaches what set_next_check() set: the run goes on
// only if neither its command nor its memory budget is spent.
void RunLimits::on_command_limit(ClientData data, Tcl_Interp* sb) {
  RunLimits* self = static_cast<RunLimits*>(data);
  const int now = Tcl_LimitGetCommands(sb);
  const std::uint64_t used =
      static_cast<std::uint32_t>(static_cast<std::uint32_t>(now) - self->run_start_);
  const HandlerLimits& l = self->limits_;
  if (l.commands > 0 && used >= l.commands) {
    self->abort_reason_ =
        "command limit exceeded (" + std::to_string(l.commands) + " commands per run)";
    return;
  }
  if (l.memory_bytes > 0) {
    const std::uint64_t heap = heap_bytes();
    const std::uint64_t grown = heap > self->heap_base_ ? heap - self->heap_base_ : 0;
    if (grown > l.memory_bytes) {
      self->abort_reason_ = "memory limit exceeded (the heap grew by " + std::to_string(grown) +
                            " bytes, over " + std::to_string(l.memory_bytes) + " per run)";
      return;
    }
  }
  self->set_next_check(sb, now);
}

void RunLimits::disarm(Tcl_Interp* sb, HandlerOutcome* outcome) const {
  const bool time = Tcl_LimitTypeExceeded(sb, TCL_LIMIT_TIME) != 0;
  const bool commands = Tcl_LimitTypeExceeded(sb, TCL_LIMIT_COMMANDS) != 0;
  Tcl_LimitTypeReset(sb, TCL_LIMIT_COMMANDS | TCL_LIMIT_TIME);
  if (!time && !commands) return;
  outcome->ok = false;
  outcome->result = "sandbox: " + (time ? "time limit exceeded (" +
                                              std::to_string(limits_.time_ms) + " ms per run)"
                                   : abort_reason_.empty() ? std::string("command limit exceeded")
                                                           : abort_reason_);
  outcome->error_info = outcome->result;
}

}  // namespace mstream::tcl
