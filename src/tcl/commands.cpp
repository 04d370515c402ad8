// The mstream script commands (COMMANDS.md): argument checking here, everything else in the
// ScriptApi. Every command runs behind guarded(), so no C++ exception crosses into Tcl's C
// frames (STYLE.md: exceptions never cross a Tcl command boundary).

#include "tcl/commands.hpp"

#include <tcl.h>

#include <climits>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mstream::tcl {
namespace detail {
namespace {

constexpr const char* kStateKey = "mstream::commands";
// The interpreter's own puts lives on under this name: writes to other channels go there.
constexpr const char* kBuiltinPuts = "::mstream::builtin_puts";

struct CommandState {
  ScriptApi* api = nullptr;
  AgentScope* scope = nullptr;
  Tcl_CmdInfo builtin_puts{};
  bool has_builtin_puts = false;
};

using Code = Status::Code;
using CommandBody = int (*)(CommandState&, Tcl_Interp*, int, Tcl_Obj* const[]);

std::string_view view(Tcl_Obj* obj) {
  int length = 0;
  const char* bytes = Tcl_GetStringFromObj(obj, &length);
  return {bytes, static_cast<std::size_t>(length)};
}

// Tcl 8.6 lengths are ints; a longer string is refused rather than truncated.
Tcl_Obj* new_string(std::string_view text) {
  if (text.size() > static_cast<std::size_t>(INT_MAX)) {
    throw std::length_error("string too long for Tcl");
  }
  return Tcl_NewStringObj(text.data(), static_cast<int>(text.size()));
}

Tcl_Obj* new_site(SiteNumber site) { return Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(site)); }

int fail(Tcl_Interp* interp, std::string_view message, Code code) {
  Tcl_SetObjResult(interp, new_string(message));
  Tcl_Obj* words[2] = {Tcl_NewStringObj("MSTREAM", -1), Tcl_NewStringObj(code_name(code), -1)};
  Tcl_SetObjErrorCode(interp, Tcl_NewListObj(2, words));
  return TCL_ERROR;
}

int fail(Tcl_Interp* interp, const Status& status) {
  return fail(interp, status.message(), status.code());
}

// A handler failed where the command ran it (COMMANDS.md stream_append -sync, stream_move):
// errorCode {MSTREAM HANDLER STREAM AGENT SITE}; `results` (when not null) becomes the error's
// -results option, so a script that catches it still has what the other agents returned.
int handler_failed(Tcl_Interp* interp, const HandlerFailure& f, std::string_view message,
                   Tcl_Obj* results) {
  Tcl_Obj* words[5] = {Tcl_NewStringObj("MSTREAM", -1), Tcl_NewStringObj("HANDLER", -1),
                       new_string(f.stream), Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(f.agent)),
                       new_site(f.site)};
  Tcl_Obj* options = Tcl_NewDictObj();
  Tcl_IncrRefCount(options);
  Tcl_DictObjPut(nullptr, options, Tcl_NewStringObj("-code", -1), Tcl_NewIntObj(TCL_ERROR));
  // Level 0: the error is this command's own, not a `return` from the caller's procedure.
  Tcl_DictObjPut(nullptr, options, Tcl_NewStringObj("-level", -1), Tcl_NewIntObj(0));
  Tcl_DictObjPut(nullptr, options, Tcl_NewStringObj("-errorcode", -1), Tcl_NewListObj(5, words));
  if (results != nullptr)
    Tcl_DictObjPut(nullptr, options, Tcl_NewStringObj("-results", -1), results);
  Tcl_SetObjResult(interp, new_string(message));
  const int code = Tcl_SetReturnOptions(interp, options);
  Tcl_DecrRefCount(options);
  return code;
}

int succeed(Tcl_Interp* interp, Tcl_Obj* result) {
  Tcl_SetObjResult(interp, result);
  return TCL_OK;
}

int wrong_args(Tcl_Interp* interp, Tcl_Obj* const objv[], const char* usage) {
  // Sets errorCode {TCL WRONGARGS}; a null usage avoids a trailing space after the name.
  Tcl_WrongNumArgs(interp, 1, objv, *usage == '\0' ? nullptr : usage);
  return TCL_ERROR;
}

// Same message shape and errorCode as Tcl_GetIndexFromObj, with the list worded as COMMANDS.md.
int bad_option(Tcl_Interp* interp, Tcl_Obj* option, const char* choices) {
  std::string message = "bad option \"";
  message.append(view(option)).append("\": must be ").append(choices);
  Tcl_SetObjResult(interp, new_string(message));
  Tcl_SetErrorCode(interp, "TCL", "LOOKUP", "INDEX", "option", Tcl_GetString(option), nullptr);
  return TCL_ERROR;
}

// Site ids are non-negative 32-bit integers; anything else is refused before the api sees it.
bool get_site(Tcl_Interp* interp, Tcl_Obj* obj, SiteNumber* site) {
  Tcl_WideInt value = 0;
  if (Tcl_GetWideIntFromObj(nullptr, obj, &value) != TCL_OK || value < 0 ||
      value > static_cast<Tcl_WideInt>(UINT32_MAX)) {
    std::string message = "expected site id but got \"";
    message.append(view(obj)).append("\"");
    fail(interp, message, Code::kInvalidArgument);
    return false;
  }
  *site = static_cast<SiteNumber>(value);
  return true;
}

// "<command>: not inside a handler": the handler-only commands in a shell.
int outside(Tcl_Interp* interp, Tcl_Obj* command, const char* what) {
  std::string message(view(command));
  message.append(": not inside ").append(what);
  return fail(interp, message, Code::kInvalidArgument);
}

template <typename T>
int site_result(Tcl_Interp* interp, const Result<T>& result) {
  if (!result.ok()) return fail(interp, result.status());
  return succeed(interp, new_site(result.value()));
}

int string_result(Tcl_Interp* interp, const Result<std::string>& result) {
  if (!result.ok()) return fail(interp, result.status());
  return succeed(interp, new_string(result.value()));
}

int status_result(Tcl_Interp* interp, const Status& status) {
  if (!status.ok()) return fail(interp, status);
  Tcl_ResetResult(interp);
  return TCL_OK;
}

// ---- streams ----

int stream_create(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  constexpr const char* kUsage = "stream ?-temp? ?-durable? ?-failure_manager site? ?-site site?";
  if (objc < 2) return wrong_args(interp, objv, kUsage);
  CreateOptions options;
  for (int i = 2; i < objc; ++i) {
    std::string_view option = view(objv[i]);
    if (option == "-temp") {
      options.temp = true;
    } else if (option == "-durable") {
      options.durable = true;
    } else if (option == "-failure_manager" || option == "-site") {
      if (i + 1 >= objc) return wrong_args(interp, objv, kUsage);
      SiteNumber site = 0;
      if (!get_site(interp, objv[++i], &site)) return TCL_ERROR;
      (option == "-site" ? options.site : options.failure_manager) = site;
    } else {
      return bad_option(interp, objv[i], "-temp, -durable, -failure_manager or -site");
    }
  }
  return string_result(interp, state.api->stream_create(Tcl_GetString(objv[1]), options));
}

int stream_open(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 2) return wrong_args(interp, objv, "stream");
  Status status = state.api->stream_open(Tcl_GetString(objv[1]));
  if (!status.ok()) return fail(interp, status);
  return succeed(interp, objv[1]);  // the name is the handle (COMMANDS.md)
}

int stream_append(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 3 && objc != 4) return wrong_args(interp, objv, "handle message ?-sync?");
  bool sync = false;
  if (objc == 4) {
    if (view(objv[3]) != "-sync") return bad_option(interp, objv[3], "-sync");
    sync = true;
  }
  Result<AppendAnswer> answer =
      state.api->stream_append(Tcl_GetString(objv[1]), std::string(view(objv[2])), sync);
  if (!answer.ok()) return fail(interp, answer.status());
  if (const auto& f = answer->failure) {
    const std::string message = "error in " + f->event + " handler: stream \"" + f->stream +
                                "\", agent " + std::to_string(f->agent) + ", site " +
                                std::to_string(f->site) + ": " + f->message;
    return handler_failed(interp, *f, message, new_string(answer->results));
  }
  return succeed(interp, new_string(answer->results));
}

int stream_move(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 3) return wrong_args(interp, objv, "stream site");
  SiteNumber site = 0;
  if (!get_site(interp, objv[2], &site)) return TCL_ERROR;
  Result<MoveAnswer> answer = state.api->stream_move(Tcl_GetString(objv[1]), site);
  if (!answer.ok()) return fail(interp, answer.status());
  if (const auto& f = answer->failure) {
    // The move took effect: the message says so first, then what failed there.
    const std::string message =
        "stream \"" + f->stream + "\" is at site " + std::to_string(f->site) + ", but the " +
        f->event + " handler of agent " + std::to_string(f->agent) + " failed there: " + f->message;
    return handler_failed(interp, *f, message, nullptr);
  }
  return succeed(interp, new_site(answer->site));
}

int stream_location(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc > 2) return wrong_args(interp, objv, "?stream?");
  if (objc == 2) return site_result(interp, state.api->stream_location(Tcl_GetString(objv[1])));
  const HandlerContext* context = state.api->context();
  if (context == nullptr) {
    return fail(interp, "stream_location: no stream given and not inside a handler",
                Code::kInvalidArgument);
  }
  return site_result(interp, state.api->stream_location(context->stream));
}

int stream_destroy(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 2) return wrong_args(interp, objv, "stream");
  return status_result(interp, state.api->stream_destroy(Tcl_GetString(objv[1])));
}

int stream_exists(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 2) return wrong_args(interp, objv, "stream");
  return succeed(interp, Tcl_NewBooleanObj(state.api->stream_exists(Tcl_GetString(objv[1]))));
}

int list_streams(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc > 2) return wrong_args(interp, objv, "?pattern?");
  const char* pattern = objc == 2 ? Tcl_GetString(objv[1]) : nullptr;
  Tcl_Obj* list = Tcl_NewListObj(0, nullptr);
  for (const StreamInfo& stream : state.api->list_streams()) {
    if (pattern != nullptr && !Tcl_StringMatch(stream.name.c_str(), pattern)) continue;
    Tcl_Obj* pair[2] = {new_string(stream.name), new_site(stream.site)};
    Tcl_ListObjAppendElement(nullptr, list, Tcl_NewListObj(2, pair));
  }
  return succeed(interp, list);
}

int stream_creator(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 2) return wrong_args(interp, objv, "stream");
  return site_result(interp, state.api->stream_creator(Tcl_GetString(objv[1])));
}

// ---- agents ----

int register_agent(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  constexpr const char* kUsage = "stream args {body | -cpp type} ?-controller?";
  std::string body;
  std::string cpp_type;
  bool controller = false;
  if ((objc == 5 || objc == 6) && view(objv[objc - 1]) == "-controller") {
    controller = true;
    --objc;
  }
  if (objc == 4) {
    body = view(objv[3]);
  } else if (objc == 5 && view(objv[3]) == "-cpp") {
    cpp_type = view(objv[4]);
    if (cpp_type.empty()) {
      return fail(interp, "register_agent: empty C++ agent type", Code::kInvalidArgument);
    }
  } else {
    return wrong_args(interp, objv, kUsage);
  }
  if (controller && !cpp_type.empty()) {
    return fail(interp, "register_agent: a controller must be a Tcl agent", Code::kInvalidArgument);
  }
  return string_result(
      interp, state.api->register_agent(Tcl_GetString(objv[1]), std::string(view(objv[2])), body,
                                        cpp_type, controller));
}

int agent_exit(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 1) return wrong_args(interp, objv, "");
  return status_result(interp, state.api->agent_exit());
}

int my_id(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 1) return wrong_args(interp, objv, "");
  return succeed(interp, new_site(state.api->my_id()));
}

int site_list(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 1) return wrong_args(interp, objv, "");
  Tcl_Obj* list = Tcl_NewListObj(0, nullptr);
  for (SiteNumber site : state.api->site_list()) {
    Tcl_ListObjAppendElement(nullptr, list, new_site(site));
  }
  return succeed(interp, list);
}

int get_peer_map(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 1) return wrong_args(interp, objv, "");
  Tcl_Obj* list = Tcl_NewListObj(0, nullptr);
  for (const PeerInfo& peer : state.api->peer_map()) {
    Tcl_Obj* triple[3] = {new_site(peer.site), new_string(peer.address),
                          Tcl_NewBooleanObj(peer.live)};
    Tcl_ListObjAppendElement(nullptr, list, Tcl_NewListObj(3, triple));
  }
  return succeed(interp, list);
}

int get_peer_addr(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 2) return wrong_args(interp, objv, "site");
  SiteNumber site = 0;
  if (!get_site(interp, objv[1], &site)) return TCL_ERROR;
  for (const PeerInfo& peer : state.api->peer_map()) {
    if (peer.site == site) return succeed(interp, new_string(peer.address));
  }
  return fail(interp, "no such site " + std::to_string(site), Code::kNotFound);
}

// ---- handler-only commands ----

int stream_relocate(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 2) return wrong_args(interp, objv, "site");
  SiteNumber site = 0;
  if (!get_site(interp, objv[1], &site)) return TCL_ERROR;
  const HandlerContext* context = state.api->context();
  if (context == nullptr) return outside(interp, objv[0], "a handler");
  // Deferred to the handler's return (the atomic handler model): nothing has failed yet.
  Result<MoveAnswer> answer = state.api->stream_move(context->stream, site);
  if (!answer.ok()) return fail(interp, answer.status());
  return succeed(interp, new_site(answer->site));
}

int stream_name(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 1) return wrong_args(interp, objv, "");
  const HandlerContext* context = state.api->context();
  if (context == nullptr) return outside(interp, objv[0], "a handler");
  return succeed(interp, new_string(context->stream));
}

int stream_sender_name(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 1) return wrong_args(interp, objv, "");
  const HandlerContext* context = state.api->context();
  if (context == nullptr) return outside(interp, objv[0], "a handler");
  return succeed(interp, new_string(context->sender));
}

template <Event kEvent>
int on_event(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 2) return wrong_args(interp, objv, "script");
  if (state.scope == nullptr || !state.scope->in_agent())
    return outside(interp, objv[0], "an agent");
  if (is_policy_event(kEvent) && !state.scope->privileged()) {
    std::string message(view(objv[0]));
    message.append(": only a controller agent may set policy handlers");
    return fail(interp, message, Code::kPermissionDenied);
  }
  state.scope->set_handler(kEvent, objv[1]);
  Tcl_ResetResult(interp);
  return TCL_OK;
}

int briefcase(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc < 2) return wrong_args(interp, objv, "var ?var ...?");
  std::vector<std::string> names;
  for (int i = 1; i < objc; ++i) {
    std::string_view name = view(objv[i]);
    if (!is_briefcase_name(name)) {
      std::string message = "bad briefcase variable \"";
      message.append(name).append("\": must be a simple variable name");
      return fail(interp, message, Code::kInvalidArgument);
    }
    names.emplace_back(name);
  }
  if (state.scope == nullptr || !state.scope->in_agent())
    return outside(interp, objv[0], "an agent");
  state.scope->declare_briefcase(names);
  Tcl_ResetResult(interp);
  return TCL_OK;
}

int sandbox_expose(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc != 2 && objc != 3) return wrong_args(interp, objv, "name ?target?");
  if (state.scope == nullptr || !state.scope->in_agent())
    return outside(interp, objv[0], "an agent");
  if (!state.scope->privileged() || !state.scope->trusted())
    return fail(interp,
                "sandbox_expose: only a site's or the session's controller may expose commands",
                Code::kPermissionDenied);
  const std::string name(view(objv[1]));
  const std::string target(view(objv[objc - 1]));
  if (Status s = state.scope->expose(name, target); !s.ok()) return fail(interp, s);
  Tcl_ResetResult(interp);
  return TCL_OK;
}

// ---- puts ----

// Writes to stdout go to the api (a site prefixes them with "[N] ", DESIGN.md `mstream run`);
// every other form is the interpreter's own puts, which also words its own errors.
int puts(CommandState& state, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  Tcl_Obj* channel = nullptr;
  Tcl_Obj* text = nullptr;
  bool nonewline = false;
  if (objc == 2) {
    text = objv[1];
  } else if (objc == 3 && view(objv[1]) == "-nonewline") {
    text = objv[2];
    nonewline = true;
  } else if (objc == 3) {
    channel = objv[1];
    text = objv[2];
  } else if (objc == 4 && view(objv[1]) == "-nonewline") {
    channel = objv[2];
    text = objv[3];
    nonewline = true;
  } else if (objc == 4 && view(objv[3]) == "nonewline") {  // Tcl's old form, still accepted
    channel = objv[1];
    text = objv[2];
    nonewline = true;
  }
  if (text != nullptr && (channel == nullptr || view(channel) == "stdout")) {
    state.api->write_stdout(view(text), nonewline);
    Tcl_ResetResult(interp);
    return TCL_OK;
  }
  if (!state.has_builtin_puts) {
    return fail(interp, "puts: this interpreter has no channel output", Code::kUnavailable);
  }
  return state.builtin_puts.objProc(state.builtin_puts.objClientData, interp, objc, objv);
}

// ---- registration ----

template <CommandBody kBody>
int guarded(ClientData data, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  try {
    return kBody(*static_cast<CommandState*>(data), interp, objc, objv);
  } catch (const std::exception& e) {
    // No C++ allocation here: the exception may be std::bad_alloc.
    Tcl_Obj* message = Tcl_NewStringObj("internal error: ", -1);
    Tcl_AppendToObj(message, e.what(), -1);
    Tcl_SetObjResult(interp, message);
  } catch (...) {
    Tcl_SetObjResult(interp, Tcl_NewStringObj("internal error: unknown exception", -1));
  }
  Tcl_SetErrorCode(interp, "MSTREAM", code_name(Code::kInternal), nullptr);
  return TCL_ERROR;
}

struct CommandEntry {
  const char* name;
  Tcl_ObjCmdProc* proc;
};

constexpr CommandEntry kCommands[] = {
    {"stream_create", guarded<stream_create>},
    {"stream_open", guarded<stream_open>},
    {"stream_append", guarded<stream_append>},
    {"stream_move", guarded<stream_move>},
    {"stream_location", guarded<stream_location>},
    {"stream_destroy", guarded<stream_destroy>},
    {"stream_exists", guarded<stream_exists>},
    {"list_streams", guarded<list_streams>},
    {"stream_creator", guarded<stream_creator>},
    {"register_agent", guarded<register_agent>},
    {"agent_exit", guarded<agent_exit>},
    {"my_id", guarded<my_id>},
    {"site_list", guarded<site_list>},
    {"get_peer_map", guarded<get_peer_map>},
    {"get_peer_addr", guarded<get_peer_addr>},
    {"stream_relocate", guarded<stream_relocate>},
    {"stream_name", guarded<stream_name>},
    {"stream_sender_name", guarded<stream_sender_name>},
    {"on_stream_append", guarded<on_event<Event::kAppend>>},
    {"on_stream_relocation", guarded<on_event<Event::kRelocation>>},
    {"on_stream_arrival", guarded<on_event<Event::kRelocation>>},
    {"on_stream_failure", guarded<on_event<Event::kFailure>>},
    {"on_agent_finalize", guarded<on_event<Event::kFinalize>>},
    {"on_stream_open", guarded<on_event<Event::kOpen>>},
    {"on_stream_create", guarded<on_event<Event::kCreate>>},
    {"on_stream_destroy", guarded<on_event<Event::kDestroy>>},
    {"on_stream_move", guarded<on_event<Event::kMove>>},
    {"on_agent_register", guarded<on_event<Event::kRegister>>},
    {"on_stream_arrival_policy", guarded<on_event<Event::kArrival>>},
    {"on_new_peer", guarded<on_event<Event::kNewPeer>>},
    {"briefcase", guarded<briefcase>},
    {"sandbox_expose", guarded<sandbox_expose>},
    {"puts", guarded<puts>},
};

void delete_state(ClientData data, Tcl_Interp*) {
  std::unique_ptr<CommandState> owned(static_cast<CommandState*>(data));
}

// Moves the interpreter's puts aside once; installing twice must not rename ours onto it.
void keep_builtin_puts(Tcl_Interp* interp, CommandState* state) {
  Tcl_CmdInfo info;
  if (Tcl_GetCommandInfo(interp, kBuiltinPuts, &info) == 0 &&
      Tcl_GetCommandInfo(interp, "::puts", &info) != 0) {
    Tcl_CreateNamespace(interp, "::mstream", nullptr, nullptr);  // fails harmlessly if present
    Tcl_ResetResult(interp);
    Tcl_Obj* words[3] = {Tcl_NewStringObj("::rename", -1), Tcl_NewStringObj("::puts", -1),
                         Tcl_NewStringObj(kBuiltinPuts, -1)};
    for (Tcl_Obj* word : words) Tcl_IncrRefCount(word);
    Tcl_EvalObjv(interp, 3, words, TCL_EVAL_GLOBAL);
    for (Tcl_Obj* word : words) Tcl_DecrRefCount(word);
    Tcl_ResetResult(interp);
  }
  state->has_builtin_puts = Tcl_GetCommandInfo(interp, kBuiltinPuts, &state->builtin_puts) != 0;
}

}  // namespace

bool is_briefcase_name(std::string_view name) {
  return !name.empty() && name.find("::") == std::string_view::npos &&
         name.find('(') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

Status install_commands(Tcl_Interp* interp, ScriptApi* api, AgentScope* scope) {
  if (interp == nullptr || api == nullptr) {
    return Status::error(Code::kInvalidArgument, "install_commands: null interpreter or api");
  }
  auto* state = static_cast<CommandState*>(Tcl_GetAssocData(interp, kStateKey, nullptr));
  if (state == nullptr) {
    state = std::make_unique<CommandState>().release();  // owned by the interpreter from here
    Tcl_SetAssocData(interp, kStateKey, delete_state, state);
  }
  state->api = api;
  state->scope = scope;
  keep_builtin_puts(interp, state);
  for (const CommandEntry& command : kCommands) {
    std::string name = std::string("::") + command.name;
    if (Tcl_CreateObjCommand(interp, name.c_str(), command.proc, state, nullptr) == nullptr) {
      return Status::error(Code::kInternal, std::string("cannot create command ") + command.name);
    }
  }
  return Status::ok_status();
}

}  // namespace detail

Status install_commands(Tcl_Interp* interp, ScriptApi* api) {
  return detail::install_commands(interp, api, nullptr);
}

}  // namespace mstream::tcl
