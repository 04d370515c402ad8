#include "tcl/value_guards.hpp"

namespace mstream::tcl {
namespace {

std::uint64_t length_of(Tcl_Obj* obj) {
  int n = 0;
  Tcl_GetStringFromObj(obj, &n);
  return static_cast<std::uint64_t>(n);
}

std::uint64_t repeat_size(Tcl_Interp*, int objc, Tcl_Obj* const objv[]) {
  Tcl_WideInt count = 0;
  if (objc != 3 || Tcl_GetWideIntFromObj(nullptr, objv[2], &count) != TCL_OK || count <= 0)
    return 0;
  return length_of(objv[1]) * static_cast<std::uint64_t>(count);
}

std::uint64_t lrepeat_size(Tcl_Interp*, int objc, Tcl_Obj* const objv[]) {
  Tcl_WideInt count = 0;
  if (objc < 2 || Tcl_GetWideIntFromObj(nullptr, objv[1], &count) != TCL_OK || count <= 0) return 0;
  return static_cast<std::uint64_t>(count) * static_cast<std::uint64_t>(objc - 2) *
         sizeof(Tcl_Obj*);
}

std::uint64_t cat_size(Tcl_Interp*, int objc, Tcl_Obj* const objv[]) {
  std::uint64_t n = 0;
  for (int i = 1; i < objc; ++i) n += length_of(objv[i]);
  return n;
}

std::uint64_t append_size(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
  if (objc < 3) return 0;
  std::uint64_t n = 0;
  if (Tcl_Obj* value = Tcl_ObjGetVar2(interp, objv[1], nullptr, 0)) n = length_of(value);
  for (int i = 2; i < objc; ++i) n += length_of(objv[i]);
  return n;
}

constexpr ValueGuard kGuards[] = {
    {"::tcl::string::repeat", "mstream_string_repeat", "string repeat", repeat_size},
    {"::tcl::string::cat", "mstream_string_cat", "string cat", cat_size},
    {"::lrepeat", "mstream_lrepeat", "lrepeat", lrepeat_size},
    {"::append", "mstream_append", "append", append_size},
};

}  // namespace

std::span<const ValueGuard> value_guards() { return kGuards; }

}  // namespace mstream::tcl
