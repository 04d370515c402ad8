#pragma once
// Each subcommand of `mstream` lives in its own file and registers itself on the app.
// The callback it installs sets *exit_code.

namespace CLI {
class App;
}

namespace mstream::cli {

void add_sim_command(CLI::App& app, int* exit_code);
void add_bench_command(CLI::App& app, int* exit_code);
void add_demo_command(CLI::App& app, int* exit_code);
void add_daemon_commands(CLI::App& app, int* exit_code);
void add_session_commands(CLI::App& app, int* exit_code);

}  // namespace mstream::cli
