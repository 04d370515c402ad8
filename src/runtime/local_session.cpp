#include "runtime/local_session.hpp"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <utility>

#include "runtime/clock.hpp"

namespace mstream::runtime {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kLeaderReady = "mstream: leader listening on ";
constexpr std::string_view kSiteReady = "mstream: site ";
constexpr std::string_view kSiteJoined = " joined ";
// After SIGKILL its end is a matter of the scheduler; this only bounds a wait that cannot
// otherwise end (a process stuck in the kernel).
constexpr auto kReapAfterKill = 5s;
// A daemon that closed its stdout before its ready line is normally exiting: how long we wait
// to tell the user how it ended.
constexpr auto kExitAfterClose = 1s;

// The process groups that a signal handler may kill: a fixed table of lock-free atomics, the
// only shared state a handler can touch safely. A slot holds a group from the moment its
// leader is spawned until every member has been reaped, so the id is never one reused by
// another process group. More sessions than slots still die with us through PR_SET_PDEATHSIG.
constexpr int kGroupSlots = 16;
static_assert(std::atomic<pid_t>::is_always_lock_free);
std::atomic<pid_t> g_groups[kGroupSlots];

void register_group(pid_t group) {
  for (auto& slot : g_groups) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, group)) return;
  }
}

void unregister_group(pid_t group) {
  for (auto& slot : g_groups) {
    pid_t expected = group;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

void on_ending_signal(int signal) {
  LocalSession::kill_all_sessions();
  // The shell convention for an interrupted command.
  if (signal == SIGINT) _exit(130);
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigaction(signal, &default_action, nullptr);
  sigset_t just_this;
  sigemptyset(&just_this);
  sigaddset(&just_this, signal);
  // Blocked while its handler runs: unblock so that the re-raised signal ends us right here.
  pthread_sigmask(SIG_UNBLOCK, &just_this, nullptr);
  raise(signal);
  _exit(128 + signal);
}

std::string milliseconds(std::chrono::nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

std::string describe(std::string_view name, pid_t pid) {
  return std::string(name) + " (pid " + std::to_string(pid) + ")";
}

Status unavailable(std::string message) {
  return Status::error(Status::Code::kUnavailable, std::move(message));
}

// SIGKILLs `child` and reaps it; returns its wait status.
int kill_and_reap(ChildProcess& child) {
  (void)child.send_signal(SIGKILL);
  const proto::Time give_up = deadline_after(monotonic_now(), kReapAfterKill);
  for (;;) {
    if (const auto status = child.try_reap()) return *status;
    if (child.pid() < 0 || monotonic_now() >= give_up) break;
    usleep(1000);
  }
  // Reaped behind our back, or stuck in the kernel: wait() reaps it however long that takes.
  child.wait(0ns);
  return W_EXITCODE(0, SIGKILL);
}

// "mstream: site N joined HOST:PORT" -> N and HOST:PORT.
std::optional<std::pair<proto::SiteId, std::string>> parse_site_ready(std::string_view line) {
  if (line.substr(0, kSiteReady.size()) != kSiteReady) return std::nullopt;
  line.remove_prefix(kSiteReady.size());
  proto::SiteId id = 0;
  const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), id);
  if (ec != std::errc() || end == line.data()) return std::nullopt;
  line.remove_prefix(static_cast<std::size_t>(end - line.data()));
  if (line.substr(0, kSiteJoined.size()) != kSiteJoined) return std::nullopt;
  line.remove_prefix(kSiteJoined.size());
  if (line.empty()) return std::nullopt;
  return std::make_pair(id, std::string(line));
}

}  // namespace

LocalSession::~LocalSession() { kill_and_reap_all(); }

void LocalSession::kill_all_sessions() {
  for (auto& slot : g_groups) {
    const pid_t group = slot.load();
    if (group > 0) kill(-group, SIGKILL);
  }
}

Status LocalSession::install_signal_cleanup() {
  for (const int signal : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    if (sigaction(signal, nullptr, &old) != 0)
      return Status::error(Status::Code::kIoError, std::string("sigaction: ") + strerror(errno));
    if (old.sa_handler == SIG_IGN) continue;
    struct sigaction action {};
    action.sa_handler = on_ending_signal;
    // One ending signal at a time: a second one arriving mid-cleanup waits, and never runs.
    sigfillset(&action.sa_mask);
    if (sigaction(signal, &action, nullptr) != 0)
      return Status::error(Status::Code::kIoError, std::string("sigaction: ") + strerror(errno));
  }
  return Status::ok_status();
}

Status LocalSession::spawn_daemon(std::string name, const std::vector<std::string>& argv,
                                  pid_t group, const LocalSessionOptions& options) {
  SpawnOptions spawn_options;
  spawn_options.process_group = group;
  if (options.stamped_output)
    spawn_options.environment.push_back(std::string(kStampedOutputEnv) + "=1");
  auto child = ChildProcess::spawn(argv, spawn_options);
  if (!child.ok())
    return Status::error(child.status().code(),
                         "cannot start the " + name + ": " + child.status().message());
  const pid_t pid = child->pid();
  daemons_.push_back(Daemon{std::move(name), 0, pid, std::move(*child)});
  return Status::ok_status();
}

Result<std::string> LocalSession::read_ready_line(Daemon& daemon, proto::Time deadline,
                                                  std::chrono::nanoseconds timeout) {
  const proto::Time now = monotonic_now();
  auto line = daemon.process.output().read_line(
      std::chrono::nanoseconds(deadline > now ? deadline - now : 0));
  if (line.ok()) return line;
  if (!daemon.process.output().closed())
    return unavailable(describe(daemon.name, daemon.pid) + " did not print its ready line within " +
                       milliseconds(timeout));
  // It closed its stdout: normally it is exiting; say how it ended if it does so promptly.
  const proto::Time give_up = deadline_after(monotonic_now(), kExitAfterClose);
  while (!daemon.wait_status && monotonic_now() < give_up) {
    daemon.wait_status = daemon.process.try_reap();
    if (!daemon.wait_status) usleep(1000);
  }
  if (!daemon.wait_status)
    return unavailable(describe(daemon.name, daemon.pid) +
                       " closed its output before it was ready");
  return unavailable(describe(daemon.name, daemon.pid) +
                     " exited before it was ready: " + describe_wait_status(*daemon.wait_status));
}

Status LocalSession::start(const LocalSessionOptions& options) {
  if (state_ != State::kNew)
    return Status::error(Status::Code::kInvalidArgument, "the local session was already started");
  if (options.binary.empty())
    return Status::error(Status::Code::kInvalidArgument, "no mstream binary to start daemons");
  state_ = State::kFailed;  // until every daemon is ready
  const proto::Time deadline = deadline_after(monotonic_now(), options.start_timeout);
  // Whatever fails below, nothing stays behind.
  auto fail = [this](Status st) {
    kill_and_reap_all();
    return st;
  };

  std::vector<std::string> argv = {options.binary, "leader", "--listen", options.listen};
  argv.insert(argv.end(), options.leader_args.begin(), options.leader_args.end());
  Status st = spawn_daemon("leader", argv, /*group=*/0, options);
  if (!st.ok()) return st;
  group_ = daemons_[0].pid;
  register_group(group_);
  auto ready = read_ready_line(daemons_[0], deadline, options.start_timeout);
  if (!ready.ok()) return fail(ready.status());
  if (ready->substr(0, kLeaderReady.size()) != kLeaderReady || ready->size() == kLeaderReady.size())
    return fail(unavailable(describe("leader", daemons_[0].pid) + " printed \"" + *ready +
                            "\" instead of \"" + std::string(kLeaderReady) + "HOST:PORT\""));
  leader_ = DaemonProcess{0, daemons_[0].pid, ready->substr(kLeaderReady.size())};

  for (std::uint32_t k = 1; k <= options.sites; ++k) {
    argv = {options.binary, "site", "--leader", leader_.address};
    argv.insert(argv.end(), options.site_args.begin(), options.site_args.end());
    if (k <= options.per_site_args.size()) {
      const auto& extra = options.per_site_args[k - 1];
      argv.insert(argv.end(), extra.begin(), extra.end());
    }
    st = spawn_daemon("site " + std::to_string(k), argv, group_, options);
    if (!st.ok()) return fail(st);
    Daemon& site = daemons_.back();
    ready = read_ready_line(site, deadline, options.start_timeout);
    if (!ready.ok()) return fail(ready.status());
    const auto joined = parse_site_ready(*ready);
    if (!joined)
      return fail(unavailable(describe(site.name, site.pid) + " printed \"" + *ready +
                              "\" instead of \"mstream: site N joined HOST:PORT\""));
    site.name = "site " + std::to_string(joined->first);
    site.site = joined->first;
    sites_.push_back(DaemonProcess{joined->first, site.pid, joined->second});
  }
  state_ = State::kRunning;
  return Status::ok_status();
}

void LocalSession::attach_output(OutputMerger& merger) {
  for (Daemon& d : daemons_) merger.add_source(d.process.take_output(), d.site);
}

void LocalSession::reap_exited() {
  for (Daemon& d : daemons_) {
    if (d.wait_status) continue;
    d.wait_status = d.process.try_reap();
    if (d.wait_status && state_ == State::kRunning) d.died_unasked = true;
  }
  const bool all_reaped = std::all_of(daemons_.begin(), daemons_.end(),
                                      [](const Daemon& d) { return d.wait_status.has_value(); });
  if (all_reaped) unregister_group(group_);
}

Status LocalSession::check_running() {
  if (state_ == State::kNew) return unavailable("the local session was not started");
  if (state_ != State::kRunning) return unavailable("the local session is shut down");
  reap_exited();
  std::string message;
  for (const Daemon& d : daemons_) {
    if (!d.wait_status) continue;
    if (!message.empty()) message += "; ";
    message += describe(d.name, d.pid) + " died: " + describe_wait_status(*d.wait_status);
  }
  if (message.empty()) return Status::ok_status();
  return unavailable(std::move(message));
}

void LocalSession::stop_daemons(std::size_t first, std::size_t last, proto::Time deadline) {
  for (std::size_t i = first; i < last; ++i) {
    Daemon& d = daemons_[i];
    if (d.wait_status) continue;
    // The leader may have ended on its own while we stopped the sites.
    d.wait_status = d.process.try_reap();
    if (d.wait_status)
      d.died_unasked = true;
    else
      (void)d.process.send_signal(SIGTERM);
  }
  for (;;) {
    bool all_reaped = true;
    for (std::size_t i = first; i < last; ++i) {
      Daemon& d = daemons_[i];
      if (!d.wait_status) d.wait_status = d.process.try_reap();
      all_reaped &= d.wait_status.has_value();
    }
    if (all_reaped || monotonic_now() >= deadline) break;
    usleep(1000);
  }
  for (std::size_t i = first; i < last; ++i) {
    Daemon& d = daemons_[i];
    if (d.wait_status) continue;
    d.wait_status = kill_and_reap(d.process);
    // It may have exited 0 between our last look and SIGKILL.
    d.killed = WIFSIGNALED(*d.wait_status) && WTERMSIG(*d.wait_status) == SIGKILL;
  }
}

Status LocalSession::shutdown(std::chrono::nanoseconds timeout) {
  if (state_ != State::kRunning) return Status::ok_status();
  reap_exited();
  state_ = State::kShutDown;
  stop_daemons(1, daemons_.size(), deadline_after(monotonic_now(), timeout));
  stop_daemons(0, 1, deadline_after(monotonic_now(), timeout));
  unregister_group(group_);

  std::string message;
  for (const Daemon& d : daemons_) {
    std::string problem;
    if (d.died_unasked)
      problem = "died: " + describe_wait_status(*d.wait_status);
    else if (d.killed)
      problem = "did not stop within " + milliseconds(timeout) + " of SIGTERM and was killed";
    else if (!WIFEXITED(*d.wait_status) || WEXITSTATUS(*d.wait_status) != 0)
      problem = "did not exit 0 on SIGTERM: " + describe_wait_status(*d.wait_status);
    if (problem.empty()) continue;
    if (!message.empty()) message += "; ";
    message += describe(d.name, d.pid) + " " + problem;
  }
  if (message.empty()) return Status::ok_status();
  return unavailable(std::move(message));
}

void LocalSession::kill_and_reap_all() {
  for (Daemon& d : daemons_)
    if (!d.wait_status) d.wait_status = kill_and_reap(d.process);
  if (group_ > 0) unregister_group(group_);
  if (state_ == State::kRunning) state_ = State::kShutDown;
}

}  // namespace mstream::runtime
