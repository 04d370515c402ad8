// `mstream bench NAME [--json]`: runs the benchmarks of bench/ (DESIGN.md, "The mstream
// command"). With --json, stdout carries only the contract's JSON lines, one per metric, and
// the machine facts go to stderr, so the output can be piped straight into a parser.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "bench/bench.hpp"
#include "cli/commands.hpp"

namespace mstream::cli {
namespace {

struct BenchArgs {
  std::string name;
  bool json = false;
  bool no_pin = false;
  std::string wait;  // "", "spin" or "block"
  bench::BenchOptions options;
};

std::string describe_run(const BenchArgs& args) {
  std::string s = "pinning: ";
  s += args.no_pin ? "off" : "parent and child on different cores when 2+ are allowed";
  s += "; wait: ";
  s += args.wait.empty() ? "default per benchmark (pingpong spin, throughput and loss block)"
                         : args.wait;
  s += "; baselines run in the same process placement and with the same waiting strategy";
  s += "; session benchmarks (move, moving-pipeline, append-tcl, memory's streams, failover, "
       "durable, churn) run "
       "a local session whose processes are unpinned and block, and so do their baselines";
  return s;
}

int run(const BenchArgs& args) {
  bench::BenchOptions options = args.options;
  options.pin = !args.no_pin;
  if (args.wait == "spin") options.wait = bench::WaitStrategy::kSpin;
  if (args.wait == "block") options.wait = bench::WaitStrategy::kBlock;

  std::vector<std::string> names;
  if (args.name == "all") {
    names = bench::benchmark_names();
  } else {
    names.push_back(args.name);
  }
  // Facts first, so a reader of a partial run still knows where it ran.
  std::FILE* facts = args.json ? stderr : stdout;
  std::fprintf(facts, "# %s\n# %s\n", bench::machine_facts().c_str(), describe_run(args).c_str());
  std::fflush(facts);

  int exit_code = 0;
  for (const auto& name : names) {
    auto results = bench::run_benchmark(name, options);
    if (!results.ok()) {
      std::fprintf(stderr, "mstream bench %s: %s\n", name.c_str(),
                   results.status().to_string().c_str());
      exit_code = 1;
      continue;
    }
    const std::string summary = bench::summary_of(name, *results);
    if (args.json) {
      for (const auto& r : *results) std::printf("%s\n", bench::to_json_line(r).c_str());
      if (!summary.empty()) std::fprintf(stderr, "%s", summary.c_str());
    } else {
      std::printf("%s\n", bench::to_table(*results).c_str());
      if (!summary.empty()) std::printf("%s\n", summary.c_str());
    }
    std::fflush(stdout);
  }
  return exit_code;
}

}  // namespace

void add_bench_command(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "run a benchmark against its baseline");
  std::vector<std::string> choices = bench::benchmark_names();
  choices.push_back("all");
  cmd->add_option("name", args->name, "benchmark to run")
      ->required()
      ->check(CLI::IsMember(choices));
  cmd->add_flag("--json", args->json, "one JSON object per line per metric");
  cmd->add_flag("--quick", args->options.quick, "tiny runs (for tests); noisy numbers");
  cmd->add_option("--seconds", args->options.seconds,
                  "length of each measured run (default: 0.5-1 s)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--rounds", args->options.rounds,
                  "repeat each run, mstream and baseline interleaved (default 3; quick 1; "
                  "failover: repetitions, default 5, quick 2)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--wait", args->wait, "waiting strategy of both mstream and the baseline")
      ->check(CLI::IsMember({"spin", "block"}));
  cmd->add_flag("--no-pin", args->no_pin, "do not pin the two processes to different cores");
  cmd->add_option("--channels", args->options.channels,
                  "memory: channels to create (sites: a twentieth of it)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", args->options.seed, "seed of the loss model");
  cmd->add_option("--workers", args->options.workers,
                  "session benchmarks: handler worker threads of each daemon (default: one per "
                  "core; 0: handlers on the daemon's event loop)")
      ->check(CLI::Range(0, 64));
  cmd->add_option("--hops", args->options.hops, "move: timed hops per round (default 1000)")
      ->check(CLI::PositiveNumber);
  cmd->add_option(
         "--messages", args->options.messages,
         "append-tcl and durable: messages per run (default 20000); moving-pipeline: least "
         "messages per cell (default 400)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--streams", args->options.streams,
                  "memory: idle streams with a C++ agent at one site (Tcl agents: a fifth; "
                  "default 1000); churn: streams churned after the warm-up (default 100000)")
      ->check(CLI::PositiveNumber);
  cmd->callback([args, exit_code] { *exit_code = run(*args); });
}

}  // namespace mstream::cli
