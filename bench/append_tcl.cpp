// append-tcl: Tcl append handlers consumed per second at a site. The shell appends N 64-byte
// messages to a stream at site 1 whose one agent is Tcl (`on_stream_append {incr n}`), then a
// last -sync append, which returns once everything before it was consumed (per-sender FIFO)
// and whose result, n, proves every handler ran. Time per handler = elapsed / (N + 1).
//
// Two baselines, each measured in the same run:
//   - bare_tcl_proc_call: calling a bare Tcl proc (`proc p {x} {incr ::n}`) N times from C
//     (Tcl_EvalObjv) in an interpreter of this process: the least a Tcl handler can cost.
//     The ratio says how many bare proc calls one whole handler costs, delivery included.
//   - cpp_agent_handlers_per_second: the same path, the same session, with a C++ agent that
//     counts (bench.counter) instead of the Tcl one: what the transport and the site cost
//     without Tcl.
// Rounds alternate Tcl, C++ and the bare proc loop, so background load falls on all alike;
// each metric is the median round.
#include <tcl.h>

#include <string>

#include "bench/agents.hpp"
#include "bench/bench.hpp"
#include "bench/process.hpp"
#include "bench/session.hpp"
#include "site/shell_api.hpp"

namespace mstream::bench {
namespace {

const char* const kTclStream = "bench/append/tcl";
const char* const kCppStream = "bench/append/cpp";
const char* const kTclAgent = "set n 0\non_stream_append {incr n}\n";
constexpr std::uint32_t kWarmupMessages = 500;
constexpr std::size_t kMessageBytes = 64;

// ns per call of a bare proc, over `calls` calls after a warm-up (the proc gets compiled).
Result<double> bare_proc_call_ns(std::uint32_t calls) {
  Tcl_Interp* interp = Tcl_CreateInterp();
  if (Tcl_Eval(interp, "set ::n 0; proc p {x} {incr ::n}") != TCL_OK) {
    std::string error = Tcl_GetStringResult(interp);
    Tcl_DeleteInterp(interp);
    return Status::error(Status::Code::kInternal, "bare Tcl proc: " + error);
  }
  const std::string message(kMessageBytes, 'x');
  Tcl_Obj* objv[2] = {Tcl_NewStringObj("p", -1),
                      Tcl_NewStringObj(message.data(), static_cast<int>(message.size()))};
  for (Tcl_Obj* o : objv) Tcl_IncrRefCount(o);
  int rc = TCL_OK;
  for (std::uint32_t i = 0; i < 1000 && rc == TCL_OK; ++i) rc = Tcl_EvalObjv(interp, 2, objv, 0);
  const auto t0 = Clock::now();
  for (std::uint32_t i = 0; i < calls && rc == TCL_OK; ++i) rc = Tcl_EvalObjv(interp, 2, objv, 0);
  const auto t1 = Clock::now();
  for (Tcl_Obj* o : objv) Tcl_DecrRefCount(o);
  Tcl_DeleteInterp(interp);
  if (rc != TCL_OK) return Status::error(Status::Code::kInternal, "bare Tcl proc call failed");
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / calls;
}

Status expect_count(const std::string& result, std::size_t fields, std::uint64_t expected,
                    const char* what) {
  auto numbers = parse_sync_numbers(result, fields);
  if (!numbers.ok()) return numbers.status();
  if ((*numbers)[0] != expected)
    return Status::error(Status::Code::kInternal,
                         std::string(what) + " ran " + std::to_string((*numbers)[0]) +
                             " handlers, expected " + std::to_string(expected));
  return Status::ok_status();
}

}  // namespace

Result<std::vector<BenchResult>> run_append_tcl(const BenchOptions& options) {
  register_bench_agent_types();
  const std::uint32_t n = options.messages > 0 ? options.messages : (options.quick ? 2000 : 20000);
  SessionConfig config = session_config(options);
  config.sites = 1;
  auto session = BenchSession::start(config);
  if (!session.ok()) return session.status();
  site::ShellApi& shell = (*session)->shell();
  tcl::CreateOptions at;
  at.site = 1;
  for (const char* stream : {kTclStream, kCppStream}) {
    if (auto r = shell.stream_create(stream, at); !r.ok()) return r.status();
  }
  if (auto r = shell.register_agent(kTclStream, "", kTclAgent, "", false); !r.ok())
    return r.status();
  if (auto r = shell.register_agent(kCppStream, "", "", std::string(kCounterAgent), false); !r.ok())
    return r.status();

  // The Tcl agent counts every message, -sync ones included; bench.counter not "stats".
  std::uint64_t tcl_count = 0;
  std::uint64_t cpp_count = 0;
  auto tcl_burst = [&](std::uint32_t count) -> Result<double> {
    auto b = append_burst(shell, kTclStream, count, "sync", kMessageBytes);
    if (!b.ok()) return b.status();
    tcl_count += count + 1;
    if (Status s = expect_count(b->result, 1, tcl_count, "the Tcl agent"); !s.ok()) return s;
    return b->ns / (count + 1);
  };
  auto cpp_burst = [&](std::uint32_t count) -> Result<double> {
    auto b = append_burst(shell, kCppStream, count, "stats", kMessageBytes);
    if (!b.ok()) return b.status();
    cpp_count += count;
    if (Status s = expect_count(b->result, 2, cpp_count, "the C++ agent"); !s.ok()) return s;
    return b->ns / (count + 1);
  };
  if (auto r = tcl_burst(kWarmupMessages); !r.ok()) return r.status();
  if (auto r = cpp_burst(kWarmupMessages); !r.ok()) return r.status();

  std::vector<double> tcl_ns;
  std::vector<double> cpp_ns;
  std::vector<double> proc_ns;
  for (int round = 0; round < rounds_or_default(options); ++round) {
    auto t = tcl_burst(n);
    if (!t.ok()) return t.status();
    tcl_ns.push_back(*t);
    auto c = cpp_burst(n);
    if (!c.ok()) return c.status();
    cpp_ns.push_back(*c);
    auto p = bare_proc_call_ns(std::max<std::uint32_t>(n, 100'000));
    if (!p.ok()) return p.status();
    proc_ns.push_back(*p);
  }
  if (Status st = (*session)->shutdown(); !st.ok()) return st;

  const char* wait = wait_strategy_name(WaitStrategy::kBlock);
  const double tcl = median(tcl_ns);
  const double cpp = median(cpp_ns);
  return std::vector<BenchResult>{
      {"append-tcl", "tcl_handlers_per_second", 1e9 / tcl, "msgs/s",
       "cpp_agent_handlers_per_second", 1e9 / cpp, wait, "unpinned"},
      {"append-tcl", "time_per_tcl_handler", tcl / 1000.0, "us", "bare_tcl_proc_call",
       median(proc_ns) / 1000.0, wait, "unpinned"},
  };
}

}  // namespace mstream::bench
