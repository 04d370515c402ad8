#pragma once
// What the simulator's tests print when a run broke an invariant.

#include <string>
#include <vector>

#include "sim/checker.hpp"

namespace mstream::sim {

// One line per violation: the invariant, then what happened.
inline std::string names(const std::vector<Violation>& v) {
  std::string out;
  for (const Violation& x : v) out += x.invariant + ": " + x.detail + "\n";
  return out;
}

}  // namespace mstream::sim
