// `mstream sim`: the deterministic simulator (DESIGN.md, "The mstream command").
//   mstream sim --seed S         runs seed S alone: prints its options, its trace summary,
//                                and checks that a second run gives the same trace hash
//   mstream sim --seeds N [--seed S]   runs seeds S..S+N-1 (S defaults to 1)
// Either way: one `FAIL seed=S invariant=NAME ...` line per violated invariant, a last line
// `sim: N seeds, F failed`, and a non-zero exit when any seed failed. Each seed runs two
// scenarios: the messaging core alone (sites of proto::Transport) and a whole session (the
// leader, sites and a shell, with C++ agents, moves and quiescence); --scenario picks one.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "cli/commands.hpp"
#include "sim/runner.hpp"

namespace mstream::cli {
namespace {

struct SimArgs {
  std::uint64_t seed = 0;
  std::uint64_t seeds = 0;
  std::uint64_t determinism_every = 1;
  std::uint64_t max_steps = 0;
  bool no_faults = false;
  bool no_moves = false;
  bool small_buffers = false;
  bool hostile = false;
  bool ephemeral_forwards = false;
  bool trace = false;
  bool verbose = false;
  std::string scenario = "both";
};

int run_sim(const SimArgs& a, bool seed_given, bool seeds_given) {
  sim::SweepOptions o;
  o.overrides.faults = !a.no_faults;
  o.overrides.moves = !a.no_moves;
  o.overrides.small_buffers = a.small_buffers;
  o.overrides.hostile = a.hostile;
  if (a.ephemeral_forwards) o.overrides.ephemeral_forwards = true;
  if (a.max_steps) o.run.max_steps = a.max_steps;
  o.transport = a.scenario != "session";
  o.session = a.scenario != "transport";
  if (seeds_given) {
    o.first_seed = seed_given ? a.seed : 1;
    o.count = a.seeds;
    o.determinism_every = a.determinism_every;
    o.verbose = a.verbose;
  } else {
    // One seed: everything a reader needs to replay and understand it.
    o.first_seed = seed_given ? a.seed : 1;
    o.count = 1;
    o.determinism_every = 1;
    o.verbose = true;
  }
  if (a.trace) o.run.trace = &std::cout;
  const sim::SweepResult r = sim::run_sweep(o, std::cout);
  return r.failed == 0 ? 0 : 1;
}

}  // namespace

void add_sim_command(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<SimArgs>();
  CLI::App* cmd = app.add_subcommand(
      "sim", "Deterministic simulator: many sites, simulated time and network, invariant checks");
  CLI::Option* seed =
      cmd->add_option("--seed", args->seed, "Run this seed alone (or the first of --seeds)");
  CLI::Option* seeds = cmd->add_option("--seeds", args->seeds,
                                       "Run this many seeds, from --seed "
                                       "(default 1)")
                           ->check(CLI::PositiveNumber);
  cmd->add_option("--determinism-every", args->determinism_every,
                  "With --seeds: run every K-th seed twice and compare trace hashes "
                  "(1: all, 0: none; a single --seed is always checked)")
      ->capture_default_str();
  cmd->add_option("--max-steps", args->max_steps,
                  "Stop a run after this many steps (reported as invariant=progress)");
  cmd->add_flag("--no-faults", args->no_faults, "A perfect network for every seed");
  cmd->add_flag("--no-moves", args->no_moves, "Streams never move");
  cmd->add_flag("--small-buffers", args->small_buffers,
                "Session scenarios draw channel bounds of 2..64 messages (control channels fill "
                "up too)");
  cmd->add_flag("--hostile", args->hostile,
                "Session scenarios add a member that lies: well-formed frames and datagrams in "
                "its own name for channels and control streams it has no say in, acks of what "
                "was never sent, wrong numberings and boots, replayed joins (doc/security.md)");
  cmd->add_flag("--ephemeral-forwards", args->ephemeral_forwards,
                "Session scenarios' ephemeral streams (created, destroyed and created again "
                "during the workload) all forward what they handle, as receivers do (by "
                "default each seed draws it per stream)");
  cmd->add_option("--scenario", args->scenario,
                  "What each seed runs: the messaging core (transport), a whole session "
                  "(session), or both")
      ->check(CLI::IsMember({"both", "transport", "session"}))
      ->capture_default_str();
  cmd->add_flag("--trace", args->trace, "Print every event of the run (use with --seed)");
  cmd->add_flag("--verbose", args->verbose, "With --seeds: print each seed's options and summary");
  cmd->callback([args, seed, seeds, exit_code] {
    *exit_code = run_sim(*args, seed->count() > 0, seeds->count() > 0);
  });
}

}  // namespace mstream::cli
