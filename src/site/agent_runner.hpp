#pragma once
// AgentRunner: the agents loaded at one site, Tcl or C++, behind one interface. Tcl agents
// share one interpreter (tcl::TclHost, made on the first Tcl agent: it costs ~280 KB and 1 ms);
// C++ agents are objects made by their registered factory.
//
// Thread-safety: none; used by the thread that runs the site's handlers.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "mstream/agent.hpp"
#include "tcl/script_api.hpp"
#include "tcl/tcl_host.hpp"
#include "wire/control.hpp"

namespace mstream::site {

class AgentRunner {
 public:
  // Both must outlive the runner.
  AgentRunner(tcl::ScriptApi* api, AgentContext* cpp_context);
  ~AgentRunner();

  // First visit of the agent here: runs its initialization. On error nothing remains.
  Status load(const wire::Code& code, const tcl::HandlerContext& context, std::string* error_info);
  bool loaded(std::uint64_t agent) const;
  bool has_handler(std::uint64_t agent, tcl::Event event) const;
  tcl::HandlerOutcome run(std::uint64_t agent, tcl::Event event, const tcl::HandlerContext& context,
                          std::string_view argv);
  std::string save_briefcase(std::uint64_t agent);
  Status restore_briefcase(std::uint64_t agent, std::string_view saved);
  // Runs the finalization handler (if any) and frees the agent here.
  tcl::HandlerOutcome finalize(std::uint64_t agent, const tcl::HandlerContext& context);
  std::size_t count() const { return cpp_.size() + (tcl_ ? tcl_->agent_count() : 0); }
  std::size_t sandbox_count() const { return tcl_ ? tcl_->sandbox_count() : 0; }
  // The limits of sandboxed Tcl agents' runs (tcl::HandlerLimits).
  void set_limits(const tcl::HandlerLimits& limits);

 private:
  tcl::TclHost& tcl();
  tcl::ScriptApi* api_;
  AgentContext* cpp_context_;
  std::unique_ptr<tcl::TclHost> tcl_;
  tcl::HandlerLimits limits_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Agent>> cpp_;
};

}  // namespace mstream::site
