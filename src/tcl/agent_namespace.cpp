#include "tcl/agent_namespace.hpp"

#include <tclInt.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

namespace mstream::tcl::detail {
namespace {

// Tcl's own globals: an agent reading $errorInfo or $env(HOME) or $tcl_platform(os) means these.
bool is_tcl_global(std::string_view name) {
  return name == "errorInfo" || name == "errorCode" || name == "env" || name == "auto_path" ||
         name.starts_with("tcl_");
}

// The variable `name` of `table`, or nullptr: TclVarHashFindVar without its allocation. The
// table's keys are Tcl_Objs compared by their string (tclVar.c, HashVarKey/CompareVarKeys), so a
// key that lives on the stack for one lookup, never stored nor freed, finds the same entry. This
// runs for every variable access of every handler; the allocation was a third of its cost.
Var* find_variable(TclVarHashTable* table, const char* name) {
  Tcl_Obj key{};
  key.refCount = 1;  // never reaches 0: Tcl must not free it
  key.bytes = const_cast<char*>(name);
  key.length = static_cast<int>(std::strlen(name));
  Tcl_HashEntry* entry = Tcl_FindHashEntry(&table->table, reinterpret_cast<const char*>(&key));
  if (entry == nullptr) return nullptr;
  // tclVar.c VarHashGetValue: the entry is a member of the variable's VarInHash.
  return reinterpret_cast<Var*>(reinterpret_cast<char*>(entry) - offsetof(VarInHash, entry));
}

// Tcl_ResolveVarProc protocol: TCL_OK with *var set decides, TCL_CONTINUE lets Tcl's default
// lookup run. Tcl calls this for every lookup whose context namespace is an agent's, before its
// own rules, including from procedures defined there.
int resolve_agent_variable(Tcl_Interp* interp, const char* name, Tcl_Namespace* context, int flags,
                           Tcl_Var* var) {
  if ((flags & (TCL_GLOBAL_ONLY | TCL_NAMESPACE_ONLY)) != 0) return TCL_CONTINUE;
  // Inside a procedure an unqualified name is a local: Tcl's rules are right there.
  const CallFrame* frame = reinterpret_cast<Interp*>(interp)->varFramePtr;
  if (frame != nullptr && (frame->isProcCallFrame & FRAME_IS_PROC) != 0) return TCL_CONTINUE;
  if (std::strstr(name, "::") != nullptr) return TCL_CONTINUE;

  // Direct finds in the variable tables: Tcl_FindNamespaceVar would parse the name for
  // qualifiers again, and allocate, on every variable access of every handler.
  Namespace* here = reinterpret_cast<Namespace*>(context);
  if (Var* own = find_variable(&here->varTable, name); own != nullptr) {
    *var = reinterpret_cast<Tcl_Var>(own);
    return TCL_OK;
  }
  if (is_tcl_global(name)) return TCL_CONTINUE;
  // With no global of that name Tcl's default creates the variable here, as we want.
  Namespace* global = reinterpret_cast<Interp*>(interp)->globalNsPtr;
  if (find_variable(&global->varTable, name) == nullptr) return TCL_CONTINUE;
  // A global of that name exists, and the default would bind to it: make an (undefined)
  // variable here instead, exactly as Tcl's default lookup creates a namespace variable.
  int is_new = 0;
  Var* created = TclVarHashCreateVar(&here->varTable, name, &is_new);
  if (created == nullptr) return TCL_CONTINUE;
  *var = reinterpret_cast<Tcl_Var>(created);
  return TCL_OK;
}

// `global ?NAME ...?` for the agent's procedures: `variable NAME` (a link to the agent's
// namespace variable) for simple names, Tcl's own global for qualified ones. Like Tcl's, it does
// nothing outside a procedure.
int agent_global(ClientData, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  const CallFrame* frame = reinterpret_cast<Interp*>(interp)->varFramePtr;
  if (frame == nullptr || (frame->isProcCallFrame & FRAME_IS_PROC) == 0) {
    Tcl_ResetResult(interp);
    return TCL_OK;
  }
  Tcl_Obj* link_agent = Tcl_NewStringObj("::variable", -1);
  Tcl_Obj* link_global = Tcl_NewStringObj("::global", -1);
  Tcl_IncrRefCount(link_agent);
  Tcl_IncrRefCount(link_global);
  int code = TCL_OK;
  for (int i = 1; i < objc && code == TCL_OK; ++i) {
    bool qualified = std::strstr(Tcl_GetString(objv[i]), "::") != nullptr;
    Tcl_Obj* words[2] = {qualified ? link_global : link_agent, objv[i]};
    code = Tcl_EvalObjv(interp, 2, words, 0);
  }
  Tcl_DecrRefCount(link_agent);
  Tcl_DecrRefCount(link_global);
  if (code == TCL_OK) Tcl_ResetResult(interp);
  return code;
}

}  // namespace

void isolate_agent_namespace(Tcl_Interp* interp, Tcl_Namespace* ns) {
  Tcl_SetNamespaceResolvers(ns, nullptr, resolve_agent_variable, nullptr);
  std::string name = std::string(ns->fullName) + "::global";
  Tcl_CreateObjCommand(interp, name.c_str(), agent_global, nullptr, nullptr);
}

NamespaceFrame::NamespaceFrame(Tcl_Interp* interp, Tcl_Namespace* ns) : interp_(interp) {
  // Never fails in 8.6 for a live namespace (it only panics on a dead one, hence REQUIRES).
  Tcl_PushCallFrame(interp, &frame_, ns, /*isProcCallFrame=*/0);
}

NamespaceFrame::~NamespaceFrame() { Tcl_PopCallFrame(interp_); }

bool namespace_is_alive(Tcl_Namespace* ns) {
  return ns != nullptr &&
         (reinterpret_cast<const Namespace*>(ns)->flags & (NS_DYING | NS_DEAD | NS_KILLED)) == 0;
}

}  // namespace mstream::tcl::detail
