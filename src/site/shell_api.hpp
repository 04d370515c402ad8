#pragma once
// ShellApi: the mstream Tcl commands for a shell (an `mstream run` script, `mstream shell`).
// Control commands are synchronous: each sends its request to the leader and returns once the
// leader answered, i.e. once it took effect (COMMANDS.md "Shell or handler"), so a script runs
// deterministically top to bottom. Queries read the shell's directory replica, which the
// leader updates before it answers, so a shell always sees the effect of its own commands.
//
// Waiting is done by `pump`, which runs the shell's driver (network, timers) until a condition
// holds or a timeout passes.
//
// Thread-safety: none; the thread running the shell's interpreter and driver.

#include <chrono>
#include <functional>
#include <set>
#include <string>

#include "site/site_core.hpp"
#include "tcl/script_api.hpp"

namespace mstream::site {

class ShellApi final : public tcl::ScriptApi {
 public:
  // Runs the driver until done() or the timeout.
  // Ok once done(); otherwise why not: the session failed (e.g. a local site died), or
  // kUnavailable with an empty message on timeout.
  using Pump =
      std::function<Status(const std::function<bool()>& done, std::chrono::nanoseconds timeout)>;
  using Write = std::function<void(std::string_view text)>;

  // `core` (a SiteCore in shell mode) must outlive this. `timeout` bounds every wait for the
  // session (a leader that does not answer gives an error, not a hang).
  ShellApi(SiteCore* core, Pump pump, Write write, std::chrono::nanoseconds timeout);

  // Waits until the whole session is quiescent (nothing appended is unconsumed, no handler
  // runs, no control operation is pending). Errors: kUnavailable on timeout.
  Status wait_quiescent(std::chrono::nanoseconds timeout);
  // Waits until every message this shell appended was consumed.
  Status wait_released(std::chrono::nanoseconds timeout);
  // Tells the leader this shell is leaving (its -temp streams are destroyed).
  void leave();

  const tcl::HandlerContext* context() const override { return nullptr; }
  Result<std::string> stream_create(const std::string& name,
                                    const tcl::CreateOptions& options) override;
  Status stream_open(const std::string& name) override;
  Result<tcl::AppendAnswer> stream_append(const std::string& name, std::string message,
                                          bool sync) override;
  Result<tcl::MoveAnswer> stream_move(const std::string& name, tcl::SiteNumber site) override;
  Result<tcl::SiteNumber> stream_location(const std::string& name) override;
  Status stream_destroy(const std::string& name) override;
  bool stream_exists(const std::string& name) override { return core_->directory().exists(name); }
  std::vector<tcl::StreamInfo> list_streams() override { return core_->directory().stream_list(); }
  Result<tcl::SiteNumber> stream_creator(const std::string& name) override {
    return core_->directory().creator_of(name);
  }
  Result<std::string> register_agent(const std::string& stream, const std::string& args,
                                     const std::string& body, const std::string& cpp_type,
                                     bool controller) override;
  Status agent_exit() override;
  // A shell is attached to the leader's site.
  tcl::SiteNumber my_id() override { return 0; }
  std::vector<tcl::SiteNumber> site_list() override { return core_->directory().live_sites(); }
  std::vector<tcl::PeerInfo> peer_map() override { return core_->directory().peer_list(); }
  void write_stdout(std::string_view text, bool nonewline) override;

 private:
  Result<wire::Reply> call(wire::ControlMessage request);
  // The failure a shell's command raises, if a handler failed (agent 0: none did).
  static std::optional<tcl::HandlerFailure> failure_of(const std::string& stream,
                                                       tcl::SiteNumber site,
                                                       wire::HandlerFailure f);
  static Status waited(const Status& why, const std::string& timeout_text);

  SiteCore* core_;
  Pump pump_;
  Write write_;
  std::chrono::nanoseconds timeout_;
  std::string partial_;
};

}  // namespace mstream::site
