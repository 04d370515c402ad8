// The sizes a sandbox checks before a command makes one big value (value_guards.hpp).
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "tcl/value_guards.hpp"

namespace mstream::tcl {
namespace {

class ValueGuards : public ::testing::Test {
 protected:
  void SetUp() override { interp_ = Tcl_CreateInterp(); }
  void TearDown() override { Tcl_DeleteInterp(interp_); }

  std::uint64_t size(std::string_view shown, std::vector<std::string> words) {
    for (const ValueGuard& g : value_guards()) {
      if (shown != g.shown) continue;
      std::vector<Tcl_Obj*> objv;
      for (const std::string& w : words) {
        objv.push_back(Tcl_NewStringObj(w.c_str(), -1));
        Tcl_IncrRefCount(objv.back());
      }
      const std::uint64_t n = g.size(interp_, static_cast<int>(objv.size()), objv.data());
      for (Tcl_Obj* o : objv) Tcl_DecrRefCount(o);
      return n;
    }
    ADD_FAILURE() << "no guard for " << shown;
    return 0;
  }

  Tcl_Interp* interp_ = nullptr;
};

TEST_F(ValueGuards, SizeEachCallFromItsWords) {
  EXPECT_EQ(size("string repeat", {"repeat", "abc", "1000"}), 3000u);
  EXPECT_EQ(size("string repeat", {"repeat", "abc", "-1"}), 0u);  // the original's error
  EXPECT_EQ(size("string cat", {"cat", "ab", "cde"}), 5u);
  EXPECT_EQ(size("lrepeat", {"lrepeat", "10", "a", "b"}), 20 * sizeof(Tcl_Obj*));
  ASSERT_EQ(Tcl_Eval(interp_, "set v 12345"), TCL_OK);
  EXPECT_EQ(size("append", {"append", "v", "678"}), 8u);
  EXPECT_EQ(size("append", {"append", "v"}), 0u);  // reads only: nothing made
}

}  // namespace
}  // namespace mstream::tcl
