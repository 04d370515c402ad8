#include "tcl/tcl_host.hpp"

#include <tcl.h>

#include <array>
#include <climits>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tcl/agent_namespace.hpp"
#include "tcl/commands.hpp"

namespace mstream::tcl {
namespace {

using Code = Status::Code;

constexpr const char* kAgentsNamespace = "::mstream::agent";
constexpr const char* kScalar = "scalar";
constexpr const char* kArray = "array";

std::size_t event_index(Event event) { return static_cast<std::size_t>(event); }

bool fits_tcl(std::string_view text) { return text.size() <= static_cast<std::size_t>(INT_MAX); }

// REQUIRES: fits_tcl(text).
Tcl_Obj* new_string(std::string_view text) {
  return Tcl_NewStringObj(text.data(), static_cast<int>(text.size()));
}

// The interpreter's result as text. (Tcl_GetStringResult would also copy it into the legacy
// string result on every call: a measurable share of a short handler's time.)
std::string result_text(Tcl_Interp* interp) {
  int length = 0;
  const char* text = Tcl_GetStringFromObj(Tcl_GetObjResult(interp), &length);
  return std::string(text, static_cast<std::size_t>(length));
}

// A Tcl_Obj reference held for one scope (doc/Object.3: a new object has refcount 0).
class ObjRef {
 public:
  explicit ObjRef(Tcl_Obj* obj) : obj_(obj) { Tcl_IncrRefCount(obj_); }
  ~ObjRef() { Tcl_DecrRefCount(obj_); }
  ObjRef(const ObjRef&) = delete;
  ObjRef& operator=(const ObjRef&) = delete;
  Tcl_Obj* get() const { return obj_; }

 private:
  Tcl_Obj* obj_;
};

// Keeps the interpreter's result and error state across its scope: briefcases may be saved or
// restored while a command of the same interpreter is running (e.g. from an api call).
class QuietState {
 public:
  explicit QuietState(Tcl_Interp* interp)
      : interp_(interp), saved_(Tcl_SaveInterpState(interp, TCL_OK)) {}
  ~QuietState() { Tcl_RestoreInterpState(interp_, saved_); }
  QuietState(const QuietState&) = delete;
  QuietState& operator=(const QuietState&) = delete;

 private:
  Tcl_Interp* interp_;
  Tcl_InterpState saved_;
};

}  // namespace

struct TclHost::Impl final : detail::AgentScope {
  struct Agent;

  // Tcl calls a namespace's delete proc when the namespace really goes (possibly later than
  // Tcl_DeleteNamespace, if a frame of it is active, or at interpreter deletion), so it gets this
  // small record it owns rather than a pointer to an Agent that may be gone by then.
  struct NamespaceWatch {
    Impl* impl;
    std::uint64_t agent;
  };

  struct Agent {
    Agent(std::uint64_t id, Tcl_Namespace* ns, NamespaceWatch* watch)
        : id(id), ns(ns), watch(watch) {}
    ~Agent() {
      for (Tcl_Obj* script : handlers) {
        if (script != nullptr) Tcl_DecrRefCount(script);
      }
    }
    Agent(const Agent&) = delete;
    Agent& operator=(const Agent&) = delete;

    std::uint64_t id;
    Tcl_Namespace* ns;  // nullptr once Tcl deleted it (e.g. the agent ran `namespace delete`)
    NamespaceWatch* watch;
    std::array<Tcl_Obj*, kEventCount> handlers{};  // owned references; one per Event
    std::vector<std::string> briefcase;  // declaration order, no duplicates
    AgentOptions options;
  };

  // Marks the running agent for the on_* and briefcase commands; nests (a handler of this
  // interpreter may, through the api, cause another agent's code to run synchronously).
  class Running {
   public:
    Running(Impl& impl, Agent* agent) : impl_(impl), saved_(impl.current) { impl.current = agent; }
    ~Running() { impl_.current = saved_; }
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;

   private:
    Impl& impl_;
    Agent* saved_;
  };

  ~Impl() {
    // Handler scripts hold bytecode of this interpreter: release them while it still exists.
    agents.clear();
    current = nullptr;
    Tcl_DecrRefCount(argv_name);
    Tcl_DeleteInterp(interp);
  }

  bool in_agent() const override { return current != nullptr; }
  bool privileged() const override { return current->options.privileged; }

  void set_handler(Event event, Tcl_Obj* script) override {
    Tcl_Obj*& slot = current->handlers[event_index(event)];
    if (slot != nullptr) Tcl_DecrRefCount(slot);  // a running handler holds its own reference
    slot = nullptr;
    int length = 0;
    const char* text = Tcl_GetStringFromObj(script, &length);
    if (length == 0) return;
    // A private copy: script literals are shared across the interpreter, and each agent's
    // handler must keep the bytecode compiled for its own namespace.
    slot = Tcl_NewStringObj(text, length);
    Tcl_IncrRefCount(slot);
  }

  void declare_briefcase(const std::vector<std::string>& names) override {
    for (const std::string& name : names) add_briefcase_name(*current, name);
  }

  static void add_briefcase_name(Agent& agent, std::string_view name) {
    for (const std::string& known : agent.briefcase) {
      if (known == name) return;
    }
    agent.briefcase.emplace_back(name);
  }

  static void on_namespace_deleted(ClientData data) {
    std::unique_ptr<NamespaceWatch> watch(static_cast<NamespaceWatch*>(data));
    auto it = watch->impl->agents.find(watch->agent);
    if (it != watch->impl->agents.end() && it->second->watch == watch.get()) {
      it->second->ns = nullptr;
      it->second->watch = nullptr;
    }
  }

  Agent* find(std::uint64_t id) const {
    auto it = agents.find(id);
    return it == agents.end() ? nullptr : it->second.get();
  }

  // Evaluates `script` at the level of the agent's namespace with $argv = `argv`, as
  // `namespace eval` would, but without re-parsing a `namespace eval` command on every call:
  // the script object keeps its bytecode between calls (compiled for this namespace).
  HandlerOutcome evaluate(Agent& agent, Tcl_Obj* script, std::string_view argv) {
    HandlerOutcome outcome;
    outcome.ran = true;
    if (!detail::namespace_is_alive(agent.ns)) {
      outcome.ok = false;
      outcome.result = "agent " + std::to_string(agent.id) + " has no namespace any more";
      return outcome;
    }
    if (!fits_tcl(argv)) {
      outcome.ok = false;
      outcome.result = "message too long for Tcl";
      return outcome;
    }
    int code = TCL_OK;
    {
      detail::NamespaceFrame frame(interp, agent.ns);
      // No TCL_NAMESPACE_ONLY: at namespace level the agent's resolver finds argv in its
      // namespace, faster than Tcl's qualified-name path.
      if (Tcl_ObjSetVar2(interp, argv_name, nullptr, new_string(argv), TCL_LEAVE_ERR_MSG) ==
          nullptr) {
        code = TCL_ERROR;  // e.g. the agent made argv an array
      } else {
        Running running(*this, &agent);
        code = Tcl_EvalObjEx(interp, script, 0);
      }
    }
    return finish(code);
  }

  HandlerOutcome finish(int code) {
    if (code == TCL_RETURN) {
      // Only when nested in another evaluation: at top level Tcl_EvalObjEx already turned
      // `return` into its code. A `return -code error` is an error; any other return is ok.
      Tcl_Obj* options = Tcl_GetReturnOptions(interp, code);
      Tcl_IncrRefCount(options);
      Tcl_Obj* key = Tcl_NewStringObj("-code", -1);
      Tcl_IncrRefCount(key);
      Tcl_Obj* value = nullptr;
      int return_code = TCL_OK;
      if (Tcl_DictObjGet(nullptr, options, key, &value) == TCL_OK && value != nullptr) {
        Tcl_GetIntFromObj(nullptr, value, &return_code);
      }
      Tcl_DecrRefCount(key);
      Tcl_DecrRefCount(options);
      code = return_code == TCL_ERROR ? TCL_ERROR : TCL_OK;
    }
    if (code == TCL_OK) {
      HandlerOutcome outcome;
      outcome.ran = true;
      outcome.result = result_text(interp);
      Tcl_ResetResult(interp);
      return outcome;
    }
    if (code == TCL_BREAK || code == TCL_CONTINUE) {
      Tcl_SetObjResult(interp, Tcl_ObjPrintf("invoked \"%s\" outside of a loop",
                                             code == TCL_BREAK ? "break" : "continue"));
    } else if (code != TCL_ERROR) {
      Tcl_SetObjResult(interp, Tcl_ObjPrintf("command returned bad code: %d", code));
    }
    return failed(code);
  }

  HandlerOutcome failed(int code) {
    HandlerOutcome outcome;
    outcome.ran = true;
    outcome.ok = false;
    outcome.result = result_text(interp);
    Tcl_Obj* options = Tcl_GetReturnOptions(interp, code);
    Tcl_IncrRefCount(options);
    Tcl_Obj* key = Tcl_NewStringObj("-errorinfo", -1);
    Tcl_IncrRefCount(key);
    Tcl_Obj* info = nullptr;
    if (Tcl_DictObjGet(nullptr, options, key, &info) == TCL_OK && info != nullptr) {
      outcome.error_info = Tcl_GetString(info);
    }
    if (outcome.error_info.empty()) outcome.error_info = outcome.result;
    Tcl_DecrRefCount(key);
    Tcl_DecrRefCount(options);
    Tcl_ResetResult(interp);
    return outcome;
  }

  // Runs `words` as one command inside the agent's namespace. REQUIRES: its frame is pushed.
  int eval_words(std::initializer_list<Tcl_Obj*> words) {
    std::vector<Tcl_Obj*> objv(words);
    for (Tcl_Obj* word : objv) Tcl_IncrRefCount(word);
    int code = Tcl_EvalObjv(interp, static_cast<int>(objv.size()), objv.data(), 0);
    for (Tcl_Obj* word : objv) Tcl_DecrRefCount(word);
    return code;
  }

  std::string save_briefcase(Agent& agent) {
    if (agent.briefcase.empty() || !detail::namespace_is_alive(agent.ns)) return {};
    QuietState quiet(interp);
    ObjRef saved(Tcl_NewListObj(0, nullptr));
    detail::NamespaceFrame frame(interp, agent.ns);
    for (const std::string& name : agent.briefcase) {
      Tcl_Obj* name_obj = Tcl_NewStringObj(name.data(), static_cast<int>(name.size()));
      ObjRef name_ref(name_obj);
      if (Tcl_Obj* value = Tcl_ObjGetVar2(interp, name_obj, nullptr, TCL_NAMESPACE_ONLY)) {
        Tcl_Obj* triple[3] = {name_obj, Tcl_NewStringObj(kScalar, -1), value};
        Tcl_ListObjReplace(nullptr, saved.get(), INT_MAX, 0, 3, triple);
        continue;
      }
      // Not a readable scalar: an array, or not set (then it does not travel).
      if (eval_words({Tcl_NewStringObj("::array", -1), Tcl_NewStringObj("exists", -1), name_obj}) !=
          TCL_OK) {
        continue;
      }
      int exists = 0;
      Tcl_GetBooleanFromObj(nullptr, Tcl_GetObjResult(interp), &exists);
      if (!exists || eval_words({Tcl_NewStringObj("::array", -1), Tcl_NewStringObj("get", -1),
                                 name_obj}) != TCL_OK) {
        continue;
      }
      Tcl_Obj* triple[3] = {name_obj, Tcl_NewStringObj(kArray, -1), Tcl_GetObjResult(interp)};
      Tcl_ListObjReplace(nullptr, saved.get(), INT_MAX, 0, 3, triple);
    }
    return Tcl_GetString(saved.get());
  }

  // Checks all of `saved` before changing anything, so a malformed briefcase changes nothing.
  Status restore_briefcase(Agent& agent, std::string_view saved) {
    if (!fits_tcl(saved)) return Status::error(Code::kInvalidArgument, "briefcase too large");
    if (!detail::namespace_is_alive(agent.ns)) {
      return Status::error(Code::kNotFound,
                           "agent " + std::to_string(agent.id) + " has no namespace any more");
    }
    QuietState quiet(interp);
    ObjRef list(new_string(saved));
    int count = 0;
    Tcl_Obj** items = nullptr;
    if (Tcl_ListObjGetElements(interp, list.get(), &count, &items) != TCL_OK) {
      return Status::error(Code::kInvalidArgument, "malformed briefcase: " + result_text(interp));
    }
    if (count % 3 != 0) {
      return Status::error(Code::kInvalidArgument,
                           "malformed briefcase: not a list of name, kind, value triples");
    }
    for (int i = 0; i < count; i += 3) {
      int length = 0;
      const char* name = Tcl_GetStringFromObj(items[i], &length);
      if (!detail::is_briefcase_name({name, static_cast<std::size_t>(length)})) {
        return Status::error(
            Code::kInvalidArgument,
            std::string("malformed briefcase: bad variable name \"") + name + "\"");
      }
      std::string_view kind = Tcl_GetString(items[i + 1]);
      int pairs = 0;
      if (kind == kArray) {
        if (Tcl_ListObjLength(nullptr, items[i + 2], &pairs) != TCL_OK || pairs % 2 != 0) {
          return Status::error(
              Code::kInvalidArgument,
              std::string("malformed briefcase: bad array value for \"") + name + "\"");
        }
      } else if (kind != kScalar) {
        return Status::error(
            Code::kInvalidArgument,
            std::string("malformed briefcase: bad kind \"") + std::string(kind) + "\"");
      }
    }
    detail::NamespaceFrame frame(interp, agent.ns);
    Status status;
    for (int i = 0; i < count && status.ok(); i += 3) {
      Tcl_Obj* name = items[i];
      Tcl_UnsetVar2(interp, Tcl_GetString(name), nullptr, TCL_NAMESPACE_ONLY);
      int code = TCL_OK;
      if (std::string_view(Tcl_GetString(items[i + 1])) == kArray) {
        code = eval_words(
            {Tcl_NewStringObj("::array", -1), Tcl_NewStringObj("set", -1), name, items[i + 2]});
      } else if (Tcl_ObjSetVar2(interp, name, nullptr, items[i + 2],
                                TCL_NAMESPACE_ONLY | TCL_LEAVE_ERR_MSG) == nullptr) {
        code = TCL_ERROR;
      }
      if (code != TCL_OK) {
        status = Status::error(Code::kInvalidArgument, result_text(interp));
      } else {
        add_briefcase_name(agent, Tcl_GetString(name));
      }
    }
    return status;
  }

  Tcl_Interp* interp = nullptr;
  Tcl_Obj* argv_name = nullptr;
  // shared_ptr: a handler may drop its own agent (through the api); run() keeps it alive.
  std::unordered_map<std::uint64_t, std::shared_ptr<Agent>> agents;
  Agent* current = nullptr;
};

TclHost::TclHost(ScriptApi* api) : impl_(std::make_unique<Impl>()) {
  static std::once_flag tcl_started;
  std::call_once(tcl_started, [] { Tcl_FindExecutable(nullptr); });
  // No Tcl_Init: it reads init.tcl from disk (about 1.7 ms and 128 KB per interpreter, measured)
  // for the `unknown`/auto-loading machinery, which mobile agent code should not reach.
  impl_->interp = Tcl_CreateInterp();
  impl_->argv_name = Tcl_NewStringObj("argv", -1);
  Tcl_IncrRefCount(impl_->argv_name);
  Status installed = detail::install_commands(impl_->interp, api, impl_.get());
  if (!installed.ok()) throw std::invalid_argument("TclHost: " + installed.message());
  Tcl_CreateNamespace(impl_->interp, kAgentsNamespace, nullptr, nullptr);
  Tcl_ResetResult(impl_->interp);
}

TclHost::~TclHost() = default;

Status TclHost::load_agent(std::uint64_t agent, std::string_view args, std::string_view body,
                           const HandlerContext& /*context*/, std::string* error_info,
                           AgentOptions options) {
  if (impl_->find(agent) != nullptr) {
    return Status::error(Code::kAlreadyExists,
                         "agent " + std::to_string(agent) + " is already loaded here");
  }
  if (!fits_tcl(args) || !fits_tcl(body)) {
    return Status::error(Code::kTooLarge, "agent code or arguments too long for Tcl");
  }
  Tcl_Interp* interp = impl_->interp;
  std::string name = std::string(kAgentsNamespace) + "::" + std::to_string(agent);
  // A namespace of that name that is not a loaded agent's was made by some script: it goes.
  if (Tcl_Namespace* stale = Tcl_FindNamespace(interp, name.c_str(), nullptr, 0)) {
    Tcl_DeleteNamespace(stale);
  }
  auto watch = std::make_unique<Impl::NamespaceWatch>(Impl::NamespaceWatch{impl_.get(), agent});
  Tcl_Namespace* ns =
      Tcl_CreateNamespace(interp, name.c_str(), watch.get(), Impl::on_namespace_deleted);
  if (ns == nullptr) {
    Status status = Status::error(Code::kInternal, result_text(interp));
    Tcl_ResetResult(interp);
    return status;
  }
  detail::isolate_agent_namespace(interp, ns);
  auto loaded = std::make_shared<Impl::Agent>(agent, ns, watch.release());
  loaded->options = options;
  impl_->agents.emplace(agent, loaded);

  ObjRef script(new_string(body));
  HandlerOutcome outcome = impl_->evaluate(*loaded, script.get(), args);
  if (outcome.ok) return Status::ok_status();
  drop_agent(agent);
  if (error_info != nullptr) *error_info = std::move(outcome.error_info);
  return Status::error(Code::kInvalidArgument, std::move(outcome.result));
}

bool TclHost::has_agent(std::uint64_t agent) const { return impl_->find(agent) != nullptr; }

bool TclHost::has_handler(std::uint64_t agent, Event event) const {
  const Impl::Agent* found = impl_->find(agent);
  return found != nullptr && found->handlers[event_index(event)] != nullptr;
}

HandlerOutcome TclHost::run(std::uint64_t agent, Event event, const HandlerContext& /*context*/,
                            std::string_view argv) {
  auto it = impl_->agents.find(agent);
  if (it == impl_->agents.end()) return {};
  std::shared_ptr<Impl::Agent> keep = it->second;
  Tcl_Obj* handler = keep->handlers[event_index(event)];
  if (handler == nullptr) return {};
  // The handler may replace itself (on_stream_append inside on_stream_append).
  ObjRef script(handler);
  return impl_->evaluate(*keep, script.get(), argv);
}

std::string TclHost::save_briefcase(std::uint64_t agent) {
  Impl::Agent* found = impl_->find(agent);
  return found == nullptr ? std::string() : impl_->save_briefcase(*found);
}

Status TclHost::restore_briefcase(std::uint64_t agent, std::string_view saved) {
  Impl::Agent* found = impl_->find(agent);
  if (found == nullptr) {
    return Status::error(Code::kNotFound, "no agent " + std::to_string(agent) + " here");
  }
  return impl_->restore_briefcase(*found, saved);
}

void TclHost::drop_agent(std::uint64_t agent) {
  auto it = impl_->agents.find(agent);
  if (it == impl_->agents.end()) return;
  std::shared_ptr<Impl::Agent> dropped = std::move(it->second);
  impl_->agents.erase(it);
  // Tcl defers the deletion while a frame of the namespace is active (the agent dropped from
  // its own handler); its delete proc then finds no agent and only frees its record.
  if (detail::namespace_is_alive(dropped->ns)) Tcl_DeleteNamespace(dropped->ns);
}

std::size_t TclHost::agent_count() const { return impl_->agents.size(); }

Tcl_Interp* TclHost::interp() const { return impl_->interp; }

std::string merge_list(const std::vector<std::string>& elements) {
  std::vector<const char*> argv;
  argv.reserve(elements.size());
  for (const auto& e : elements) argv.push_back(e.c_str());
  char* merged = Tcl_Merge(static_cast<int>(argv.size()), argv.data());
  std::string out(merged);
  Tcl_Free(merged);
  return out;
}

}  // namespace mstream::tcl
