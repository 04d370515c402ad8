// RunLimits: a run's budgets (time, commands, heap growth) stop a run that spends them and say
// which, and leave the interpreter usable; the command count is the one Tcl keeps.
#include <gtest/gtest.h>
#include <tcl.h>

#include <chrono>
#include <string>

#include "tcl/run_limits.hpp"

namespace mstream::tcl {
namespace {

class RunLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    interp_ = Tcl_CreateInterp();
    limits_.watch(interp_);
  }
  void TearDown() override { Tcl_DeleteInterp(interp_); }

  // One armed run of `script`, evaluated as TclHost does (a script object, compiled while the
  // limits are active; a command limit cannot count compiled commands otherwise): what
  // disarm() says of it.
  HandlerOutcome run(const char* script) {
    limits_.arm(interp_);
    HandlerOutcome out;
    Tcl_Obj* body = Tcl_NewStringObj(script, -1);
    Tcl_IncrRefCount(body);
    out.ok = Tcl_EvalObjEx(interp_, body, 0) == TCL_OK;
    Tcl_DecrRefCount(body);
    out.result = Tcl_GetStringResult(interp_);
    limits_.disarm(interp_, &out);
    return out;
  }

  Tcl_Interp* interp_ = nullptr;
  RunLimits limits_;
};

// Tcl counts the commands it dispatches (compiled ones only under a command limit).
TEST_F(RunLimitsTest, TheCommandCountIsWhatInfoCmdcountSays) {
  const int before = command_count(interp_);
  ASSERT_EQ(Tcl_Eval(interp_, "set a 1; set b 2; set c 3"), TCL_OK);
  const int after = command_count(interp_);
  EXPECT_EQ(after - before, 3);
  ASSERT_EQ(Tcl_Eval(interp_, "info cmdcount"), TCL_OK);
  int said = 0;
  ASSERT_EQ(Tcl_GetIntFromObj(nullptr, Tcl_GetObjResult(interp_), &said), TCL_OK);
  EXPECT_GE(said, after);
  EXPECT_LE(said, after + 2);  // the `info cmdcount` itself
}

TEST_F(RunLimitsTest, ARunPastItsCommandLimitIsStoppedAndTheNextRunsFromZero) {
  limits_.set({.time_ms = 0, .commands = 5000, .memory_bytes = 0});
  const HandlerOutcome stopped = run("while 1 { incr i }");
  EXPECT_FALSE(stopped.ok);
  EXPECT_EQ(stopped.result, "sandbox: command limit exceeded (5000 commands per run)");
  // Each run has the whole budget again, however many commands ran before.
  for (int k = 0; k < 3; ++k) {
    const HandlerOutcome ok = run("for {set j 0} {$j < 1000} {incr j} {}; set j");
    EXPECT_TRUE(ok.ok) << ok.result;
    EXPECT_EQ(ok.result, "1000");
  }
}

TEST_F(RunLimitsTest, ARunPastItsTimeLimitIsStopped) {
  limits_.set({.time_ms = 50, .commands = 0, .memory_bytes = 0});
  const HandlerOutcome stopped = run("while 1 {}");
  EXPECT_FALSE(stopped.ok);
  EXPECT_EQ(stopped.result, "sandbox: time limit exceeded (50 ms per run)");
  EXPECT_TRUE(run("set x 1").ok);
  // Armed right after another run: Tcl's clock is then carried forward from the last reading.
  const HandlerOutcome again = run("while 1 {}");
  EXPECT_EQ(again.result, "sandbox: time limit exceeded (50 ms per run)");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(run("while 1 {}").ok);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(50))
      << "the limit was set from a clock behind";
}

// The heap is checked every check_every commands, against a baseline read at most
// kHeapReadEvery before the run. A run right after one that grew the heap to its budget and
// freed it is held to its own budget: 48 MB over a 32 MB budget stop it.
TEST_F(RunLimitsTest, ARunThatGrowsTheHeapPastItsBudgetIsStoppedEvenRightAfterAnother) {
  limits_.set({.time_ms = 0, .commands = 0, .memory_bytes = 32u << 20, .check_every = 20});
  const char* unbounded =
      "set x [string repeat x 1000000]; set l {}; "
      "while 1 { lappend l [string cat $x [incr i]] }";
  const char* bounded_48mb =
      "set x [string repeat x 1000000]; set l {}; "
      "for {set i 0} {$i < 48} {incr i} { lappend l [string cat $x $i] }; return done";
  for (const char* script : {unbounded, bounded_48mb}) {
    const HandlerOutcome grown = run(script);
    EXPECT_FALSE(grown.ok) << script;
    EXPECT_EQ(grown.result.rfind("sandbox: memory limit exceeded (the heap grew by ", 0), 0u)
        << grown.result;
    ASSERT_EQ(Tcl_Eval(interp_, "unset -nocomplain l x"), TCL_OK);
  }
  EXPECT_TRUE(run("set y 1").ok);
}

}  // namespace
}  // namespace mstream::tcl
