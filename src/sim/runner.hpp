#pragma once
// Running many seeds and reporting them in the `mstream sim` format (DESIGN.md, "The mstream
// command"): one `FAIL seed=S invariant=NAME detail` line per violated invariant of a seed,
// and a last line `sim: N seeds, F failed`. Shared by the CLI and the tests so that a seed
// failing in a test reproduces with `mstream sim --seed S`.

#include <cstdint>
#include <ostream>

#include "sim/scenario.hpp"
#include "sim/session_simulation.hpp"
#include "sim/simulation.hpp"

namespace mstream::sim {

struct SweepOptions {
  std::uint64_t first_seed = 1;
  std::uint64_t count = 1;
  // Run every k-th seed twice and compare trace hashes (1: every seed, 0: none).
  std::uint64_t determinism_every = 1;
  // Print each seed's options before running it and its trace summary after.
  bool verbose = false;
  ScenarioOverrides overrides;
  RunOptions run;
  // What each seed runs: the messaging core's scenario (scenario.hpp), a whole session
  // (session_scenario.hpp), or both; a seed fails if either does.
  bool transport = true;
  bool session = true;
};

struct SweepResult {
  std::uint64_t seeds = 0;
  std::uint64_t failed = 0;
  std::uint64_t first_failed_seed = 0;  // 0 when none failed
};

// Runs the seeds, printing FAIL lines (and, verbose, the options and summaries) to `out`,
// then the closing `sim:` line.
SweepResult run_sweep(const SweepOptions& options, std::ostream& out);

// The FAIL line of one violation, without a newline.
std::string fail_line(std::uint64_t seed, const Violation& v);

// A few lines on what a run did: time, steps, traffic, faults injected, trace hash.
std::string describe(const SeedResult& r);

}  // namespace mstream::sim
