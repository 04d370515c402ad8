#pragma once
// TclHost: the Tcl agents of one worker thread at one site, sharing one interpreter
// (DESIGN.md "Threads": an interpreter costs ~280 KB, so agents share one; each agent lives in
// its own namespace ::mstream::agent::<id>, where its "globals", procs and handlers are, and it
// sees only those). Also installs the mstream script commands (COMMANDS.md) in any interpreter,
// for shells.
//
// Thread-safety: a TclHost is used only by the thread that constructed it (Tcl's rule:
// "only the thread that created a Tcl interpreter can use that interpreter", doc/Thread.3).
// Lifetime: `api` must outlive the TclHost.
//
// Handler context: TclHost does not read or store the `context` arguments below. The caller's
// ScriptApi owns it: for the duration of load_agent() and run() it must return that same context
// from api->context() (stream_name, stream_sender_name, stream_relocate and `stream_location`
// without a name use it; the site needs it anyway to know who appends). The parameters stay so
// that a call site shows which context a handler runs in.
//
// Agent isolation: an agent's initialization code and handlers run at the level of its
// namespace, as `namespace eval` code; unqualified variables there are the agent's own even when
// a global of the same name exists (Tcl 8.6 would otherwise write the global), and `global NAME`
// in its procedures means the agent's NAME. Qualified names (::x, ::mstream::agent::7::x) still
// reach anything in the interpreter: isolation keeps agents from colliding by accident, it is not
// a security boundary (agents of different trust never share a TclHost, DESIGN.md "Threads").
// The interpreter is made without Tcl_Init (no init.tcl, no `unknown`, no auto-loading).
//
// Sandbox (COMMANDS.md, "Sandbox"): trusted agents (AgentOptions::trusted, the site's own
// controllers) live in the host's interpreter; every other agent (mobile code) lives in a Tcl
// safe interpreter, one per domain, a child of it: no files, sockets, programs, libraries,
// `interp`, `after`, `vwait` or `update` there, only Tcl's safe core, the mstream commands and
// what a controller exposed (sandbox_expose), and each run is bounded by HandlerLimits.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mstream/status.hpp"
#include "tcl/script_api.hpp"

struct Tcl_Interp;

namespace mstream::tcl {

// The events an agent may handle. The first four are every agent's; the others are policy
// events (COMMANDS.md, Policy), whose handlers only a privileged agent (a controller) may set:
// they return `allow` or raise an error to deny.
enum class Event {
  kAppend,
  kRelocation,
  kFailure,
  kFinalize,
  kOpen,      // on_stream_open
  kCreate,    // on_stream_create
  kDestroy,   // on_stream_destroy
  kMove,      // on_stream_move
  kRegister,  // on_agent_register
  kArrival,   // on_stream_arrival_policy
  kNewPeer,   // on_new_peer
};
inline constexpr std::size_t kEventCount = 11;
inline constexpr bool is_policy_event(Event e) { return e >= Event::kOpen; }

// How an agent is loaded. privileged: a controller (the session's, a site's, or a stream's
// controller agent), which may set policy handlers. trusted: code the site's owner installed
// (the session and site controllers, from a local file), as opposed to mobile code, which
// every other agent is, stream controllers included.
// domain: who sent mobile code (wire::Code::origin): agents of one domain share a sandbox
// interpreter, agents of different domains never do.
struct AgentOptions {
  bool privileged = false;
  bool trusted = false;
  std::uint32_t domain = 0;
};

// What one run of a sandboxed agent's code (its initialization or a handler) may take before
// it is aborted with an error (the interpreter stays usable; the next run starts afresh).
// 0: no limit. time and commands use Tcl's interpreter limits (doc/Limit.3); memory is the
// process's heap growth during the run, checked every `check_every` commands; value_bytes caps
// the values that string repeat, lrepeat, append and string cat make in one command.
struct HandlerLimits {
  std::uint64_t time_ms = 10000;
  std::uint64_t commands = 100'000'000;
  std::uint64_t memory_bytes = 512ull << 20;
  std::uint64_t value_bytes = 64ull << 20;
  std::uint32_t check_every = 1000;
};

struct HandlerOutcome {
  bool ran = false;        // the agent has a handler for the event
  bool ok = true;          // false: the handler raised an error
  std::string result;      // the handler's result, or the error message
  std::string error_info;  // Tcl's errorInfo when !ok
};

// Registers every mstream command of COMMANDS.md (those not marked later) in `interp`,
// calling `api`. Used for shell interpreters; TclHost calls it for its own.
// Errors: wrong arity raises Tcl's `wrong # args: should be "..."` (errorCode TCL WRONGARGS); an
// error Status from `api` raises its message verbatim with errorCode {MSTREAM <code_name()>}
// (e.g. {MSTREAM {not found}}); a C++ exception raises `internal error: ...` (MSTREAM internal).
// The agent-only commands (on_stream_*, on_agent_finalize, briefcase) raise
// `<command>: not inside an agent` here; the handler-only ones (stream_relocate, stream_name,
// stream_sender_name) `<command>: not inside a handler` while api->context() is null.
// `puts` to stdout (with or without -nonewline) goes to api->write_stdout(); the interpreter's
// own puts stays as ::mstream::builtin_puts and serves every other channel.
// Installing again (e.g. another api) replaces the commands and keeps the builtin puts.
// kInvalidArgument for a null interp or api.
Status install_commands(Tcl_Interp* interp, ScriptApi* api);

// `elements` as one well-formed Tcl list (Tcl_Merge: quoting as Tcl itself does). Needs no
// interpreter; safe from any thread.
std::string merge_list(const std::vector<std::string>& elements);

class TclHost {
 public:
  explicit TclHost(ScriptApi* api);
  ~TclHost();
  TclHost(const TclHost&) = delete;
  TclHost& operator=(const TclHost&) = delete;

  // The agent's first visit here: makes its namespace and runs its initialization code `body`
  // there with $argv set to `args` (COMMANDS.md register_agent). On error (kInvalidArgument,
  // message = Tcl error, error_info filled) nothing of the agent remains. kAlreadyExists if the
  // agent is loaded already.
  // A policy handler set by an agent that is not privileged raises
  // `<command>: only a controller agent may set policy handlers`.
  Status load_agent(std::uint64_t agent, std::string_view args, std::string_view body,
                    const HandlerContext& context, std::string* error_info,
                    AgentOptions options = {});
  bool has_agent(std::uint64_t agent) const;
  bool has_handler(std::uint64_t agent, Event event) const;

  // Runs the agent's handler for `event` with $argv = `argv` (the message, for appends).
  // Handlers are set by on_stream_append & co. in the agent's code, one per event (the last one
  // wins, also from inside a running handler; an empty script removes it). ran=false: no such
  // agent or no handler for the event.
  HandlerOutcome run(std::uint64_t agent, Event event, const HandlerContext& context,
                     std::string_view argv);

  // The values of the variables the agent declared with `briefcase`, as one opaque string
  // (arrays included; declared variables that are unset are left out; "" for an unknown agent),
  // and their restoration at the target of a move: arrays are replaced whole, the restored names
  // join the agent's briefcase. A malformed string changes nothing and gives kInvalidArgument;
  // kNotFound for an unknown agent. (Format, for the curious: a Tcl list of
  // `name scalar|array value` triples, array values as from `array get`.)
  std::string save_briefcase(std::uint64_t agent);
  Status restore_briefcase(std::uint64_t agent, std::string_view saved);

  // Frees the agent's namespace, variables and handlers (after its finalization handler ran).
  // Allowed from inside the agent's own handler (through the api): the namespace then goes when
  // the handler returns.
  void drop_agent(std::uint64_t agent);

  std::size_t agent_count() const;
  // Sandboxes (one per domain with agents here) whose domain has no agent left are kept, ready
  // for its next agent, only while they are among this many most recently emptied: a domain
  // may be a shell that is gone for good (doc/session.md "What is forgotten").
  static constexpr std::size_t kIdleSandboxes = 2;
  std::size_t sandbox_count() const;
  // The trusted interpreter (shell-like uses and tests); sandboxes are its children.
  Tcl_Interp* interp() const;
  // The limits of later runs of sandboxed agents.
  void set_limits(const HandlerLimits& limits);
  // The interpreter agent runs in (nullptr: unknown agent).
  Tcl_Interp* interp_of(std::uint64_t agent) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mstream::tcl
