#pragma once
// The Tcl commands that make one big value in one go (string repeat, string cat, lrepeat,
// append), and the size of the value each call would make, from its words alone: a sandbox
// checks it against its per-value cap before running the original (TclHost). A per-command
// memory check cannot stop a single allocation.
//
// Thread-safety: the sizes read only their arguments (append: the variable, in `interp`).

#include <tcl.h>

#include <cstdint>
#include <span>

namespace mstream::tcl {

struct ValueGuard {
  const char* command;  // as the agent calls it
  const char* hidden;   // the original, hidden
  const char* shown;    // in errors
  // The bytes the call would make; 0 when its words are not a valid call (the original
  // reports the error).
  std::uint64_t (*size)(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]);
};

std::span<const ValueGuard> value_guards();

}  // namespace mstream::tcl
