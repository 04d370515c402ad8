#pragma once
// A ScriptApi for the Tcl binding's tests: records every call as one line of words, answers
// from plain tables, and fails or throws on demand.

#include <tcl.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tcl/script_api.hpp"

namespace mstream::tcl::testing {

class FakeScriptApi : public ScriptApi {
 public:
  // Streams named here do not exist: calls on them fail with `no such stream "NAME"`.
  std::set<std::string> missing{"missing"};
  // Calls on this stream throw (to check the command boundary).
  std::string throwing = "throwing";
  std::map<std::string, SiteNumber> locations;
  std::vector<StreamInfo> streams;
  std::vector<PeerInfo> peers;
  std::vector<SiteNumber> sites{0, 1, 2, 3};
  SiteNumber site = 1;
  std::string append_result;
  // Set: a -sync append (or a move) answers that a handler failed (append_result then holds
  // the other agents' AGENT RESULT pairs).
  std::optional<HandlerFailure> append_failure, move_failure;
  std::function<void(const std::string& stream, const std::string& message)> on_append;

  struct Registered {
    std::string stream, args, body, cpp_type;
  };
  std::vector<Registered> registered;

  const HandlerContext* handler_context = nullptr;  // set by the test around handler calls
  std::vector<std::string> calls;
  std::vector<std::pair<std::string, bool>> written;  // write_stdout(text, nonewline)
  CreateOptions last_create;

  const HandlerContext* context() const override { return handler_context; }

  Result<std::string> stream_create(const std::string& name,
                                    const CreateOptions& options) override {
    calls.push_back("stream_create " + name);
    if (Status status = check(name); !status.ok()) return status;
    last_create = options;
    if (locations.contains(name)) {
      return Status::error(Status::Code::kAlreadyExists, "stream \"" + name + "\" exists");
    }
    locations[name] = options.site.value_or(site);
    return name;
  }
  Status stream_open(const std::string& name) override {
    calls.push_back("stream_open " + name);
    return check(name);
  }
  Result<AppendAnswer> stream_append(const std::string& name, std::string message,
                                     bool sync) override {
    calls.push_back("stream_append " + name + " " + message + (sync ? " -sync" : ""));
    if (Status status = check(name); !status.ok()) return status;
    if (on_append) on_append(name, message);
    if (!sync) return AppendAnswer{};
    return AppendAnswer{append_result, append_failure};
  }
  Result<MoveAnswer> stream_move(const std::string& name, SiteNumber to) override {
    calls.push_back("stream_move " + name + " " + std::to_string(to));
    if (Status status = check(name); !status.ok()) return status;
    locations[name] = to;
    return MoveAnswer{to, move_failure};
  }
  Result<SiteNumber> stream_location(const std::string& name) override {
    calls.push_back("stream_location " + name);
    if (Status status = check(name); !status.ok()) return status;
    auto it = locations.find(name);
    return it == locations.end() ? site : it->second;
  }
  Status stream_destroy(const std::string& name) override {
    calls.push_back("stream_destroy " + name);
    return check(name);
  }
  bool stream_exists(const std::string& name) override {
    calls.push_back("stream_exists " + name);
    return check(name).ok();
  }
  std::vector<StreamInfo> list_streams() override {
    calls.push_back("list_streams");
    return streams;
  }
  Result<SiteNumber> stream_creator(const std::string& name) override {
    calls.push_back("stream_creator " + name);
    if (Status status = check(name); !status.ok()) return status;
    return SiteNumber{2};
  }
  Result<std::string> register_agent(const std::string& stream, const std::string& args,
                                     const std::string& body, const std::string& cpp_type,
                                     bool controller) override {
    calls.push_back("register_agent " + stream + " {" + args + "} {" + body + "} {" + cpp_type +
                    "}" + (controller ? " -controller" : ""));
    if (Status status = check(stream); !status.ok()) return status;
    registered.push_back({stream, args, body, cpp_type});
    return std::string("17");
  }
  Status agent_exit() override {
    calls.push_back("agent_exit");
    if (handler_context == nullptr) {
      return Status::error(Status::Code::kInvalidArgument, "agent_exit: not inside a handler");
    }
    return Status::ok_status();
  }
  SiteNumber my_id() override { return site; }
  std::vector<SiteNumber> site_list() override { return sites; }
  std::vector<PeerInfo> peer_map() override { return peers; }
  void write_stdout(std::string_view text, bool nonewline) override {
    written.emplace_back(std::string(text), nonewline);
  }

 private:
  Status check(const std::string& name) const {
    if (name == throwing) throw std::runtime_error("fake failure");
    if (missing.contains(name)) {
      return Status::error(Status::Code::kNotFound, "no such stream \"" + name + "\"");
    }
    return Status::ok_status();
  }
};

// The outcome of one script: Tcl's return code, result and errorCode.
struct Evaluated {
  int code = TCL_OK;
  std::string result;
  std::string error_code;
};

inline Evaluated evaluate(Tcl_Interp* interp, const std::string& script) {
  Evaluated out;
  out.code = Tcl_EvalEx(interp, script.data(), static_cast<int>(script.size()), TCL_EVAL_GLOBAL);
  out.result = Tcl_GetStringResult(interp);
  if (out.code == TCL_ERROR) {
    const char* code = Tcl_GetVar(interp, "::errorCode", TCL_GLOBAL_ONLY);
    out.error_code = code == nullptr ? "" : code;
  }
  Tcl_ResetResult(interp);
  return out;
}

}  // namespace mstream::tcl::testing
