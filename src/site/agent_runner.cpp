#include "site/agent_runner.hpp"

#include <exception>
#include <map>
#include <mutex>
#include <string>

namespace mstream {
namespace {
struct Registry {
  std::mutex mu;
  std::map<std::string, AgentFactory, std::less<>> types;
};
Registry& registry() {
  static Registry r;
  return r;
}
}  // namespace

Status register_agent_type(const std::string& name, AgentFactory factory) {
  if (name.empty() || !factory)
    return Status::error(Status::Code::kInvalidArgument,
                         "an agent type needs a name and a factory");
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  if (!r.types.emplace(name, std::move(factory)).second)
    return Status::error(Status::Code::kAlreadyExists, "agent type \"" + name + "\" exists");
  return Status::ok_status();
}

const AgentFactory* find_agent_type(std::string_view name) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  auto it = r.types.find(name);
  return it == r.types.end() ? nullptr : &it->second;
}

}  // namespace mstream

namespace mstream::site {
namespace {
// The exception in flight, as the error a handler returns (include/mstream/agent.hpp): it must
// not leave the worker thread, where it would end the daemon. `where` heads the message.
Status thrown(const std::string& where) {
  std::string what;
  try {
    throw;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "an exception that is not a std::exception";
  }
  return Status::error(Status::Code::kInternal, where + ": " + what);
}

tcl::HandlerOutcome from_status(const Status& s, std::string result) {
  tcl::HandlerOutcome out;
  out.ran = true;
  out.ok = s.ok();
  out.result = s.ok() ? std::move(result) : s.message();
  if (!s.ok()) out.error_info = s.message();
  return out;
}
}  // namespace

AgentRunner::AgentRunner(tcl::ScriptApi* api, AgentContext* cpp_context)
    : api_(api), cpp_context_(cpp_context) {}
AgentRunner::~AgentRunner() = default;

tcl::TclHost& AgentRunner::tcl() {
  if (!tcl_) {
    tcl_ = std::make_unique<tcl::TclHost>(api_);
    tcl_->set_limits(limits_);
  }
  return *tcl_;
}

void AgentRunner::set_limits(const tcl::HandlerLimits& limits) {
  limits_ = limits;
  if (tcl_) tcl_->set_limits(limits);
}

Status AgentRunner::load(const wire::Code& code, const tcl::HandlerContext& context,
                         std::string* error_info) {
  if (code.cpp_type.empty()) {
    tcl::AgentOptions options;
    options.privileged = (code.flags & wire::kAgentController) != 0;
    options.trusted = (code.flags & wire::kAgentTrusted) != 0;
    options.domain = code.origin;
    try {  // the interpreter is made on the first Tcl agent, and cannot always be
      return tcl().load_agent(code.agent, code.args, code.body, context, error_info, options);
    } catch (...) {
      Status s = thrown("cannot make a Tcl interpreter for the agent");
      if (error_info) *error_info = s.message();
      return s;
    }
  }
  const AgentFactory* factory = find_agent_type(code.cpp_type);
  if (!factory)
    return Status::error(Status::Code::kNotFound, "no such agent type \"" + code.cpp_type + "\"");
  Result<std::unique_ptr<Agent>> made = Status::error(Status::Code::kInternal, "no agent made");
  try {
    made = (*factory)(code.args);
  } catch (...) {
    made = thrown("C++ agent threw from its factory");
  }
  if (made.ok() && made.value() == nullptr)
    made = Status::error(Status::Code::kInternal,
                         "C++ agent type \"" + code.cpp_type + "\" made no agent");
  if (!made.ok()) {
    if (error_info) *error_info = made.status().message();
    return made.status();
  }
  cpp_[code.agent] = std::move(made.value());
  return Status::ok_status();
}

bool AgentRunner::loaded(std::uint64_t agent) const {
  return cpp_.contains(agent) || (tcl_ && tcl_->has_agent(agent));
}

bool AgentRunner::has_handler(std::uint64_t agent, tcl::Event event) const {
  auto it = cpp_.find(agent);
  if (it != cpp_.end()) return event != tcl::Event::kAppend || it->second->has_append_handler();
  return tcl_ && tcl_->has_handler(agent, event);
}

tcl::HandlerOutcome AgentRunner::run(std::uint64_t agent, tcl::Event event,
                                     const tcl::HandlerContext& context, std::string_view argv) {
  auto it = cpp_.find(agent);
  if (it == cpp_.end()) {
    if (!tcl_) return {};
    return tcl_->run(agent, event, context, argv);
  }
  Agent& a = *it->second;
  switch (event) {
    case tcl::Event::kAppend: {
      std::string result;
      Status s = Status::ok_status();
      try {
        s = a.on_append(*cpp_context_, argv, &result);
      } catch (...) {
        s = thrown("C++ agent threw from on_append");
      }
      return from_status(s, std::move(result));
    }
    case tcl::Event::kRelocation:
      try {
        return from_status(a.on_relocation(*cpp_context_), {});
      } catch (...) {
        return from_status(thrown("C++ agent threw from on_relocation"), {});
      }
    case tcl::Event::kFailure:
      try {
        return from_status(a.on_failure(*cpp_context_), {});
      } catch (...) {
        return from_status(thrown("C++ agent threw from on_failure"), {});
      }
    case tcl::Event::kFinalize:
      try {
        a.on_finalize(*cpp_context_);
      } catch (...) {
        return from_status(thrown("C++ agent threw from on_finalize"), {});
      }
      return from_status(Status::ok_status(), {});
    case tcl::Event::kOpen:
    case tcl::Event::kCreate:
    case tcl::Event::kDestroy:
    case tcl::Event::kMove:
    case tcl::Event::kRegister:
    case tcl::Event::kArrival:
    case tcl::Event::kNewPeer:
      break;  // a C++ agent is never a controller
  }
  return {};
}

std::string AgentRunner::save_briefcase(std::uint64_t agent) {
  auto it = cpp_.find(agent);
  if (it != cpp_.end()) return it->second->save_briefcase();
  return tcl_ ? tcl_->save_briefcase(agent) : std::string();
}

Status AgentRunner::restore_briefcase(std::uint64_t agent, std::string_view saved) {
  auto it = cpp_.find(agent);
  if (it != cpp_.end()) {
    try {
      return it->second->restore_briefcase(saved);
    } catch (...) {
      return thrown("C++ agent threw from restore_briefcase");
    }
  }
  if (!tcl_) return Status::error(Status::Code::kNotFound, "agent not loaded here");
  return tcl_->restore_briefcase(agent, saved);
}

tcl::HandlerOutcome AgentRunner::finalize(std::uint64_t agent, const tcl::HandlerContext& context) {
  tcl::HandlerOutcome out;
  auto it = cpp_.find(agent);
  if (it != cpp_.end()) {
    try {
      it->second->on_finalize(*cpp_context_);
      out.ran = true;
    } catch (...) {
      out = from_status(thrown("C++ agent threw from on_finalize"), {});
    }
    cpp_.erase(it);
    return out;
  }
  if (!tcl_ || !tcl_->has_agent(agent)) return out;
  out = tcl_->run(agent, tcl::Event::kFinalize, context, {});
  tcl_->drop_agent(agent);
  return out;
}

}  // namespace mstream::site
