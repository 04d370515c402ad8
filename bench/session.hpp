#pragma once
// A whole local session for the session benchmarks (move, moving-pipeline, append-tcl, the
// stream and agent part of memory): a leader and N `mstream site` processes started from the
// mstream binary (runtime::LocalSession, as `mstream run` does), and this process as their
// shell (a SiteCore in shell mode with the ShellApi the Tcl commands use), so a benchmark
// drives the session exactly as a script would, minus the Tcl parsing.
//
// Placement: the daemons and the shell are not pinned (a session has more processes than this
// machine has cores), and every one of them blocks in the kernel while it waits; a benchmark
// compares them with a baseline placed and waiting the same way.
//
// Thread-safety: none. start() forks and execs the daemons and starts one output thread (the
// daemons' stdout goes to our stderr, so that --json output stays clean); fork nothing else
// (e.g. a raw UDP baseline) while a BenchSession exists. Every daemon is killed and reaped when
// the BenchSession goes away, on every path.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench.hpp"
#include "mstream/status.hpp"

namespace mstream::site {
class ShellApi;
}

namespace mstream::bench {

struct SessionConfig {
  std::string binary;  // the mstream executable
  std::uint32_t sites = 4;
  // Appended to the command line of the leader and of every site (e.g. "--drop", "0.05").
  std::vector<std::string> daemon_args;
  // Appended to the leader's command line only, after daemon_args (e.g. "--failure-timeout").
  std::vector<std::string> leader_args;
  // Seeds each daemon's loss model differently (--drop-seed) when daemon_args hold --drop.
  std::uint64_t drop_seed = 0;
  // As users run a session: every datagram sealed, under a session secret made for this
  // session in a private temporary directory (doc/security.md). False: --insecure.
  bool secured = true;
};

// The mstream executable the session benchmarks start daemons from: options.binary, else this
// process's own executable (right for `mstream bench`; a test passes the path).
std::string mstream_binary(const BenchOptions& options);
// A session of mstream_binary(options)'s daemons, with options.workers handler threads each.
SessionConfig session_config(const BenchOptions& options);

// Counters summed over the whole session (the leader, every site and the benchmark's shell),
// by name: datagrams_out, datagrams_in, retransmissions, control_messages_out (control
// messages sent to another process), worker_jobs (work handed to a handler thread),
// moves_in, moves_out.
using DaemonCounters = std::map<std::string, std::uint64_t>;

class BenchSession {
 public:
  // Starts the daemons and joins as a shell. Errors: those of LocalSession::start, or
  // kUnavailable when the leader does not admit the shell.
  static Result<std::unique_ptr<BenchSession>> start(const SessionConfig& config);
  ~BenchSession();
  BenchSession(const BenchSession&) = delete;
  BenchSession& operator=(const BenchSession&) = delete;

  // The shell's synchronous commands (stream_create, stream_move, register_agent, -sync
  // appends, wait_quiescent). Every wait ends with an error, not a hang, when a daemon dies or
  // a handler reports an error.
  site::ShellApi& shell();
  // The process of site `site` (1..N, 0: the leader's); -1 if there is no such site.
  pid_t site_pid(std::uint32_t site) const;
  // Leaves as a shell and joins again as a new one (a new id, a new SiteCore): shell() is the
  // new one's. Errors: those of the join, or problem().
  Status new_shell();
  // Sends `signal` to every daemon (SIGUSR1: return free heap pages, `mstream site`).
  Status signal_daemons(int signal);
  // The session's counters now (each daemon writes its --stats-file on SIGUSR2). Errors:
  // kUnavailable (a daemon wrote none within 5 s), problem().
  Result<DaemonCounters> counters();
  // The first handler error, failed request or daemon death seen so far; ok if none. A site
  // killed by kill_site() is not a problem.
  Status problem() const;
  // SIGKILLs site `site` (1..N), as a crash would: from then on its death is expected, by
  // every wait and by shutdown(). Errors: kNotFound (no such site), kIoError (kill failed).
  Status kill_site(std::uint32_t site);
  // Runs the shell's event loop for `duration` (so it keeps talking to the session, as a
  // shell must: one silent for the leader's failure timeout is declared failed). Errors: the
  // problem() that cut it short.
  Status pump_for(std::chrono::nanoseconds duration);
  // Lets the session go: leaves as a shell, stops the daemons. Errors: a daemon that did not
  // exit cleanly, or the problem() seen during the run.
  Status shutdown();

 private:
  struct Impl;
  explicit BenchSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A -sync append's results; a handler that failed is an error (kInternal, its message).
Result<std::string> append_sync(site::ShellApi& shell, const std::string& stream,
                                const std::string& message);

// The result of a -sync append to a stream with one agent ("{RESULT}" or "RESULT"), parsed as
// space-separated unsigned numbers; kInternal unless there are exactly `count`.
Result<std::vector<std::uint64_t>> parse_sync_numbers(const std::string& result, std::size_t count);

// A burst: `n` asynchronous appends of `message_bytes` bytes to `stream`, then `last` with
// -sync, which returns once all before it were consumed (per-sender FIFO). Its result and the
// elapsed ns.
struct Burst {
  std::string result;
  double ns = 0;
};
Result<Burst> append_burst(site::ShellApi& shell, const char* stream, std::uint32_t n,
                           const std::string& last, std::size_t message_bytes);

// Anonymous resident memory of process `pid` (RssAnon in /proc/PID/status), bytes: the heap
// and other private memory, without the file-backed pages (code) that a process maps in as it
// first runs a path. Errors: kIoError.
Result<std::int64_t> anonymous_rss_bytes(pid_t pid);

}  // namespace mstream::bench
