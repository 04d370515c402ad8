// The `mstream` command: one binary, one subcommand per role (DESIGN.md, "The mstream command").
#include <CLI/CLI.hpp>

#include "bench/agents.hpp"
#include "cli/commands.hpp"

int main(int argc, char** argv) {
  // Sites are this binary: the benchmarks' C++ agent types must exist in every process.
  mstream::bench::register_bench_agent_types();
  CLI::App app{"mstream: mobile streams middleware"};
  app.require_subcommand(1);
  int exit_code = 0;
  mstream::cli::add_sim_command(app, &exit_code);
  mstream::cli::add_bench_command(app, &exit_code);
  mstream::cli::add_demo_command(app, &exit_code);
  mstream::cli::add_daemon_commands(app, &exit_code);
  mstream::cli::add_session_commands(app, &exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
