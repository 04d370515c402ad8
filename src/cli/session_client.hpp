#pragma once
// SessionClient: this process as a shell of a session: a SiteCore in shell mode on a NodeLoop,
// joined to the leader, with the ShellApi the Tcl commands call and a Tcl interpreter that has
// them. Used by `mstream run`, `mstream shell` and `mstream status`.
//
// Thread-safety: none; one thread.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "mstream/status.hpp"
#include "runtime/keepalive_thread.hpp"
#include "runtime/node_loop.hpp"
#include "runtime/secret_file.hpp"
#include "site/shell_api.hpp"
#include "site/site_core.hpp"

struct Tcl_Interp;
namespace CLI {
class App;
}

namespace mstream::cli {

// Whether and how this process proves it belongs to its session (doc/security.md).
struct SecurityOptions {
  std::string secret_file;  // empty: runtime::default_secret_path()
  bool insecure = false;
};
// --secret-file and --insecure on `app`, for a command of role `who` ("leader", "site", ...).
void add_security_options(CLI::App* app, SecurityOptions* o, bool leader);
// The session secret the options name, for a member (site, shell): none with --insecure;
// else the file's, which must pin the leader's public key. Errors: a clear message naming the
// file and what to do.
Result<std::optional<runtime::SessionSecret>> session_secret(const SecurityOptions& o);
// The leader's: the secret and its key pair, made when there are none (saying so on stderr).
Result<std::optional<runtime::LeaderSecret>> leader_secret(const SecurityOptions& o);

// The address to bind to talk to `leader`: loopback for a loopback leader, else any.
std::string default_listen_for(const std::string& leader);
// $MSTREAM_SESSION, else 127.0.0.1:7070.
std::string default_session();

class SessionClient {
 public:
  // Joins the session at `leader` and waits for its directory. Errors: kUnavailable (no
  // leader answered within `timeout`), kInvalidArgument (bad address).
  // With a secret, the session is a secured one (doc/security.md).
  static Result<std::unique_ptr<SessionClient>> connect(
      const std::string& leader, std::chrono::nanoseconds timeout,
      const std::optional<runtime::SessionSecret>& secret = std::nullopt);
  ~SessionClient();

  site::SiteCore& core() { return *core_; }
  site::ShellApi& api() { return *api_; }
  // Where the shell's own `puts` lines go (default: stdout).
  void set_write(std::function<void(std::string_view)> write) { write_ = std::move(write); }
  // Called after every round of the loop while waiting (e.g. to check on child processes);
  // returning an error ends the wait with it.
  void set_watch(std::function<Status()> watch) { watch_ = std::move(watch); }
  // The first error the watch returned, if any.
  const Status& watch_error() const { return watch_error_; }

  // Runs the loop until done() or timeout. Ok once done(); the watch's error if it failed;
  // kUnavailable with an empty message on timeout. Handler errors forwarded by the leader are
  // printed to stderr as they come.
  Status pump(const std::function<bool()>& done, std::chrono::nanoseconds timeout);

  // A Tcl interpreter with the mstream commands, for scripts and the interactive shell.
  Result<Tcl_Interp*> interpreter();

 private:
  SessionClient() = default;
  std::unique_ptr<runtime::NodeLoop> loop_;
  runtime::KeepaliveThread keepalive_;  // declared after loop_: stops before its socket closes
  std::unique_ptr<site::SiteCore> core_;
  std::unique_ptr<site::ShellApi> api_;
  std::function<void(std::string_view)> write_;
  std::function<Status()> watch_;
  Status watch_error_;
  Tcl_Interp* interp_ = nullptr;
};

}  // namespace mstream::cli
