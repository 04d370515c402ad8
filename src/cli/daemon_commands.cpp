// `mstream leader` and `mstream site`: the daemons of a session (DESIGN.md, "The mstream
// command"). Each runs one node (the leader with its site 0, or a site) on the real driver
// until SIGTERM/SIGINT or until the leader shuts the session down.
//
// Output: a handler's `puts` line is printed as `[N] text`; with MSTREAM_STAMPED_OUTPUT=1 (set
// by `mstream run` for its embedded session) as `@<CLOCK_MONOTONIC ns> N text`, so the runner
// can merge the lines of several daemons in causal order. Errors go to stderr.

#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "cli/commands.hpp"
#include "cli/session_client.hpp"
#include "leader/leader_node.hpp"
#include "runtime/clock.hpp"
#include "runtime/drop_log.hpp"
#include "runtime/node_loop.hpp"
#include "runtime/output_merger.hpp"
#include "runtime/sqlite_store.hpp"
#include "runtime/worker_pool.hpp"
#include "site/site_core.hpp"

namespace mstream::cli {
namespace {

using namespace std::chrono_literals;

std::atomic<bool> g_stop{false};

void on_stop_signal(int) { g_stop.store(true); }

// SIGUSR1: give the heap's free pages back to the system (malloc_trim), between two rounds of
// the loop. `mstream bench churn` asks it before each sample, so that what it reads is what
// the daemon keeps, not what its allocator happens to hold on to.
std::atomic<bool> g_trim{false};

void on_trim_signal(int) { g_trim.store(true); }

void trim_if_asked() {
  if (g_trim.exchange(false)) (void)::malloc_trim(0);
}

// SIGUSR2: write this daemon's counters to its --stats-file, between two rounds of the loop.
// `mstream bench move` reads them before and after its hops (datagrams and control messages
// per hop).
std::atomic<bool> g_stats{false};

void on_stats_signal(int) { g_stats.store(true); }

// "NAME VALUE" lines, written whole (a temporary file renamed over PATH), so that a reader
// never sees half of them.
void write_stats_if_asked(const std::string& path, const site::SiteCore& core) {
  if (!g_stats.exchange(false) || path.empty()) return;
  const proto::TransportStats& t = core.transport().stats();
  const site::SiteCounters& c = core.counters();
  const std::pair<const char*, std::uint64_t> rows[] = {{"datagrams_out", t.datagrams_out},
                                                        {"datagrams_in", t.datagrams_in},
                                                        {"retransmissions", t.retransmissions},
                                                        {"control_messages_out", c.control_sent},
                                                        {"worker_jobs", c.worker_jobs},
                                                        {"moves_in", c.moves_in},
                                                        {"moves_out", c.moves_out}};
  const std::string temp = path + ".tmp";
  FILE* f = std::fopen(temp.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "mstream: cannot write %s: %s\n", temp.c_str(), std::strerror(errno));
    return;
  }
  for (const auto& [name, value] : rows)
    std::fprintf(f, "%s %llu\n", name, static_cast<unsigned long long>(value));
  const bool written = std::fclose(f) == 0;
  if (!written || std::rename(temp.c_str(), path.c_str()) != 0)
    std::fprintf(stderr, "mstream: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = on_trim_signal;
  sigaction(SIGUSR1, &sa, nullptr);
  sa.sa_handler = on_stats_signal;
  sigaction(SIGUSR2, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

bool stamped_output() {
  const char* v = std::getenv("MSTREAM_STAMPED_OUTPUT");
  return v && std::string(v) == "1";
}

// Prints what handlers printed and what went wrong, after each round of the loop.
void drain_output(site::SiteCore& core, bool stamped) {
  std::string line;
  bool any = false;
  proto::Time stamp = 0;
  while (core.poll_output(&line, &stamp)) {
    if (stamped) {
      // One line per line of text: the merger's format has no room for a newline.
      std::size_t start = 0;
      for (;;) {
        std::size_t nl = line.find('\n', start);
        std::string part =
            line.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        std::printf("%s\n", runtime::stamped_line(stamp, core.self(), part).c_str());
        if (nl == std::string::npos) break;
        start = nl + 1;
      }
    } else {
      std::printf("[%u] %s\n", core.self(), line.c_str());
    }
    any = true;
  }
  if (any) std::fflush(stdout);
  while (core.poll_error(&line)) std::fprintf(stderr, "mstream: %s\n", line.c_str());
}

// The hidden --drop/--drop-seed options: seed 004's loss model (each arriving path datagram
// dropped with probability P), for `mstream bench moving-pipeline`. Never for production.
// The controllers' code (COMMANDS.md, Policy), read from the files named on the command line
// before the daemon joins, so that a bad path stops it at once.
struct ControllerFiles {
  std::string session;  // the leader's --controller: the session controller
  std::string site;     // --site-controller (leader) or --controller (site)
};

// The limits of COMMANDS.md "Limits" a daemon takes from its command line.
struct Limits {
  std::uint64_t max_held_bytes = site::SiteOptions{}.max_held_bytes;
  std::size_t max_streams_per_site = leader::LeaderOptions{}.max_streams_per_site;
  std::size_t max_agents_per_stream = leader::LeaderOptions{}.max_agents_per_stream;
  std::uint64_t handler_time_ms = tcl::HandlerLimits{}.time_ms;
};

// The limits every daemon applies to its own site.
void add_site_limit_options(CLI::App* app, const std::shared_ptr<Limits>& limits) {
  app->add_option("--max-held-bytes", limits->max_held_bytes,
                  "bytes one stream's handlers may have appended here that wait for room at "
                  "slow receivers; beyond it their stream_append fails (default 268435456; 0: "
                  "no limit)");
  app->add_option("--handler-time-limit", limits->handler_time_ms,
                  "milliseconds one run of a sandboxed agent's handler may take before it is "
                  "aborted with an error (default 10000; COMMANDS.md, Sandbox)")
      ->check(CLI::Range(1, 86400000));
}

void apply_site_limits(const Limits& limits, site::SiteOptions* so) {
  so->max_held_bytes = limits.max_held_bytes;
  so->handler_limits.time_ms = limits.handler_time_ms;
  so->lane_clock = runtime::monotonic_now;  // delivery batches' slices
}

Status read_controller(const std::string& path, std::string* code) {
  if (path.empty()) return Status::ok_status();
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    return Status::error(Status::Code::kIoError,
                         "cannot read the controller " + path + ": " + std::strerror(errno));
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) code->append(buf, n);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  if (bad) return Status::error(Status::Code::kIoError, "cannot read the controller " + path);
  if (code->size() > wire::kMaxCodeBytes)
    return Status::error(
        Status::Code::kTooLarge,
        "the controller " + path + " exceeds " + std::to_string(wire::kMaxCodeBytes) + " bytes");
  return Status::ok_status();
}

Status read_controllers(const ControllerFiles& paths, ControllerFiles* code) {
  if (Status s = read_controller(paths.session, &code->session); !s.ok()) return s;
  return read_controller(paths.site, &code->site);
}

// For benchmarks and diagnosis: a loss model on arriving datagrams, and where to write the
// daemon's counters when asked (SIGUSR2).
struct DiagnosticOptions {
  double drop = 0;
  std::uint64_t seed = 1;
  std::string stats_file;
};

runtime::NodeLoopOptions loop_options(std::string listen, const DiagnosticOptions& diag) {
  return {
      .listen = std::move(listen), .receive_drop_probability = diag.drop, .drop_seed = diag.seed};
}

// Handlers run on this many worker threads (DESIGN.md "Threads": about one per core); 0 runs
// them on the event loop's thread.
std::size_t default_workers() {
  const unsigned n = std::thread::hardware_concurrency();
  return std::clamp<std::size_t>(n == 0 ? 1 : n, 1, 8);
}

// The workers of a daemon's handlers, waking `loop` when their work is done. Null: inline.
Result<std::shared_ptr<proto::Executor>> start_workers(std::size_t workers,
                                                       runtime::NodeLoop& loop) {
  if (workers == 0) return std::shared_ptr<proto::Executor>();
  auto pool = runtime::WorkerPool::start(workers);
  if (!pool.ok()) return pool.status();
  loop.set_wake_fd((*pool)->wake_fd());
  return std::shared_ptr<proto::Executor>(std::move(*pool));
}

void add_worker_option(CLI::App* cmd, const std::shared_ptr<std::size_t>& workers) {
  *workers = default_workers();
  cmd->add_option("--workers", *workers,
                  "worker threads that run handlers (default: one per core; 0: the event loop's)")
      ->check(CLI::Range(0, 64));
}

void add_diagnostic_options(CLI::App* cmd, const std::shared_ptr<DiagnosticOptions>& diag) {
  // An empty group hides an option from --help.
  cmd->add_option("--drop", diag->drop, "drop this fraction of arriving datagrams (benchmarks)")
      ->check(CLI::Range(0.0, 0.99))
      ->group("");
  cmd->add_option("--drop-seed", diag->seed, "seed of the --drop loss model")->group("");
  cmd->add_option("--stats-file", diag->stats_file,
                  "on SIGUSR2, write this daemon's counters (datagrams, control messages, "
                  "worker jobs) to this file");
}

// The checkpoints of the durable streams this daemon is the failure manager of
// (doc/session.md "Durable streams"): in DIR/checkpoints.db with --state DIR, so that they
// outlive the process; else in a private directory removed at exit, which serves the
// recovery of streams whose sites fail while this daemon lives.
struct DaemonStore {
  std::shared_ptr<proto::DurableStore> store;
  std::string temp_dir;
  ~DaemonStore() {
    store.reset();
    std::error_code ec;
    if (!temp_dir.empty()) std::filesystem::remove_all(temp_dir, ec);
  }
};

// Private stores of daemons that died without removing theirs (kill -9): named after their
// process, removed by the next daemon that starts once that process is gone.
void remove_orphaned_stores(const std::filesystem::path& tmp) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(tmp, ec)) {
    const std::string name = entry.path().filename().string();
    constexpr std::string_view kPrefix = "mstream-store-";
    if (name.rfind(kPrefix, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + kPrefix.size(), nullptr, 10);
    if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH))
      std::filesystem::remove_all(entry.path(), ec);
  }
}

Status open_store(const std::string& state_dir, DaemonStore* out) {
  std::string dir = state_dir;
  if (dir.empty()) {
    const std::filesystem::path tmp = std::filesystem::temp_directory_path();
    remove_orphaned_stores(tmp);
    std::string tmpl = (tmp / ("mstream-store-" + std::to_string(::getpid()) + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      return Status::error(Status::Code::kIoError, "cannot make a directory for the durable store");
    dir = out->temp_dir = tmpl;
  } else {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return Status::error(Status::Code::kIoError,
                           "cannot make the state directory " + dir + ": " + ec.message());
  }
  auto store = runtime::SqliteStore::open(dir + "/checkpoints.db");
  if (!store.ok()) return store.status();
  out->store = std::move(*store);
  return Status::ok_status();
}

// The leader's own state (doc/session.md "A restarted leader"), beside site 0's checkpoints
// in the --state directory. A leader that stops cleanly ends its session (the sites are told
// to stop), so it removes the state: only a crash leaves one to resume.
std::string leader_state_path(const std::string& state_dir) { return state_dir + "/leader.db"; }

void remove_leader_state(const std::string& state_dir) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(leader_state_path(state_dir) + suffix, ec);
}

int run_leader(const std::string& listen, const std::string& state_dir,
               const DiagnosticOptions& diag, std::size_t workers, std::uint64_t failure_timeout_ms,
               std::uint64_t resume_timeout_ms, const ControllerFiles& controller_files,
               const Limits& limits, const SecurityOptions& security) {
  install_stop_handlers();
  auto secret = leader_secret(security);
  if (!secret.ok()) {
    std::fprintf(stderr, "mstream leader: %s\n", secret.status().message().c_str());
    return 2;
  }
  std::optional<leader::JoinSecurity> keys;
  if (*secret)
    keys = leader::JoinSecurity{wire::join_key_of((*secret)->secret), wire::random_key(),
                                wire::random_key(), (*secret)->kx};
  ControllerFiles controllers;
  if (Status st = read_controllers(controller_files, &controllers); !st.ok()) {
    std::fprintf(stderr, "mstream leader: %s\n", st.message().c_str());
    return 2;
  }
  auto loop = runtime::NodeLoop::open(loop_options(listen, diag));
  if (!loop.ok()) {
    std::fprintf(stderr, "mstream leader: %s\n", loop.status().message().c_str());
    return 2;
  }
  const bool stamped = stamped_output();
  site::SiteOptions so = site::SiteOptions::with_mtu(0, (*loop)->mtu());
  so.session_controller = controllers.session;
  so.controller = controllers.site;
  apply_site_limits(limits, &so);
  auto executor = start_workers(workers, **loop);
  if (!executor.ok()) {
    std::fprintf(stderr, "mstream leader: %s\n", executor.status().message().c_str());
    return 2;
  }
  so.executor = std::move(*executor);
  DaemonStore store;
  if (Status st = open_store(state_dir, &store); !st.ok()) {
    std::fprintf(stderr, "mstream leader: %s\n", st.message().c_str());
    return 2;
  }
  so.store = store.store;
  leader::LeaderOptions lo;
  lo.failure_timeout = static_cast<proto::Time>(failure_timeout_ms) * proto::kMillisecond;
  lo.resume_timeout = static_cast<proto::Time>(resume_timeout_ms) * proto::kMillisecond;
  lo.max_streams_per_site = limits.max_streams_per_site;
  lo.max_agents_per_stream = limits.max_agents_per_stream;
  if (!state_dir.empty()) {
    auto state = runtime::SqliteStore::open(leader_state_path(state_dir));
    if (!state.ok()) {
      std::fprintf(stderr, "mstream leader: %s\n", state.status().message().c_str());
      return 2;
    }
    lo.state = std::move(*state);
  }
  // Under mstream run the shell prints handler errors on the stderr we share with it.
  so.log_forwarded_errors = lo.log_forwarded_errors = !stamped;
  leader::LeaderNode node(so, lo, keys);
  node.set_own_address((*loop)->local_address(), static_cast<std::uint64_t>(::getpid()));
  if (Status st = node.open_state(runtime::monotonic_now()); !st.ok()) {
    std::fprintf(stderr, "mstream leader: %s (remove %s to start a new session)\n",
                 st.message().c_str(), leader_state_path(state_dir).c_str());
    return 2;
  }
  (*loop)->attach(&node);
  if (!(*loop)->run_until([&] { return node.site().controls_told(); }, 10s)) {
    std::fprintf(stderr, "mstream leader: site 0's controllers did not load\n");
    return 1;
  }
  std::printf("mstream: leader listening on %s\n", (*loop)->local_address().c_str());
  if (node.resumed())
    std::printf("mstream: leader resumed its session from %s\n",
                leader_state_path(state_dir).c_str());
  std::fflush(stdout);
  std::string line;
  runtime::DropLog drops;
  while (!g_stop.load() && !node.finished()) {
    Status st = (*loop)->run_once(50ms);
    trim_if_asked();
    write_stats_if_asked(diag.stats_file, node.site());
    drain_output(node.site(), stamped);
    std::uint64_t refused = node.site().counters().refused_control_total();
    for (std::uint64_t n : node.leader().refused_control()) refused += n;
    if (auto said = drops.check(node.site().transport().stats(), refused, "leader",
                                runtime::monotonic_now()))
      std::fputs(said->c_str(), stderr);
    while (node.leader().poll_log(&line))
      std::fprintf(stderr, "mstream leader: %s\n", line.c_str());
    if (!st.ok()) {
      std::fprintf(stderr, "mstream leader: %s\n", st.message().c_str());
      return 1;
    }
  }
  // Tell the sites to stop, and give the message a moment to leave.
  node.leader().shutdown_session();
  (*loop)->run_until([] { return false; }, 100ms);
  if (!state_dir.empty()) remove_leader_state(state_dir);
  return 0;
}

int run_site(const std::string& leader, std::string listen, const DiagnosticOptions& diag,
             std::size_t workers, const std::string& state_dir, const std::string& controller_file,
             const Limits& limits, const SecurityOptions& security) {
  install_stop_handlers();
  auto secret = session_secret(security);
  if (!secret.ok()) {
    std::fprintf(stderr, "mstream site: %s\n", secret.status().message().c_str());
    return 2;
  }
  ControllerFiles controllers;
  if (Status st = read_controllers({{}, controller_file}, &controllers); !st.ok()) {
    std::fprintf(stderr, "mstream site: %s\n", st.message().c_str());
    return 2;
  }
  DaemonStore store;
  if (Status st = open_store(state_dir, &store); !st.ok()) {
    std::fprintf(stderr, "mstream site: %s\n", st.message().c_str());
    return 2;
  }
  if (listen.empty()) listen = default_listen_for(leader);
  auto loop = runtime::NodeLoop::open(loop_options(listen, diag));
  if (!loop.ok()) {
    std::fprintf(stderr, "mstream site: %s\n", loop.status().message().c_str());
    return 2;
  }
  const bool stamped = stamped_output();
  // A site that loses the session (the leader declared it failed after a partition, or the
  // leader is gone) joins again as a new site: its streams were recovered elsewhere, and
  // nothing of its old membership is kept.
  for (bool first = true; !g_stop.load(); first = false) {
    // A fresh key pair for each join (join_secrets).
    auto joined = (*loop)->join(leader, wire::JoinMessage::Role::kSite, first ? 10s : 2s,
                                runtime::join_secrets(*secret));
    if (!joined.ok()) {
      if (first || joined.status().code() == Status::Code::kInvalidArgument) {
        std::fprintf(stderr, "mstream site: %s\n", joined.status().message().c_str());
        return 1;
      }
      continue;  // still cut off: keep asking
    }
    const proto::SiteId* id = &joined->site;
    site::SiteOptions so = site::SiteOptions::with_mtu(*id, (*loop)->mtu());
    so.log_forwarded_errors = !stamped;
    so.controller = controllers.site;
    so.leader_key = joined->leader_key;
    apply_site_limits(limits, &so);
    auto executor = start_workers(workers, **loop);
    if (!executor.ok()) {
      std::fprintf(stderr, "mstream site: %s\n", executor.status().message().c_str());
      return 2;
    }
    so.executor = std::move(*executor);
    so.store = store.store;
    site::SiteCore node(so);
    (*loop)->attach(&node);
    if (!(*loop)->run_until([&] { return node.welcomed() || node.finished(); }, 10s)) {
      std::fprintf(stderr, "mstream site: the leader at %s admitted us but sent no directory\n",
                   leader.c_str());
      return 1;
    }
    if (node.welcomed() && !(*loop)->run_until([&] { return node.controls_told(); }, 10s)) {
      std::fprintf(stderr, "mstream site: the leader at %s did not hear of our controller\n",
                   leader.c_str());
      return 1;
    }
    if (!node.welcomed()) {  // refused (the session controller's on_new_peer)
      std::string line;
      while (node.poll_error(&line)) std::fprintf(stderr, "mstream site: %s\n", line.c_str());
      return 1;
    }
    std::printf("mstream: site %u joined %s\n", *id, leader.c_str());
    std::fflush(stdout);
    runtime::DropLog drops;
    while (!g_stop.load() && !node.finished()) {
      Status st = (*loop)->run_once(50ms);
      trim_if_asked();
      write_stats_if_asked(diag.stats_file, node);
      drain_output(node, stamped);
      if (auto said = drops.check(node.transport().stats(), node.counters().refused_control_total(),
                                  "site", runtime::monotonic_now()))
        std::fputs(said->c_str(), stderr);
      if (!st.ok()) {
        std::fprintf(stderr, "mstream site: %s\n", st.message().c_str());
        return 1;
      }
    }
    drain_output(node, stamped);
    if (!node.lost_session()) return 0;
    std::fprintf(stderr, "mstream site: site %u joins the session again\n", *id);
  }
  return 0;
}

}  // namespace

void add_daemon_commands(CLI::App& app, int* exit_code) {
  auto* leader = app.add_subcommand("leader", "run a session leader (also site 0)");
  auto listen = std::make_shared<std::string>();
  auto state = std::make_shared<std::string>();
  leader->add_option("--listen", *listen, "HOST:PORT to listen on (port 0: any)")->required();
  leader->add_option("--state", *state,
                     "directory for the leader's durable state and site 0's durable store: a "
                     "leader restarted with it resumes its session (default: a temporary "
                     "store, and a leader's crash ends the session)");
  auto leader_diag = std::make_shared<DiagnosticOptions>();
  add_diagnostic_options(leader, leader_diag);
  auto leader_workers = std::make_shared<std::size_t>();
  add_worker_option(leader, leader_workers);
  auto failure_timeout = std::make_shared<std::uint64_t>(1000);
  leader
      ->add_option("--failure-timeout", *failure_timeout,
                   "milliseconds of silence after which a site or shell is declared failed "
                   "(default 1000; 0: never)")
      ->check(CLI::Range(0, 3600000));
  auto resume_timeout = std::make_shared<std::uint64_t>(30000);
  leader
      ->add_option("--resume-timeout", *resume_timeout,
                   "with --state: milliseconds the sites wait for a silent leader to come "
                   "back, their handlers paused, before they leave (default 30000)")
      ->check(CLI::Range(0, 86400000));
  auto leader_controllers = std::make_shared<ControllerFiles>();
  leader->add_option("--controller", leader_controllers->session,
                     "Tcl file of the session controller agent: its policy handlers vet the "
                     "whole session's opens, creates, destroys, moves, agent registrations and "
                     "joining peers (COMMANDS.md, Policy)");
  leader->add_option("--site-controller", leader_controllers->site,
                     "Tcl file of site 0's own controller agent (as `mstream site --controller`)");
  auto leader_limits = std::make_shared<Limits>();
  add_site_limit_options(leader, leader_limits);
  auto leader_security = std::make_shared<SecurityOptions>();
  add_security_options(leader, leader_security.get(), /*leader=*/true);
  leader->add_option("--max-streams-per-site", leader_limits->max_streams_per_site,
                     "streams a site may host; a create or move beyond it fails (default "
                     "65536; 0: no limit)");
  leader->add_option("--max-agents-per-stream", leader_limits->max_agents_per_stream,
                     "agents a stream may have; register_agent beyond it fails (default 64; 0: "
                     "no limit)");
  leader->callback([=] {
    *exit_code = run_leader(*listen, *state, *leader_diag, *leader_workers, *failure_timeout,
                            *resume_timeout, *leader_controllers, *leader_limits, *leader_security);
  });

  auto* site = app.add_subcommand("site", "run a site of a session");
  auto leader_addr = std::make_shared<std::string>();
  auto site_listen = std::make_shared<std::string>();
  site->add_option("--leader", *leader_addr, "HOST:PORT of the session leader")->required();
  site->add_option("--listen", *site_listen, "HOST:PORT to listen on (default: any port)");
  auto site_diag = std::make_shared<DiagnosticOptions>();
  add_diagnostic_options(site, site_diag);
  auto site_workers = std::make_shared<std::size_t>();
  add_worker_option(site, site_workers);
  auto site_state = std::make_shared<std::string>();
  site->add_option("--state", *site_state,
                   "directory for the durable store of the streams this site is the failure "
                   "manager of (default: a temporary one)");
  auto site_controller = std::make_shared<std::string>();
  site->add_option("--controller", *site_controller,
                   "Tcl file of this site's controller agent: trusted code whose policy "
                   "handlers vet what concerns this site, and which may expose commands to the "
                   "sandboxed agents here (COMMANDS.md, Policy)");
  auto site_limits = std::make_shared<Limits>();
  add_site_limit_options(site, site_limits);
  auto site_security = std::make_shared<SecurityOptions>();
  add_security_options(site, site_security.get(), /*leader=*/false);
  site->callback([=] {
    *exit_code = run_site(*leader_addr, *site_listen, *site_diag, *site_workers, *site_state,
                          *site_controller, *site_limits, *site_security);
  });
}

}  // namespace mstream::cli
