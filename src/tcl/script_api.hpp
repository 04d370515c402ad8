#pragma once
// ScriptApi: what the mstream Tcl commands (COMMANDS.md) ask of the session. The Tcl layer
// parses and checks arguments, then calls one of these; a site (for handlers) and a shell (for
// scripts) implement it. An error Status becomes a Tcl error whose message is the Status
// message, unchanged (so implementations write the user-facing text: `no such stream "foo"`).
//
// Thread-safety: every call comes from the thread running the interpreter that issued the
// command; an implementation serving several worker threads must make that safe itself.
// Shell implementations may block (control commands are synchronous from a shell); handler
// implementations must not wait for the network: control commands are queued, queries are
// answered from the site's replica of the session directory (COMMANDS.md, "Shell or handler").

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mstream/status.hpp"

namespace mstream::tcl {

using SiteNumber = std::uint32_t;

struct CreateOptions {
  bool temp = false;
  bool durable = false;
  std::optional<SiteNumber> failure_manager;
  std::optional<SiteNumber> site;
};

struct PeerInfo {
  SiteNumber site = 0;
  std::string address;  // "HOST:PORT"
  bool live = true;
};

struct StreamInfo {
  std::string name;
  SiteNumber site = 0;
};

// What a handler runs for: set by the site around each handler call, empty in a shell.
struct HandlerContext {
  std::string stream;  // the handler's own stream
  std::string sender;  // the sender of the message being handled ("" when not an append)
  std::uint64_t agent = 0;
  // Whether anyone reads a handler's result when it succeeds (a -sync append's shell, the
  // site for a controller's verdict): without, the result is not made (HandlerOutcome::result
  // stays empty). An error's message is always made.
  bool result_wanted = true;
};

// A handler that raised an error where a shell's command ran it and waited for it: the first
// failing agent, in attach order, of a -sync append, or of a moved stream's arrival. The
// command raises it (errorCode MSTREAM HANDLER STREAM AGENT SITE; COMMANDS.md).
struct HandlerFailure {
  std::string stream;
  std::uint64_t agent = 0;
  SiteNumber site = 0;
  std::string event;    // "append", "initialization", "relocation"
  std::string message;  // the handler's own error message
};

// stream_append's answer. Without -sync: empty. With it: `results`, a Tcl list of one result
// per agent with an append handler; or, when a handler failed, `failure` and, in `results`,
// AGENT RESULT pairs of the agents that succeeded.
struct AppendAnswer {
  std::string results;
  std::optional<HandlerFailure> failure;
};

// stream_move's answer: the stream is at `site`; `failure` when a handler failed there on
// arrival (the move took effect all the same).
struct MoveAnswer {
  SiteNumber site = 0;
  std::optional<HandlerFailure> failure;
};

class ScriptApi {
 public:
  virtual ~ScriptApi() = default;

  // The handler being run, or nullptr in a shell. Valid until the handler returns.
  virtual const HandlerContext* context() const = 0;

  virtual Result<std::string> stream_create(const std::string& name,
                                            const CreateOptions& options) = 0;
  virtual Status stream_open(const std::string& name) = 0;
  // sync: wait for consumption and return the handlers' results (a shell only; a handler
  // gets an error).
  virtual Result<AppendAnswer> stream_append(const std::string& name, std::string message,
                                             bool sync) = 0;
  virtual Result<MoveAnswer> stream_move(const std::string& name, SiteNumber site) = 0;
  virtual Result<SiteNumber> stream_location(const std::string& name) = 0;
  virtual Status stream_destroy(const std::string& name) = 0;
  virtual bool stream_exists(const std::string& name) = 0;
  virtual std::vector<StreamInfo> list_streams() = 0;  // the Tcl layer filters by pattern
  virtual Result<SiteNumber> stream_creator(const std::string& name) = 0;
  // Attaches a Tcl agent (cpp_type empty: body is its initialization code) or a registered C++
  // agent type (body empty). controller: the stream's controller agent (COMMANDS.md, Policy;
  // a Tcl agent, the stream's first). Returns the agent id, as text.
  virtual Result<std::string> register_agent(const std::string& stream, const std::string& args,
                                             const std::string& body, const std::string& cpp_type,
                                             bool controller) = 0;
  // The calling agent is destroyed once its handler returns (handlers only).
  virtual Status agent_exit() = 0;
  virtual SiteNumber my_id() = 0;
  virtual std::vector<SiteNumber> site_list() = 0;
  virtual std::vector<PeerInfo> peer_map() = 0;
  // One line written with `puts` to stdout (without its newline); `nonewline` when -nonewline.
  virtual void write_stdout(std::string_view text, bool nonewline) = 0;
};

}  // namespace mstream::tcl
