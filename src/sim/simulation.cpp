#include "sim/simulation.hpp"

#include <cstdio>

#include "sim/driver.hpp"

namespace mstream::sim {

SeedResult run_scenario(const Scenario& scenario, const RunOptions& options) {
  detail::Driver driver(scenario, options);
  return driver.run();
}
SeedResult run_seed(std::uint64_t seed, bool check_determinism, const ScenarioOverrides& overrides,
                    const RunOptions& options) {
  const Scenario scenario = derive_scenario(seed, overrides);
  SeedResult first = run_scenario(scenario, options);
  if (check_determinism) {
    RunOptions quiet = options;
    quiet.trace = nullptr;
    const SeedResult second = run_scenario(scenario, quiet);
    if (second.trace_hash != first.trace_hash) {
      char detail[96];
      std::snprintf(detail, sizeof detail, "trace hash %016llx then %016llx",
                    static_cast<unsigned long long>(first.trace_hash),
                    static_cast<unsigned long long>(second.trace_hash));
      first.violations.push_back(Violation{"determinism", detail, 1});
    }
  }
  return first;
}

}  // namespace mstream::sim