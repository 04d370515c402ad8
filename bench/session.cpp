#include "bench/session.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string_view>

#include "bench/process.hpp"
#include "runtime/local_session.hpp"
#include "runtime/node_loop.hpp"
#include "runtime/output_merger.hpp"
#include "runtime/secret_file.hpp"
#include "site/shell_api.hpp"
#include "site/site_core.hpp"

namespace mstream::bench {

using namespace std::chrono_literals;

namespace {

// Bounds every wait of the shell: a session benchmark that stalls this long is broken.
constexpr auto kShellTimeout = 60s;
constexpr auto kJoinTimeout = 10s;

}  // namespace

std::string mstream_binary(const BenchOptions& options) {
  if (!options.binary.empty()) return options.binary;
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "mstream";
  return std::string(buf, static_cast<std::size_t>(n));
}

SessionConfig session_config(const BenchOptions& options) {
  SessionConfig config;
  config.binary = mstream_binary(options);
  if (options.workers) config.daemon_args = {"--workers", std::to_string(*options.workers)};
  return config;
}

// A directory of this process's own (mode 0700, mkdtemp), removed with what it holds.
struct PrivateDir {
  std::string path;
  ~PrivateDir() {
    if (path.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

struct BenchSession::Impl {
  // Destroyed in reverse: the shell first, then the daemons, then the output thread, then the
  // directory of the session secret and the daemons' counters.
  PrivateDir dir;
  std::optional<runtime::SessionSecret> secret;
  std::unique_ptr<runtime::OutputMerger> merger;
  runtime::LocalSession local;
  std::unique_ptr<runtime::NodeLoop> loop;
  std::unique_ptr<site::SiteCore> core;
  std::unique_ptr<site::ShellApi> api;
  Status problem;
  std::chrono::steady_clock::time_point next_check;
  bool shut_down = false;
  // How LocalSession names the daemons kill_site() killed ("site N (pid P) died: killed by
  // signal 9"), so that their deaths are not taken for problems.
  std::vector<std::string> expected_deaths;

  // `st` without the expected deaths among the "; "-separated ones LocalSession lists.
  Status without_expected_deaths(const Status& st) const {
    if (st.ok() || expected_deaths.empty() || st.message().empty()) return st;
    const std::string& all = st.message();
    std::string rest;
    for (std::size_t at = 0; at <= all.size();) {
      std::size_t end = all.find("; ", at);
      if (end == std::string::npos) end = all.size();
      const std::string part = all.substr(at, end - at);
      if (std::find(expected_deaths.begin(), expected_deaths.end(), part) ==
          expected_deaths.end()) {
        if (!rest.empty()) rest += "; ";
        rest += part;
      }
      at = end + 2;
    }
    return rest.empty() ? Status::ok_status() : Status::error(st.code(), rest);
  }

  // Every error the shell hears of ends the benchmark: a handler error at a site is forwarded
  // to the leader and from there to the shell, and a daemon that died would stall every wait.
  bool notice_problems() {
    std::string line;
    while (core->poll_error(&line)) {
      if (problem.ok()) problem = Status::error(Status::Code::kInternal, line);
    }
    // waitpid on every daemon costs a few syscalls: not on every round of a timed wait.
    const auto now = std::chrono::steady_clock::now();
    if (problem.ok() && now >= next_check) {
      next_check = now + 10ms;
      if (Status st = without_expected_deaths(local.check_running()); !st.ok()) problem = st;
    }
    return !problem.ok();
  }

  // ShellApi's Pump: ok once done(); the problem that ended the wait; or kUnavailable with an
  // empty message on timeout (ShellApi words that one).
  Status pump(const std::function<bool()>& done, std::chrono::nanoseconds timeout) {
    const bool ok = loop->run_until([&] { return notice_problems() || done(); }, timeout);
    if (!problem.ok()) return problem;
    return ok ? Status::ok_status() : Status::error(Status::Code::kUnavailable, "");
  }

  // Joins the session as a new shell (the one before, if any, is dropped).
  Status join_shell();

  // The leader's (0) and the k-th started site's --stats-file.
  std::uint32_t daemons = 0;
  std::string stats_path(std::uint32_t k) const { return dir.path + "/stats-" + std::to_string(k); }
};

namespace {

// A --stats-file's "NAME VALUE" lines, added into `sum`. False if it is not all there.
bool add_stats_file(const std::string& path, DaemonCounters* sum) {
  std::ifstream in(path);
  if (!in) return false;
  std::string name;
  std::uint64_t value = 0;
  std::size_t rows = 0;
  while (in >> name >> value) {
    (*sum)[name] += value;
    ++rows;
  }
  return rows > 0 && in.eof();
}

}  // namespace

BenchSession::BenchSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

BenchSession::~BenchSession() {
  if (impl_ && !impl_->shut_down) (void)shutdown();
}

Result<std::unique_ptr<BenchSession>> BenchSession::start(const SessionConfig& config) {
  auto impl = std::make_unique<Impl>();
  // stderr: with --json, stdout carries only the JSON lines.
  auto merger = runtime::OutputMerger::start(stderr);
  if (!merger.ok()) return merger.status();
  impl->merger = std::move(*merger);

  runtime::LocalSessionOptions lo;
  lo.binary = config.binary;
  lo.sites = config.sites;
  lo.leader_args = config.daemon_args;
  lo.leader_args.insert(lo.leader_args.end(), config.leader_args.begin(), config.leader_args.end());
  lo.site_args = config.daemon_args;
  char dir[] = "/tmp/mstream-bench-XXXXXX";
  if (::mkdtemp(dir) == nullptr)
    return Status::error(Status::Code::kIoError, "could not make a directory for the session");
  impl->dir.path = dir;
  impl->daemons = config.sites + 1;
  lo.leader_args.insert(lo.leader_args.end(), {"--stats-file", impl->stats_path(0)});
  lo.per_site_args.resize(config.sites);
  for (std::uint32_t k = 1; k <= config.sites; ++k)
    lo.per_site_args[k - 1] = {"--stats-file", impl->stats_path(k)};
  if (config.secured) {
    // The leader's secret file and key, made here before any daemon starts, so that the sites
    // and this shell read the same one.
    const std::string path = impl->dir.path + "/secret";
    bool made_secret = false, made_pair = false;
    if (auto made = runtime::read_or_make_leader_secret(path, &made_secret, &made_pair); !made.ok())
      return made.status();
    auto secret = runtime::read_secret(path);
    if (!secret.ok()) return secret.status();
    impl->secret = *secret;
    lo.leader_args.insert(lo.leader_args.end(), {"--secret-file", path});
    lo.site_args.insert(lo.site_args.end(), {"--secret-file", path});
  } else {
    lo.leader_args.push_back("--insecure");
    lo.site_args.push_back("--insecure");
  }
  if (config.drop_seed != 0) {
    lo.leader_args.insert(lo.leader_args.end(), {"--drop-seed", std::to_string(config.drop_seed)});
    for (std::uint32_t k = 1; k <= config.sites; ++k)
      lo.per_site_args[k - 1].insert(lo.per_site_args[k - 1].end(),
                                     {"--drop-seed", std::to_string(config.drop_seed + k)});
  }
  if (Status st = impl->local.start(lo); !st.ok()) return st;
  impl->local.attach_output(*impl->merger);

  if (Status st = impl->join_shell(); !st.ok()) return st;
  return std::unique_ptr<BenchSession>(new BenchSession(std::move(impl)));
}

Status BenchSession::Impl::join_shell() {
  const std::string leader = local.leader_address();
  auto opened = runtime::NodeLoop::open({.listen = "127.0.0.1:0"});
  if (!opened.ok()) return opened.status();
  auto joined = (*opened)->join(leader, wire::JoinMessage::Role::kShell, kJoinTimeout,
                                runtime::join_secrets(secret));
  if (!joined.ok()) return joined.status();
  api.reset();
  core.reset();
  loop = std::move(*opened);
  site::SiteOptions so = site::SiteOptions::with_mtu(joined->site, loop->mtu(), /*shell=*/true);
  so.leader_key = joined->leader_key;  // secured: the pair key it shares with the leader
  so.keep_output = false;
  core = std::make_unique<site::SiteCore>(so);
  loop->attach(core.get());
  api = std::make_unique<site::ShellApi>(
      core.get(),
      [this](const std::function<bool()>& done, std::chrono::nanoseconds t) {
        return pump(done, t);
      },
      [](std::string_view) {}, kShellTimeout);
  if (Status st = pump([this] { return core->welcomed(); }, kJoinTimeout); !st.ok()) {
    return problem.ok()
               ? Status::error(Status::Code::kUnavailable,
                               "the leader at " + leader + " sent the benchmark shell no directory")
               : problem;
  }
  return Status::ok_status();
}

Status BenchSession::new_shell() {
  impl_->api->leave();
  (void)impl_->loop->run_until([] { return false; }, 20ms);
  if (Status st = impl_->join_shell(); !st.ok()) return st;
  return impl_->problem;
}

Status BenchSession::signal_daemons(int signal) {
  std::vector<pid_t> pids = {impl_->local.process_group()};
  for (const auto& d : impl_->local.sites()) pids.push_back(d.pid);
  for (pid_t pid : pids)
    if (::kill(pid, signal) != 0)
      return Status::error(Status::Code::kIoError, "could not signal pid " + std::to_string(pid));
  return Status::ok_status();
}

Result<DaemonCounters> BenchSession::counters() {
  for (std::uint32_t k = 0; k < impl_->daemons; ++k) std::remove(impl_->stats_path(k).c_str());
  if (Status st = signal_daemons(SIGUSR2); !st.ok()) return st;
  DaemonCounters sum;
  std::uint32_t read = 0;
  // The shell keeps its session going meanwhile; a daemon writes the file between two rounds
  // of its loop.
  Status st = impl_->pump(
      [&] {
        for (; read < impl_->daemons; ++read)
          if (!add_stats_file(impl_->stats_path(read), &sum)) return false;
        return true;
      },
      5s);
  if (!st.ok())
    return Status::error(Status::Code::kUnavailable,
                         "daemon " + std::to_string(read) + " wrote no counters to " +
                             impl_->stats_path(read) + (st.message().empty() ? "" : ": ") +
                             st.message());
  const proto::TransportStats& t = impl_->core->transport().stats();
  const site::SiteCounters& c = impl_->core->counters();
  sum["datagrams_out"] += t.datagrams_out;
  sum["datagrams_in"] += t.datagrams_in;
  sum["retransmissions"] += t.retransmissions;
  sum["control_messages_out"] += c.control_sent;
  return sum;
}

site::ShellApi& BenchSession::shell() { return *impl_->api; }

pid_t BenchSession::site_pid(std::uint32_t site) const {
  if (site == 0) return impl_->local.process_group();  // the leader's pid
  for (const auto& d : impl_->local.sites())
    if (d.site == site) return d.pid;
  return -1;
}

Status BenchSession::problem() const { return impl_->problem; }

Status BenchSession::kill_site(std::uint32_t site) {
  const pid_t pid = site_pid(site);
  if (pid <= 0)
    return Status::error(Status::Code::kNotFound, "no site " + std::to_string(site) + " to kill");
  // Expected before it happens: the next check may reap it at once.
  impl_->expected_deaths.push_back("site " + std::to_string(site) + " (pid " + std::to_string(pid) +
                                   ") died: killed by signal " + std::to_string(SIGKILL));
  if (::kill(pid, SIGKILL) != 0) {
    impl_->expected_deaths.pop_back();
    return Status::error(Status::Code::kIoError, "cannot kill site " + std::to_string(site));
  }
  return Status::ok_status();
}

Status BenchSession::pump_for(std::chrono::nanoseconds duration) {
  (void)impl_->pump([] { return false; }, duration);
  return impl_->problem;
}

Status BenchSession::shutdown() {
  if (impl_->shut_down) return impl_->problem;
  impl_->shut_down = true;
  impl_->api->leave();
  (void)impl_->loop->run_until([] { return false; }, 20ms);
  Status st = impl_->without_expected_deaths(impl_->local.shutdown(2s));
  impl_->merger->flush();
  if (!impl_->problem.ok()) return impl_->problem;
  return st;
}

Result<std::string> append_sync(site::ShellApi& shell, const std::string& stream,
                                const std::string& message) {
  auto r = shell.stream_append(stream, message, /*sync=*/true);
  if (!r.ok()) return r.status();
  if (const auto& f = r->failure)
    return Status::error(Status::Code::kInternal, "error in " + f->event + " handler: stream \"" +
                                                      stream + "\", agent " +
                                                      std::to_string(f->agent) + ": " + f->message);
  return std::move(r->results);
}

Result<Burst> append_burst(site::ShellApi& shell, const char* stream, std::uint32_t n,
                           const std::string& last, std::size_t message_bytes) {
  const std::string message(message_bytes, 'x');
  const auto t0 = Clock::now();
  for (std::uint32_t i = 0; i < n; ++i) {
    auto r = shell.stream_append(stream, message, /*sync=*/false);
    if (!r.ok()) return r.status();
  }
  auto r = append_sync(shell, stream, last);
  const auto t1 = Clock::now();
  if (!r.ok()) return r.status();
  return Burst{*r, std::chrono::duration<double, std::nano>(t1 - t0).count()};
}

Result<std::vector<std::uint64_t>> parse_sync_numbers(const std::string& result,
                                                      std::size_t count) {
  std::string_view text(result);
  if (!text.empty() && text.front() == '{') text.remove_prefix(1);
  if (!text.empty() && text.back() == '}') text.remove_suffix(1);
  std::vector<std::uint64_t> out;
  while (!text.empty()) {
    if (text.front() == ' ') {
      text.remove_prefix(1);
      continue;
    }
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc()) break;
    out.push_back(v);
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  }
  if (!text.empty() || out.size() != count)
    return Status::error(Status::Code::kInternal,
                         "unexpected -sync result \"" + result + "\" from a benchmark agent");
  return out;
}

Result<std::int64_t> anonymous_rss_bytes(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/status";
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RssAnon:", 0) != 0) continue;
    std::int64_t kb = 0;
    std::string_view v(line);
    v.remove_prefix(8);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), kb);
    if (ec != std::errc()) break;
    return kb * 1024;
  }
  return Status::error(Status::Code::kIoError, "no RssAnon in " + path);
}

}  // namespace mstream::bench
