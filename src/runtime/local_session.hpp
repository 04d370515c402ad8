#pragma once
// The embedded session of `mstream run`: a leader (site 0) and N site daemons on loopback,
// started as child processes of the caller from the mstream binary itself.
//
// What the daemons must do (the contract start() relies on):
//   BINARY leader --listen HOST:PORT [leader_args...]
//     prints, once ready, the first stdout line "mstream: leader listening on HOST:PORT" (the
//     address it actually bound);
//   BINARY site --leader HOST:PORT [site_args...]
//     prints, once it has joined, the first stdout line "mstream: site N joined HOST:PORT"
//     (N its site id);
//   with MSTREAM_STAMPED_OUTPUT=1 in its environment, every later stdout line is a stamped line
//   (output_merger.hpp: stamped_line()); stdout is flushed after every line (a pipe is fully
//   buffered by default); stderr is the caller's, untouched; SIGTERM ends it with exit code 0.
//
// Cleanup: every daemon is in one process group of its own, led by the leader and distinct
// from the caller's, so terminal signals reach only the caller, and the group can be killed at
// once. shutdown() stops the daemons; the destructor SIGKILLs and reaps whatever still runs.
// A daemon also dies (SIGKILL) when the thread that started it ends (PR_SET_PDEATHSIG counts
// threads, not processes): call start() from the thread that outlives the session, normally the
// main thread. For signals that end the caller, see install_signal_cleanup().
//
// Thread-safety: none; one thread uses a LocalSession. kill_all_sessions() alone may be called
// from anywhere, signal handlers included.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mstream/status.hpp"
#include "proto/types.hpp"
#include "runtime/child_process.hpp"
#include "runtime/output_merger.hpp"

namespace mstream::runtime {

struct LocalSessionOptions {
  std::string binary;  // path of the mstream executable: argv[0] of every daemon
  std::uint32_t sites = 3;
  std::string listen = "127.0.0.1:0";  // the leader's --listen
  // Bounds the whole of start(): every daemon must be ready within it.
  std::chrono::nanoseconds start_timeout = std::chrono::seconds(10);
  std::vector<std::string> leader_args;  // appended to "leader --listen LISTEN"
  std::vector<std::string> site_args;    // appended to "site --leader ADDRESS" of every site
  // per_site_args[k] is appended, after site_args, for the (k+1)-th site started.
  std::vector<std::vector<std::string>> per_site_args;
  bool stamped_output = true;  // MSTREAM_STAMPED_OUTPUT=1 in the daemons' environment
};

// One daemon as the caller may see it.
struct DaemonProcess {
  proto::SiteId site = 0;  // 0 for the leader; a site's id from its ready line
  pid_t pid = -1;
  std::string address;  // the HOST:PORT of its ready line
};

class LocalSession {
 public:
  LocalSession() = default;
  LocalSession(const LocalSession&) = delete;
  LocalSession& operator=(const LocalSession&) = delete;
  // SIGKILLs and reaps every daemon still running, without waiting for a graceful stop.
  ~LocalSession();

  // Starts the leader, waits for its ready line, then starts the sites one at a time (the k-th
  // started is normally site k), waiting for each one's ready line. On error nothing is left
  // running and the message names the daemon and what went wrong (it never printed its ready
  // line within the timeout, exited before it was ready and how, or printed another line).
  // REQUIRES: start() was not called before.
  // Errors: kInvalidArgument (no binary), kIoError (fork), kUnavailable (a daemon failed).
  Status start(const LocalSessionOptions& options);

  // REQUIRES (for these three): start() succeeded.
  const std::string& leader_address() const { return leader_.address; }
  const DaemonProcess& leader() const { return leader_; }
  // The sites in the order they were started.
  const std::vector<DaemonProcess>& sites() const { return sites_; }
  // Gives every daemon's stdout (with any line already read past its ready line) to `merger`,
  // prefixed with its site id. Do it soon after start(): a daemon whose pipe nobody reads
  // blocks once the pipe is full. REQUIRES: start() succeeded; called at most once.
  void attach_output(OutputMerger& merger);

  // The daemons' process group (the leader's pid); -1 before start(). Kept after a failed
  // start() or shutdown(), for inspection only: once the daemons are reaped the id may be
  // reused.
  pid_t process_group() const { return group_; }

  // Ok while every daemon runs. Otherwise kUnavailable naming each daemon that ended, e.g.
  // "site 2 (pid 1234) died: killed by signal 9" (reaping it); also kUnavailable before
  // start() and after shutdown().
  Status check_running();

  // Sends SIGTERM to the sites and waits at most `timeout` for them to exit, then does the
  // same for the leader (so sites do not see their leader vanish); a daemon still running
  // after its wait is SIGKILLed. Returns once every daemon is reaped: after at most about
  // twice `timeout`. Ok if every daemon exited 0 on SIGTERM; otherwise kUnavailable listing
  // those that died earlier, ended otherwise, or had to be killed. Idempotent.
  Status shutdown(std::chrono::nanoseconds timeout);

  // Async-signal-safe: SIGKILLs the process group of every started LocalSession of this
  // process that still has daemons. For a caller with signal handlers of its own.
  static void kill_all_sessions();
  // Installs handlers for SIGINT, SIGTERM and SIGHUP (leaving alone any of them that is
  // ignored, as under nohup) that call kill_all_sessions() and then end the process: SIGINT
  // with _exit(130), the others by re-raising the signal with its default action, so our
  // parent sees what ended us. Held output is lost then. Replaces earlier handlers of those
  // signals. Errors: kIoError if sigaction fails.
  static Status install_signal_cleanup();

 private:
  struct Daemon {
    std::string name;    // "leader", "site 2": for messages
    proto::SiteId site;  // 0 for the leader; a site's from its ready line
    pid_t pid;
    ChildProcess process;
    std::optional<int> wait_status;  // once reaped
    bool died_unasked = false;       // reaped before shutdown() asked it to stop
    bool killed = false;             // SIGKILLed by shutdown() after its wait
  };

  // The first line of `daemon`; `timeout` (the whole start's) is for the error message.
  Result<std::string> read_ready_line(Daemon& daemon, proto::Time deadline,
                                      std::chrono::nanoseconds timeout);
  Status spawn_daemon(std::string name, const std::vector<std::string>& argv, pid_t group,
                      const LocalSessionOptions& options);
  // Reaps every daemon that has exited; once none is left, no signal handler may kill the group.
  void reap_exited();
  // SIGTERMs daemons_[first, last) and waits until they exit or `deadline`; SIGKILLs the rest.
  void stop_daemons(std::size_t first, std::size_t last, proto::Time deadline);
  void kill_and_reap_all();

  enum class State { kNew, kRunning, kFailed, kShutDown };
  State state_ = State::kNew;
  pid_t group_ = -1;
  std::vector<Daemon> daemons_;  // [0] is the leader, then the sites in start order
  DaemonProcess leader_;
  std::vector<DaemonProcess> sites_;
};

}  // namespace mstream::runtime
