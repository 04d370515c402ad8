// `mstream run`, `mstream shell` and `mstream status`: the shells of a session (DESIGN.md,
// "The mstream command").

#include <readline/history.h>
#include <readline/readline.h>
#include <tcl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/session_client.hpp"
#include "runtime/local_session.hpp"
#include "runtime/output_merger.hpp"
#include "runtime/secret_file.hpp"

namespace mstream::cli {
namespace {

using namespace std::chrono_literals;

std::string self_binary() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "mstream";
  buf[n] = 0;
  return buf;
}

std::chrono::nanoseconds seconds_or_forever(double s) {
  if (s <= 0) return std::chrono::hours(24 * 365);
  return std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
}

// ---------------------------------------------------------------------------------------
// mstream run

struct RunOptions {
  std::uint32_t sites = 3;
  std::string session;
  std::string script;
  std::vector<std::string> args;
  double timeout_s = 0;  // 0: wait for quiescence as long as it takes
  int workers = -1;      // the embedded daemons' --workers; -1: their default
  long failure_timeout_ms = -1;  // the embedded leader's --failure-timeout; -1: its default
  std::string session_controller;  // the embedded leader's --controller
  std::string site_controller;     // every embedded site's --controller (site 0's too)
  // The embedded daemons' limits (COMMANDS.md, Limits), as given: empty, their defaults.
  std::string max_held_bytes, max_streams_per_site, max_agents_per_stream, handler_time_limit;
  SecurityOptions security;
  bool keep_going = false;  // exit 0 after handler errors (kExitHandlerErrors otherwise)
};

// `mstream run`'s exit status when the script ran to its end but a handler error or a refused
// append was reported to it during the run (README, doc/session.md); 1 is the script's own
// error, 2 a bad command line.
constexpr int kExitHandlerErrors = 3;

// The embedded session's own secret, in a directory of its own for as long as it runs.
class TempSecret {
 public:
  ~TempSecret() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  Result<std::string> make() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mstream-run-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      return Status::error(Status::Code::kIoError, "cannot make a directory for the secret");
    dir_ = tmpl;
    bool made_secret = false, made_pair = false;
    auto key = runtime::read_or_make_leader_secret(dir_ + "/secret", &made_secret, &made_pair);
    if (!key.ok()) return key.status();
    return dir_ + "/secret";
  }

 private:
  std::string dir_;
};

void set_argv(Tcl_Interp* interp, const std::string& script, const std::vector<std::string>& args) {
  Tcl_Obj* list = Tcl_NewListObj(0, nullptr);
  for (const auto& a : args)
    Tcl_ListObjAppendElement(nullptr, list, Tcl_NewStringObj(a.c_str(), -1));
  Tcl_SetVar2Ex(interp, "argv", nullptr, list, TCL_GLOBAL_ONLY);
  Tcl_SetVar2Ex(interp, "argc", nullptr, Tcl_NewIntObj(static_cast<int>(args.size())),
                TCL_GLOBAL_ONLY);
  Tcl_SetVar2Ex(interp, "argv0", nullptr, Tcl_NewStringObj(script.c_str(), -1), TCL_GLOBAL_ONLY);
}

int run_script(const RunOptions& o) {
  if (::access(o.script.c_str(), R_OK) != 0) {
    std::fprintf(stderr, "mstream run: cannot read %s\n", o.script.c_str());
    return 2;
  }
  std::unique_ptr<runtime::LocalSession> local;
  std::unique_ptr<runtime::OutputMerger> merger;
  std::string leader = o.session;
  SecurityOptions security = o.security;
  TempSecret temp_secret;
  if (leader.empty() && !security.insecure && security.secret_file.empty()) {
    // An embedded session is secured too, under a secret that lives as long as it does.
    auto path = temp_secret.make();
    if (!path.ok()) {
      std::fprintf(stderr, "mstream run: %s\n", path.status().message().c_str());
      return 1;
    }
    security.secret_file = *path;
  }
  auto secret = session_secret(security);
  if (!secret.ok()) {
    std::fprintf(stderr, "mstream run: %s\n", secret.status().message().c_str());
    return 2;
  }
  if (leader.empty()) {
    if (Status st = runtime::LocalSession::install_signal_cleanup(); !st.ok()) {
      std::fprintf(stderr, "mstream run: %s\n", st.message().c_str());
      return 1;
    }
    auto m = runtime::OutputMerger::start(stdout);
    if (!m.ok()) {
      std::fprintf(stderr, "mstream run: %s\n", m.status().message().c_str());
      return 1;
    }
    merger = std::move(*m);
    local = std::make_unique<runtime::LocalSession>();
    runtime::LocalSessionOptions lo;
    lo.binary = self_binary();
    lo.sites = o.sites;
    if (o.workers >= 0) {
      lo.leader_args = {"--workers", std::to_string(o.workers)};
      lo.site_args = lo.leader_args;
    }
    if (o.failure_timeout_ms >= 0) {
      lo.leader_args.push_back("--failure-timeout");
      lo.leader_args.push_back(std::to_string(o.failure_timeout_ms));
    }
    if (!o.session_controller.empty())
      lo.leader_args.insert(
          lo.leader_args.end(),
          {"--controller", std::filesystem::absolute(o.session_controller).string()});
    auto limit = [&](const std::string& value, const char* flag, bool sites_too) {
      if (value.empty()) return;
      lo.leader_args.insert(lo.leader_args.end(), {flag, value});
      if (sites_too) lo.site_args.insert(lo.site_args.end(), {flag, value});
    };
    limit(o.max_held_bytes, "--max-held-bytes", true);
    limit(o.handler_time_limit, "--handler-time-limit", true);
    if (security.insecure) {
      lo.leader_args.push_back("--insecure");
      lo.site_args.push_back("--insecure");
    } else {
      limit(std::filesystem::absolute(security.secret_file).string(), "--secret-file", true);
    }
    limit(o.max_streams_per_site, "--max-streams-per-site", false);
    limit(o.max_agents_per_stream, "--max-agents-per-stream", false);
    if (!o.site_controller.empty()) {
      lo.leader_args.insert(
          lo.leader_args.end(),
          {"--site-controller", std::filesystem::absolute(o.site_controller).string()});
      lo.site_args.insert(lo.site_args.end(),
                          {"--controller", std::filesystem::absolute(o.site_controller).string()});
    }
    if (Status st = local->start(lo); !st.ok()) {
      std::fprintf(stderr, "mstream run: cannot start the local session: %s\n",
                   st.message().c_str());
      return 1;
    }
    local->attach_output(*merger);
    leader = local->leader_address();
  }
  auto client = SessionClient::connect(leader, 10s, *secret);
  if (!client.ok()) {
    std::fprintf(stderr, "mstream run: %s\n", client.status().message().c_str());
    return 1;
  }
  SessionClient& c = **client;
  if (merger) {
    runtime::OutputMerger* mg = merger.get();
    c.set_write([mg](std::string_view text) { mg->shell_line(text); });
    runtime::LocalSession* ls = local.get();
    c.set_watch([ls] { return ls->check_running(); });
  }
  auto interp = c.interpreter();
  if (!interp.ok()) {
    std::fprintf(stderr, "mstream run: %s\n", interp.status().message().c_str());
    return 1;
  }
  set_argv(*interp, o.script, o.args);
  int exit_code = 0;
  if (Tcl_EvalFile(*interp, o.script.c_str()) != TCL_OK) {
    if (merger) merger->flush();
    if (!c.watch_error().ok()) {
      // The script stopped because the local session failed: say that, not where it stood.
      std::fprintf(stderr, "mstream run: the local session failed: %s\n",
                   c.watch_error().message().c_str());
    } else {
      const char* info = Tcl_GetVar(*interp, "errorInfo", TCL_GLOBAL_ONLY);
      std::fprintf(stderr, "mstream run: error in %s: %s\n", o.script.c_str(),
                   info ? info : Tcl_GetStringResult(*interp));
    }
    exit_code = 1;
  } else {
    // Embedded: the session is ours, wait until nothing is left to do in it. Remote: it
    // lives on; wait only for our own messages.
    Status st = local ? c.api().wait_quiescent(seconds_or_forever(o.timeout_s))
                      : c.api().wait_released(seconds_or_forever(o.timeout_s));
    if (!st.ok()) {
      if (merger) merger->flush();
      std::fprintf(stderr, "mstream run: %s%s\n",
                   c.watch_error().ok() ? "" : "the local session failed: ", st.message().c_str());
      exit_code = 1;
    }
  }
  c.api().leave();
  (void)c.pump([] { return false; }, 20ms);
  if (local) {
    Status st = local->shutdown(2s);
    merger->flush();
    merger.reset();
    if (!st.ok() && exit_code == 0) {
      std::fprintf(stderr, "mstream run: %s\n", st.message().c_str());
    }
  }
  // Each was printed as it came; a run that otherwise went well says they happened.
  const std::uint64_t told = c.core().counters().errors_told;
  if (exit_code == 0 && told > 0 && !o.keep_going) {
    std::fprintf(stderr,
                 "mstream run: %llu handler error%s or refused append%s reported during the run "
                 "(exit status %d; --keep-going exits 0)\n",
                 static_cast<unsigned long long>(told), told == 1 ? "" : "s", told == 1 ? "" : "s",
                 kExitHandlerErrors);
    exit_code = kExitHandlerErrors;
  }
  return exit_code;
}

// ---------------------------------------------------------------------------------------
// mstream shell

SessionClient* g_shell_client = nullptr;

int pump_while_idle() {
  // Keep the session's messages to us moving while the user types.
  if (g_shell_client) (void)g_shell_client->pump([] { return true; }, 0ms);
  return 0;
}

int run_shell(const std::string& session, const SecurityOptions& security) {
  auto secret = session_secret(security);
  if (!secret.ok()) {
    std::fprintf(stderr, "mstream shell: %s\n", secret.status().message().c_str());
    return 2;
  }
  auto client = SessionClient::connect(session, 10s, *secret);
  if (!client.ok()) {
    std::fprintf(stderr, "mstream shell: %s\n", client.status().message().c_str());
    return 1;
  }
  auto interp = (*client)->interpreter();
  if (!interp.ok()) {
    std::fprintf(stderr, "mstream shell: %s\n", interp.status().message().c_str());
    return 1;
  }
  g_shell_client = client->get();
  const bool tty = ::isatty(0);
  std::string history_file;
  if (const char* home = std::getenv("HOME"))
    history_file = std::string(home) + "/.mstream_history";
  if (tty) {
    using_history();
    if (!history_file.empty()) read_history(history_file.c_str());
    rl_event_hook = pump_while_idle;
  }
  std::string command;
  for (;;) {
    std::string line;
    if (tty) {
      char* raw = readline(command.empty() ? "mstream% " : "> ");
      if (!raw) break;
      line = raw;
      std::free(raw);
    } else {
      char buf[65536];
      if (!std::fgets(buf, sizeof(buf), stdin)) break;
      line = buf;
      if (!line.empty() && line.back() == '\n') line.pop_back();
    }
    command += line;
    command += '\n';
    if (!Tcl_CommandComplete(command.c_str())) continue;
    if (tty && command.size() > 1) add_history(command.substr(0, command.size() - 1).c_str());
    int rc = Tcl_Eval(*interp, command.c_str());
    command.clear();
    const char* result = Tcl_GetStringResult(*interp);
    if (rc != TCL_OK) {
      std::fprintf(stderr, "error: %s\n", result);
    } else if (*result) {
      std::printf("%s\n", result);
    }
    std::fflush(stdout);
  }
  if (tty && !history_file.empty()) write_history(history_file.c_str());
  (*client)->api().leave();
  (void)(*client)->pump([] { return false; }, 20ms);
  g_shell_client = nullptr;
  return 0;
}

// ---------------------------------------------------------------------------------------
// mstream status

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", ch);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

int run_status(const std::string& session, bool json, const SecurityOptions& security) {
  auto secret = session_secret(security);
  if (!secret.ok()) {
    std::fprintf(stderr, "mstream status: %s\n", secret.status().message().c_str());
    return 2;
  }
  auto client = SessionClient::connect(session, 5s, *secret);
  if (!client.ok()) {
    std::fprintf(stderr, "mstream status: %s\n", client.status().message().c_str());
    return 1;
  }
  const site::Directory& d = (*client)->core().directory();
  std::map<std::uint32_t, std::size_t> load;
  for (const auto& [name, id] : d.names()) {
    const auto* rec = d.find(id);
    if (rec) ++load[rec->site];
  }
  if (json) {
    std::string out = "{\"sites\":[";
    bool first = true;
    for (const auto& [id, p] : d.peers()) {
      if (p.shell) continue;
      if (!first) out += ',';
      first = false;
      out += "{\"id\":" + std::to_string(id) + ",\"address\":" + json_string(p.address) +
             ",\"pid\":" + std::to_string(p.pid) +
             ",\"state\":" + (p.live ? "\"live\"" : "\"failed\"") +
             ",\"streams\":" + std::to_string(load[id]) + "}";
    }
    out += "],\"streams\":[";
    first = true;
    for (const auto& [name, id] : d.names()) {
      const auto* rec = d.find(id);
      if (!rec) continue;
      if (!first) out += ',';
      first = false;
      out += "{\"name\":" + json_string(name) + ",\"site\":" + std::to_string(rec->site) +
             ",\"epoch\":" + std::to_string(rec->epoch) + "}";
    }
    out += "]}";
    std::printf("%s\n", out.c_str());
  } else {
    std::printf("%-6s %-22s %-8s %-7s %s\n", "SITE", "ADDRESS", "PID", "STATE", "STREAMS");
    for (const auto& [id, p] : d.peers()) {
      if (p.shell) continue;
      std::printf("%-6u %-22s %-8llu %-7s %zu\n", id, p.address.c_str(),
                  static_cast<unsigned long long>(p.pid), p.live ? "live" : "failed", load[id]);
    }
    std::printf("\n%-40s %s\n", "STREAM", "SITE");
    for (const auto& [name, id] : d.names()) {
      const auto* rec = d.find(id);
      if (rec) std::printf("%-40s %u\n", name.c_str(), rec->site);
    }
  }
  (*client)->api().leave();
  (void)(*client)->pump([] { return false; }, 20ms);
  return 0;
}

}  // namespace

void add_session_commands(CLI::App& app, int* exit_code) {
  auto run_opts = std::make_shared<RunOptions>();
  auto* run = app.add_subcommand("run", "run a Tcl script as a shell of a session");
  run->add_option("--sites", run_opts->sites, "sites of the embedded local session (default 3)")
      ->check(CLI::Range(0, 64));
  run->add_option("--session", run_opts->session, "HOST:PORT of a running session's leader");
  run->add_option("--workers", run_opts->workers,
                  "handler worker threads of each embedded daemon (default: one per core; 0: "
                  "handlers on the daemon's event loop)")
      ->check(CLI::Range(0, 64));
  run->add_option("--failure-timeout", run_opts->failure_timeout_ms,
                  "the embedded leader's failure timeout in milliseconds (default 1000; 0: never)")
      ->check(CLI::Range(0, 3600000));
  run->add_option("--session-controller", run_opts->session_controller,
                  "Tcl file of the embedded session's controller agent (mstream leader "
                  "--controller)")
      ->check(CLI::ExistingFile);
  run->add_option("--site-controller", run_opts->site_controller,
                  "Tcl file of every embedded site's controller agent (mstream site "
                  "--controller)")
      ->check(CLI::ExistingFile);
  run->add_option("--max-held-bytes", run_opts->max_held_bytes,
                  "the embedded daemons' --max-held-bytes")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--max-streams-per-site", run_opts->max_streams_per_site,
                  "the embedded leader's --max-streams-per-site")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--max-agents-per-stream", run_opts->max_agents_per_stream,
                  "the embedded leader's --max-agents-per-stream")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--handler-time-limit", run_opts->handler_time_limit,
                  "the embedded daemons' --handler-time-limit")
      ->check(CLI::Range(1, 86400000));
  add_security_options(run, &run_opts->security, /*leader=*/false);
  run->add_option("--timeout", run_opts->timeout_s,
                  "seconds to wait for quiescence after the script (default: no limit)");
  run->add_flag("--keep-going", run_opts->keep_going,
                "exit 0 even if handler errors or refused appends were reported during the run "
                "(default: exit status 3)");
  // SCRIPT and its arguments: everything from the first positional on is the script's.
  run->prefix_command();
  run->footer(
      "Usage: mstream run [--sites N] [--session HOST:PORT] [--timeout S] [--keep-going] SCRIPT "
      "[ARG...]\nExit status: 0 done; 1 an error in the script or the session; 2 a bad command "
      "line; 3 handler errors or refused appends were reported (unless --keep-going).");
  run->callback([=] {
    std::vector<std::string> rest = run->remaining();
    if (rest.empty()) {
      std::fprintf(stderr, "mstream run: missing SCRIPT\n");
      *exit_code = 2;
      return;
    }
    run_opts->script = rest.front();
    run_opts->args.assign(rest.begin() + 1, rest.end());
    *exit_code = run_script(*run_opts);
  });

  auto shell_session = std::make_shared<std::string>();
  auto* shell = app.add_subcommand("shell", "an interactive Tcl shell on a session");
  shell->add_option("--session", *shell_session,
                    "HOST:PORT of the leader (default $MSTREAM_SESSION or 127.0.0.1:7070)");
  auto shell_security = std::make_shared<SecurityOptions>();
  add_security_options(shell, shell_security.get(), /*leader=*/false);
  shell->callback([=] {
    *exit_code =
        run_shell(shell_session->empty() ? default_session() : *shell_session, *shell_security);
  });

  auto status_session = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto* status = app.add_subcommand("status", "sites and streams of a session");
  status->add_option("--session", *status_session,
                     "HOST:PORT of the leader (default $MSTREAM_SESSION or 127.0.0.1:7070)");
  status->add_flag("--json", *json, "one JSON object");
  auto status_security = std::make_shared<SecurityOptions>();
  add_security_options(status, status_security.get(), /*leader=*/false);
  status->callback([=] {
    *exit_code = run_status(status_session->empty() ? default_session() : *status_session, *json,
                            *status_security);
  });
}

}  // namespace mstream::cli
