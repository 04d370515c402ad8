#include "tcl/tcl_host.hpp"

#include <tcl.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tcl/agent_namespace.hpp"
#include "tcl/commands.hpp"
#include "tcl/run_limits.hpp"
#include "tcl/value_guards.hpp"

namespace mstream::tcl {
namespace {

using Code = Status::Code;

constexpr const char* kAgentsNamespace = "::mstream::agent";
constexpr const char* kScalar = "scalar";
constexpr const char* kArray = "array";
constexpr const char* kImplKey = "mstream::host";

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
    std::vector<std::string> briefcase;            // declaration order, no duplicates
    AgentOptions options;
    Tcl_Interp* interp = nullptr;  // the host's, or its domain's sandbox
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
    // Handler scripts hold bytecode of these interpreters: release them while they exist.
    agents.clear();
    current = nullptr;
    Tcl_DecrRefCount(argv_name);
    for (auto& [domain, sandbox] : sandboxes) Tcl_DeleteInterp(sandbox);
    Tcl_DeleteInterp(interp);
  }

  bool in_agent() const override { return current != nullptr; }
  bool privileged() const override { return current->options.privileged; }
  bool trusted() const override { return current->options.trusted; }

  Status expose(const std::string& name, const std::string& target) override {
    if (name.empty() || name.find("::") != std::string::npos)
      return Status::error(Code::kInvalidArgument,
                           "sandbox_expose: bad command name \"" + name + "\"");
    // A name of the controller's own resolves in its namespace, where its procs are.
    std::string qualified =
        target.rfind("::", 0) == 0
            ? target
            : std::string(kAgentsNamespace) + "::" + std::to_string(current->id) + "::" + target;
    Tcl_CmdInfo info;
    if (Tcl_GetCommandInfo(interp, qualified.c_str(), &info) == 0)
      return Status::error(Code::kNotFound, "sandbox_expose: no command \"" + target + "\"");
    for (auto& [n, t] : exposed)
      if (n == name) t = qualified;
    if (std::none_of(exposed.begin(), exposed.end(),
                     [&](const auto& e) { return e.first == name; }))
      exposed.emplace_back(name, qualified);
    for (auto& [domain, sandbox] : sandboxes)
      if (Tcl_CreateAlias(sandbox, name.c_str(), interp, qualified.c_str(), 0, nullptr) != TCL_OK)
        return Status::error(Code::kInternal, result_text(sandbox));
    return Status::ok_status();
  }

  // ---- Sandboxes

  // The sandbox of `domain`, made on its first agent; Tcl may refuse to make one (a trusted
  // agent's script took its name, say): then an error, and nothing is left of it.
  Result<Tcl_Interp*> sandbox(std::uint32_t domain) {
    auto it = sandboxes.find(domain);
    if (it != sandboxes.end()) {
      std::erase(idle, domain);
      return it->second;
    }
    const std::string name = "sandbox" + std::to_string(domain);
    Tcl_Interp* sb = Tcl_CreateSlave(interp, name.c_str(), 1);
    if (sb == nullptr) {
      Status status =
          Status::error(Code::kInternal, "cannot make a safe interpreter: " + result_text(interp));
      Tcl_ResetResult(interp);
      return status;
    }
    auto unmade = [&](const std::string& why) -> Result<Tcl_Interp*> {
      Tcl_DeleteInterp(sb);
      return Status::error(Code::kInternal, "cannot make a safe interpreter: " + why);
    };
    // Beyond Tcl's safe set: nothing that waits (a handler must never hold its worker) and no
    // interpreters of its own.
    for (const char* hide : {"after", "vwait", "update", "interp"}) {
      Tcl_CmdInfo info;
      if (Tcl_GetCommandInfo(sb, hide, &info) != 0) Tcl_HideCommand(sb, hide, hide);
    }
    Tcl_SetAssocData(sb, kImplKey, nullptr, this);
    if (Status guarded = guard_values(sb); !guarded.ok()) return unmade(guarded.message());
    Tcl_CreateObjCommand(sb, "::after", bounded_after, this, nullptr);
    Status installed = detail::install_commands(sb, api, this);
    if (!installed.ok()) return unmade(installed.message());
    Tcl_CreateNamespace(sb, kAgentsNamespace, nullptr, nullptr);
    for (const auto& [n, t] : exposed)
      Tcl_CreateAlias(sb, n.c_str(), interp, t.c_str(), 0, nullptr);
    run_limits.watch(sb);
    Tcl_ResetResult(sb);
    sandboxes.emplace(domain, sb);
    return sb;
  }

  // A sandbox is about 280 KB, and its domain (a shell, a site) may be gone for good: one
  // whose last agent went is kept only among the kIdleSandboxes most recently emptied, so that
  // a session whose shells come and go does not grow, while a shell that creates and destroys
  // streams one after the other does not make a new interpreter for each (1 ms).
  void note_agent_gone(const Agent& gone) {
    if (gone.options.trusted) return;
    auto count = sandbox_agents.find(gone.options.domain);
    if (count == sandbox_agents.end() || --count->second > 0) return;
    sandbox_agents.erase(count);
    std::erase(idle, gone.options.domain);
    idle.push_back(gone.options.domain);
  }
  // Deletes the idle sandboxes beyond the bound. REQUIRES: no run in progress (depth == 0) and
  // no Agent record of theirs alive: handler scripts hold bytecode of their interpreter.
  void trim_idle() {
    if (depth > 0) return;
    while (idle.size() > TclHost::kIdleSandboxes) {
      auto it = sandboxes.find(idle.front());
      idle.pop_front();
      if (it == sandboxes.end()) continue;
      Tcl_DeleteInterp(it->second);
      sandboxes.erase(it);
    }
  }

  // The commands that make one big value in one go check its size first (value_guards.hpp):
  // the original is hidden and called after the check.
  Status guard_values(Tcl_Interp* sb) {
    for (const ValueGuard& g : value_guards()) {
      Tcl_CmdInfo info;
      if (Tcl_GetCommandInfo(sb, g.command, &info) == 0) continue;
      const std::string rename = std::string("::rename ") + g.command + " ::" + g.hidden;
      if (Tcl_EvalEx(sb, rename.c_str(), -1, TCL_EVAL_GLOBAL) != TCL_OK ||
          Tcl_HideCommand(sb, g.hidden, g.hidden) != TCL_OK)
        return Status::error(Code::kInternal, std::string("cannot guard ") + g.command);
      Tcl_CreateObjCommand(sb, g.command, guarded_value, const_cast<ValueGuard*>(&g), nullptr);
    }
    Tcl_ResetResult(sb);
    return Status::ok_status();
  }

  static int guarded_value(ClientData data, Tcl_Interp* sb, int objc, Tcl_Obj* const objv[]) {
    const ValueGuard& g = *static_cast<const ValueGuard*>(data);
    Impl* impl = static_cast<Impl*>(Tcl_GetAssocData(sb, kImplKey, nullptr));
    const std::uint64_t cap = impl ? impl->run_limits.limits().value_bytes : 0;
    const std::uint64_t size = g.size(sb, objc, objv);
    if (impl == nullptr) {
      Tcl_SetObjResult(sb, Tcl_NewStringObj("sandbox: no host", -1));
      return TCL_ERROR;
    }
    if (cap > 0 && size > cap) {
      const std::string message = std::string(g.shown) + ": the value would be " +
                                  std::to_string(size) + " bytes, over the sandbox's limit of " +
                                  std::to_string(cap) + " bytes per value";
      Tcl_SetObjResult(sb, Tcl_NewStringObj(message.c_str(), -1));
      Tcl_SetErrorCode(sb, "MSTREAM", "limit", nullptr);
      return TCL_ERROR;
    }
    // The original, in the caller's frame: `interp invokehidden`, which only the trusted
    // interpreter has.
    std::vector<Tcl_Obj*> words = {
        Tcl_NewStringObj("::interp", -1), Tcl_NewStringObj("invokehidden", -1),
        Tcl_NewStringObj(impl->sandbox_name(sb).c_str(), -1), Tcl_NewStringObj(g.hidden, -1)};
    words.insert(words.end(), objv + 1, objv + objc);
    for (Tcl_Obj* w : words) Tcl_IncrRefCount(w);
    const int code = Tcl_EvalObjv(impl->interp, static_cast<int>(words.size()), words.data(), 0);
    for (Tcl_Obj* w : words) Tcl_DecrRefCount(w);
    Tcl_SetObjResult(sb, Tcl_GetObjResult(impl->interp));
    if (code == TCL_ERROR) {
      Tcl_Obj* options = Tcl_GetReturnOptions(impl->interp, code);
      Tcl_IncrRefCount(options);
      Tcl_Obj* key = Tcl_NewStringObj("-errorcode", -1);
      Tcl_IncrRefCount(key);
      Tcl_Obj* ec = nullptr;
      if (Tcl_DictObjGet(nullptr, options, key, &ec) == TCL_OK && ec != nullptr)
        Tcl_SetObjErrorCode(sb, ec);
      Tcl_DecrRefCount(key);
      Tcl_DecrRefCount(options);
    }
    Tcl_ResetResult(impl->interp);
    return code;
  }

  std::string sandbox_name(Tcl_Interp* sb) const {
    for (const auto& [domain, i] : sandboxes)
      if (i == sb) return "sandbox" + std::to_string(domain);
    return {};
  }

  // `after MS` only, and only within the run's time limit: a pause, never a wait for events
  // (there is no event loop in a handler) and never past the deadline.
  static int bounded_after(ClientData data, Tcl_Interp* sb, int objc, Tcl_Obj* const objv[]) {
    Impl* impl = static_cast<Impl*>(data);
    Tcl_WideInt ms = 0;
    if (objc != 2 || Tcl_GetWideIntFromObj(nullptr, objv[1], &ms) != TCL_OK || ms < 0) {
      Tcl_SetObjResult(sb, Tcl_NewStringObj("after: only \"after ms\" is available in a "
                                            "sandbox (a pause within the run's time limit)",
                                            -1));
      Tcl_SetErrorCode(sb, "MSTREAM", "permission denied", nullptr);
      return TCL_ERROR;
    }
    auto want = std::chrono::milliseconds(ms);
    const std::uint64_t time_ms = impl->run_limits.limits().time_ms;
    const bool limited = time_ms > 0 && impl->depth > 0;
    if (limited) {
      const auto left = impl->run_limits.deadline() - std::chrono::steady_clock::now();
      if (want > left) {
        if (left > std::chrono::steady_clock::duration::zero()) std::this_thread::sleep_for(left);
        const std::string message =
            "sandbox: time limit exceeded (" + std::to_string(time_ms) + " ms per run)";
        Tcl_SetObjResult(sb, Tcl_NewStringObj(message.c_str(), -1));
        Tcl_SetErrorCode(sb, "MSTREAM", "limit", nullptr);
        return TCL_ERROR;
      }
    }
    std::this_thread::sleep_for(want);
    Tcl_ResetResult(sb);
    return TCL_OK;
  }

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
  HandlerOutcome evaluate(Agent& agent, Tcl_Obj* script, std::string_view argv,
                          bool result_wanted = true) {
    Tcl_Interp* interp = agent.interp;
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
        const bool limited = !agent.options.trusted && depth == 0;
        if (limited) run_limits.arm(interp);
        ++depth;
        code = Tcl_EvalObjEx(interp, script, 0);
        --depth;
        if (limited) {
          HandlerOutcome out = finish(interp, code, result_wanted);
          run_limits.disarm(interp, &out);
          return out;
        }
      }
    }
    return finish(interp, code, result_wanted);
  }

  HandlerOutcome finish(Tcl_Interp* interp, int code, bool result_wanted = true) {
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
      if (result_wanted) outcome.result = result_text(interp);
      Tcl_ResetResult(interp);
      return outcome;
    }
    if (code == TCL_BREAK || code == TCL_CONTINUE) {
      Tcl_SetObjResult(interp, Tcl_ObjPrintf("invoked \"%s\" outside of a loop",
                                             code == TCL_BREAK ? "break" : "continue"));
    } else if (code != TCL_ERROR) {
      Tcl_SetObjResult(interp, Tcl_ObjPrintf("command returned bad code: %d", code));
    }
    return failed(interp, code);
  }

  HandlerOutcome failed(Tcl_Interp* interp, int code) {
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
  int eval_words(Tcl_Interp* interp, std::initializer_list<Tcl_Obj*> words) {
    std::vector<Tcl_Obj*> objv(words);
    for (Tcl_Obj* word : objv) Tcl_IncrRefCount(word);
    int code = Tcl_EvalObjv(interp, static_cast<int>(objv.size()), objv.data(), 0);
    for (Tcl_Obj* word : objv) Tcl_DecrRefCount(word);
    return code;
  }

  std::string save_briefcase(Agent& agent) {
    Tcl_Interp* interp = agent.interp;
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
      if (eval_words(interp, {Tcl_NewStringObj("::array", -1), Tcl_NewStringObj("exists", -1),
                              name_obj}) != TCL_OK) {
        continue;
      }
      int exists = 0;
      Tcl_GetBooleanFromObj(nullptr, Tcl_GetObjResult(interp), &exists);
      if (!exists || eval_words(interp, {Tcl_NewStringObj("::array", -1),
                                         Tcl_NewStringObj("get", -1), name_obj}) != TCL_OK) {
        continue;
      }
      Tcl_Obj* triple[3] = {name_obj, Tcl_NewStringObj(kArray, -1), Tcl_GetObjResult(interp)};
      Tcl_ListObjReplace(nullptr, saved.get(), INT_MAX, 0, 3, triple);
    }
    return Tcl_GetString(saved.get());
  }

  // Checks all of `saved` before changing anything, so a malformed briefcase changes nothing.
  Status restore_briefcase(Agent& agent, std::string_view saved) {
    Tcl_Interp* interp = agent.interp;
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
        code = eval_words(interp, {Tcl_NewStringObj("::array", -1), Tcl_NewStringObj("set", -1),
                                   name, items[i + 2]});
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

  Tcl_Interp* interp = nullptr;  // trusted agents'; the sandboxes are its children
  ScriptApi* api = nullptr;
  std::unordered_map<std::uint32_t, Tcl_Interp*> sandboxes;       // by domain
  std::unordered_map<std::uint32_t, std::size_t> sandbox_agents;  // agents loaded, by domain
  std::deque<std::uint32_t> idle;  // domains whose sandbox has no agent, least recent first
  std::vector<std::pair<std::string, std::string>> exposed;  // name, qualified target
  RunLimits run_limits;
  int depth = 0;  // runs in progress (a nested one runs within the outer one's limits)
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
  impl_->api = api;
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
  impl_->trim_idle();
  Tcl_Interp* interp = impl_->interp;
  if (!options.trusted) {
    Result<Tcl_Interp*> sandbox = impl_->sandbox(options.domain);
    if (!sandbox.ok()) {
      if (error_info) *error_info = sandbox.status().message();
      return sandbox.status();
    }
    interp = *sandbox;
    ++impl_->sandbox_agents[options.domain];
  }
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
  loaded->interp = interp;
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

HandlerOutcome TclHost::run(std::uint64_t agent, Event event, const HandlerContext& context,
                            std::string_view argv) {
  auto it = impl_->agents.find(agent);
  if (it == impl_->agents.end()) return {};
  std::shared_ptr<Impl::Agent> keep = it->second;
  Tcl_Obj* handler = keep->handlers[event_index(event)];
  if (handler == nullptr) return {};
  // The handler may replace itself (on_stream_append inside on_stream_append).
  ObjRef script(handler);
  return impl_->evaluate(*keep, script.get(), argv, context.result_wanted);
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
  impl_->note_agent_gone(*dropped);
  dropped.reset();
  impl_->trim_idle();
}

std::size_t TclHost::sandbox_count() const { return impl_->sandboxes.size(); }

std::size_t TclHost::agent_count() const { return impl_->agents.size(); }

Tcl_Interp* TclHost::interp() const { return impl_->interp; }

void TclHost::set_limits(const HandlerLimits& limits) { impl_->run_limits.set(limits); }

Tcl_Interp* TclHost::interp_of(std::uint64_t agent) const {
  const Impl::Agent* found = impl_->find(agent);
  return found == nullptr ? nullptr : found->interp;
}

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
