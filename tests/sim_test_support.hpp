#pragma once
// What the simulator's tests print when a run broke an invariant.

#include <string>
#include <vector>

#include "sim/checker.hpp"
#include "sim/scenario.hpp"

namespace mstream::sim {

// One line per violation: the invariant, then what happened.
inline std::string names(const std::vector<Violation>& v) {
  std::string out;
  for (const Violation& x : v) out += x.invariant + ": " + x.detail + "\n";
  return out;
}

// A seed replayed as it ran when it found its bug: with the acknowledgement timing of then
// (ScenarioOverrides::legacy_acks), so that a later change of the timing does not take away
// the trigger its test asserts.
inline ScenarioOverrides as_found(ScenarioOverrides o = {}) {
  o.legacy_acks = true;
  return o;
}

}  // namespace mstream::sim
