#pragma once
// The budgets of one run of a sandboxed agent (HandlerLimits): time and commands through Tcl's
// interpreter limits (doc/Limit.3), the heap's growth checked every check_every commands.
// TclHost arms them before a run and disarms them after; while none is exceeded they cost a
// read of counters Tcl keeps and of the steady clock, and at most once per kHeapReadEvery, one
// of the heap and one of Tcl's clock.
//
// Thread-safety: none; one per TclHost (a worker's).

#include <tcl.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "tcl/tcl_host.hpp"

namespace mstream::tcl {

class RunLimits {
 public:
  // A run's heap baseline may be an earlier run's baseline this old: mallinfo2() walks every
  // malloc arena, and reading it at each run cost four times the handler (issue 19). A check
  // within a run reads it afresh.
  static constexpr std::chrono::milliseconds kHeapReadEvery{1};

  void set(const HandlerLimits& limits) { limits_ = limits; }
  const HandlerLimits& limits() const { return limits_; }
  // A new sandbox: its command limit calls back here. REQUIRES: this outlives `sb`.
  void watch(Tcl_Interp* sb);
  // Before a run in `sb`: its budgets start now.
  void arm(Tcl_Interp* sb);
  // After it: a limit that stopped it is said in `outcome` (not ok, its result the reason), and
  // `sb` is usable again.
  void disarm(Tcl_Interp* sb, HandlerOutcome* outcome) const;
  // When the run armed last must end (limits().time_ms after arm()).
  std::chrono::steady_clock::time_point deadline() const { return deadline_; }

 private:
  static void on_command_limit(ClientData data, Tcl_Interp* sb);
  void set_next_check(Tcl_Interp* sb, int now) const;
  std::uint64_t baseline(std::chrono::steady_clock::time_point now);
  Tcl_Time wall_clock(std::chrono::steady_clock::time_point now);

  HandlerLimits limits_;
  std::uint32_t run_start_ = 0;
  std::uint64_t heap_base_ = 0;
  std::uint64_t heap_seen_ = 0;
  std::chrono::steady_clock::time_point heap_read_at_{};
  std::chrono::steady_clock::time_point deadline_{};
  Tcl_Time wall_seen_{};
  std::chrono::steady_clock::time_point wall_read_at_{};
  std::string abort_reason_;
};

// The number of commands `interp` has run (what `info cmdcount` says), read where Tcl keeps it.
int command_count(Tcl_Interp* interp);

}  // namespace mstream::tcl
