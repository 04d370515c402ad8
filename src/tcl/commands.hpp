#pragma once
// Internal to src/tcl: the command table shared by shells (install_commands) and TclHost.
// The agent-only commands (on_stream_*, on_agent_finalize, briefcase) need to know which agent
// is running; a shell has no agents, so it passes no AgentScope and those commands fail with
// "<command>: not inside an agent".

#include <string>
#include <vector>

#include "mstream/status.hpp"
#include "tcl/script_api.hpp"
#include "tcl/tcl_host.hpp"

struct Tcl_Interp;
struct Tcl_Obj;

namespace mstream::tcl::detail {

// What the agent-only commands ask of the host of the running agent.
// Thread-safety: called only from the interpreter's thread, while a command runs.
class AgentScope {
 public:
  virtual ~AgentScope() = default;
  // False outside the initialization code and handlers of an agent.
  virtual bool in_agent() const = 0;
  // REQUIRES: in_agent(). Whether the running agent is a controller (may set policy handlers).
  virtual bool privileged() const = 0;
  // REQUIRES: in_agent(). Whether it is trusted code (outside the sandbox).
  virtual bool trusted() const = 0;
  // REQUIRES: in_agent(), privileged() and trusted(). Makes `name` a command of every sandbox
  // of this host, now and later, that runs `target` (a command of the running agent's, or a
  // fully qualified one) in the trusted interpreter.
  virtual Status expose(const std::string& name, const std::string& target) = 0;
  // REQUIRES: in_agent(). An empty script removes the handler.
  virtual void set_handler(Event event, Tcl_Obj* script) = 0;
  // REQUIRES: in_agent(). `names` are checked by the caller (simple names only).
  virtual void declare_briefcase(const std::vector<std::string>& names) = 0;
};

// A briefcase variable is one "global" of the agent: a simple name, with no namespace
// qualifier (it would escape the agent's namespace) and no array element syntax.
bool is_briefcase_name(std::string_view name);

// install_commands, with the agent scope of a TclHost (nullptr for a shell).
// Lifetime: `api` and `scope` must outlive the interpreter's commands.
Status install_commands(Tcl_Interp* interp, ScriptApi* api, AgentScope* scope);

}  // namespace mstream::tcl::detail
