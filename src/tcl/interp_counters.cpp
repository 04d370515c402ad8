// What Tcl counts in an interpreter and offers no C API for: read from its private headers
// (tclInt.h), like agent_namespace.cpp, so that a run's limits need not evaluate a script.
#include <tclInt.h>

#include "tcl/run_limits.hpp"

namespace mstream::tcl {

int command_count(Tcl_Interp* interp) { return reinterpret_cast<Interp*>(interp)->cmdCount; }

}  // namespace mstream::tcl
