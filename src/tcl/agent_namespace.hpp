#pragma once
// Agent namespaces: isolating their "globals", and entering them to run code.
//
// Why isolation: Tcl 8.6 resolves an unqualified variable at namespace level (namespace eval
// code, which is what an agent's initialization code and handlers are) first in the current
// namespace, then in the global one, and writes to the global one when it exists there
// ("creative writing", removed only in Tcl 9 by TIP 278). With agents sharing an interpreter,
// `set count 0` in one agent would then reach a ::count that anything else created. The resolver
// installed here keeps such names in the agent's namespace, except Tcl's own globals (errorInfo,
// errorCode, env, auto_path, tcl_*), which keep their meaning. Procedure locals, qualified names
// and `variable`/`upvar` links are untouched. For the same reason `global NAME` in a procedure of
// the agent links to the agent's NAME (code written for an interpreter of its own, as AGNI gave
// each agent, keeps working); `global ::NAME` still reaches the interpreter's global.
//
// Tcl 8.6 offers variable resolvers and call frames only through its private API (tclInt.h,
// shipped by tcl8.6-dev); that use is confined to agent_namespace.cpp.
//
// Thread-safety: the interpreter's thread only, like everything in Tcl.

#include <tcl.h>

namespace mstream::tcl::detail {

// Installs the resolver and the agent's `global` command in `ns`.
// REQUIRES: `ns` is alive and no code has been compiled in it yet (installing a resolver
// invalidates the namespace's compiled code).
void isolate_agent_namespace(Tcl_Interp* interp, Tcl_Namespace* ns);

// False once `ns` is null or being deleted: code cannot be run in it any more.
bool namespace_is_alive(Tcl_Namespace* ns);

// Makes `ns` the current namespace at namespace level, as `namespace eval` does (variables
// resolve in `ns`, not in procedure locals), for this object's lifetime. Scripts evaluated
// meanwhile with Tcl_EvalObjEx(interp, script, 0) run as if inside `namespace eval`.
// REQUIRES: namespace_is_alive(ns). Lifetime: strictly nested with other frames.
class NamespaceFrame {
 public:
  NamespaceFrame(Tcl_Interp* interp, Tcl_Namespace* ns);
  ~NamespaceFrame();
  NamespaceFrame(const NamespaceFrame&) = delete;
  NamespaceFrame& operator=(const NamespaceFrame&) = delete;

 private:
  Tcl_Interp* interp_;
  Tcl_CallFrame frame_;
};

}  // namespace mstream::tcl::detail
