// memory, second half: what an idle stream costs at the site that hosts it, in a real
// session. Method: create `streams` streams at site 1, each with a C++ agent (bench.counter),
// wait until the session is quiescent, and divide the growth of site 1's anonymous resident
// memory (RssAnon: its heap and other private pages, not the code it maps in) by `streams`.
// Then the same at site 2 with streams/5 streams each with a Tcl agent (a namespace in the
// site's shared interpreter, with an append and a relocation handler and a briefcase). A
// warm-up batch of each kind comes first, so one-off costs (the Tcl interpreter itself, about
// 280 KB, tables sized for the first entries) are not charged to the measured ones. What is
// charged is everything the site holds for the stream: its record, its entry in the site's
// replica of the session directory, its transport state, its agent.
//
// Baselines, measured in the same run, in this process:
//   - a stream with a C++ agent vs a std::map<std::string, std::string> entry holding the
//     stream's name and its agent's briefcase: the least any site could keep per stream;
//   - a Tcl agent vs a bare namespace holding the same variable and two procs with the same
//     bodies in a plain interpreter: the least a namespace-per-agent design can cost;
// and both against the targets (2 KB, 64 KB), which are fixed numbers ("target").
// The baselines are measured as heap in use (mallinfo2, as the first half of memory does),
// not as RSS: this process has freed memory before (its free lists would absorb the growth
// and RSS would not move), a freshly started site has not. Heap in use leaves out the page
// slack that RSS counts, so if anything it makes the baselines smaller, and the ratios larger.
#include <malloc.h>
#include <tcl.h>

#include <map>
#include <string>

#include "bench/agents.hpp"
#include "bench/bench.hpp"
#include "bench/session.hpp"
#include "site/shell_api.hpp"

namespace mstream::bench {
namespace {

constexpr double kCppStreamTargetBytes = 2048;
constexpr double kTclAgentTargetBytes = 64 * 1024;
const char* const kTclAgentBody =
    "set n 0\nbriefcase n\non_stream_append {incr n}\non_stream_relocation {}\n";
constexpr auto kQuiescentTimeout = std::chrono::seconds(60);
constexpr std::uint32_t kLeastBaselineEntries = 2000;

std::string cpp_name(std::uint32_t i) { return "bench/memory/cpp/" + std::to_string(i); }
std::string tcl_name(std::uint32_t i) { return "bench/memory/tcl/" + std::to_string(i); }

// Streams [first, first + count) at `site`, each with the agent `cpp_type` or Tcl `body`.
Status create_streams(site::ShellApi& shell, std::uint32_t site, std::uint32_t first,
                      std::uint32_t count, bool tcl) {
  tcl::CreateOptions at;
  at.site = site;
  for (std::uint32_t i = first; i < first + count; ++i) {
    const std::string name = tcl ? tcl_name(i) : cpp_name(i);
    if (auto r = shell.stream_create(name, at); !r.ok()) return r.status();
    auto r = tcl ? shell.register_agent(name, "", kTclAgentBody, "", false)
                 : shell.register_agent(name, "", "", std::string(kCounterAgent), false);
    if (!r.ok()) return r.status();
  }
  return shell.wait_quiescent(kQuiescentTimeout);
}

// RssAnon growth of `site` per stream over creating `count` of them after `warm`.
Result<double> bytes_per_stream(BenchSession& session, std::uint32_t site, std::uint32_t warm,
                                std::uint32_t count, bool tcl) {
  if (Status s = create_streams(session.shell(), site, 0, warm, tcl); !s.ok()) return s;
  auto before = anonymous_rss_bytes(session.site_pid(site));
  if (!before.ok()) return before.status();
  if (Status s = create_streams(session.shell(), site, warm, count, tcl); !s.ok()) return s;
  auto after = anonymous_rss_bytes(session.site_pid(site));
  if (!after.ok()) return after.status();
  return static_cast<double>(*after - *before) / count;
}

std::int64_t heap_in_use() {
  struct mallinfo2 mi = mallinfo2();
  return static_cast<std::int64_t>(mi.uordblks + mi.hblkhd);
}

// A std::map entry per stream holding its name and briefcase ("0 0": bench.counter's).
Result<double> bytes_per_map_entry(std::uint32_t count) {
  std::map<std::string, std::string> map;
  for (std::uint32_t i = 0; i < count / 10; ++i) map.emplace("warm/" + cpp_name(i), "0 0");
  const std::int64_t before = heap_in_use();
  for (std::uint32_t i = 0; i < count; ++i) map.emplace(cpp_name(i), "0 0");
  return static_cast<double>(heap_in_use() - before) / count;
}

// A namespace per agent with what the Tcl agent defines, in a plain interpreter.
Result<double> bytes_per_namespace(std::uint32_t warm, std::uint32_t count) {
  Tcl_Interp* interp = Tcl_CreateInterp();
  auto make = [interp](std::uint32_t first, std::uint32_t n) {
    for (std::uint32_t i = first; i < first + n; ++i) {
      const std::string script = "namespace eval ::agent" + std::to_string(i) +
                                 " { variable n 0; proc on_append {argv} {variable n; incr n};"
                                 " proc on_relocation {} {} }";
      if (Tcl_Eval(interp, script.c_str()) != TCL_OK) return false;
    }
    return true;
  };
  Result<double> out = Status::error(Status::Code::kInternal, "bare Tcl namespaces failed");
  if (make(0, warm)) {
    const std::int64_t before = heap_in_use();
    if (make(warm, count)) out = static_cast<double>(heap_in_use() - before) / count;
  }
  Tcl_DeleteInterp(interp);
  return out;
}

}  // namespace

Result<std::vector<BenchResult>> run_session_memory(const BenchOptions& options) {
  register_bench_agent_types();
  const std::uint32_t streams =
      options.streams > 0 ? options.streams : (options.quick ? 100 : 1000);
  const std::uint32_t agents = std::max<std::uint32_t>(streams / 5, 10);
  SessionConfig config = session_config(options);
  config.sites = 2;
  auto session = BenchSession::start(config);
  if (!session.ok()) return session.status();
  auto cpp =
      bytes_per_stream(**session, 1, std::max<std::uint32_t>(streams / 10, 10), streams, false);
  if (!cpp.ok()) return cpp.status();
  auto tcl = bytes_per_stream(**session, 2, std::max<std::uint32_t>(agents / 10, 5), agents, true);
  if (!tcl.ok()) return tcl.status();
  if (Status st = (*session)->shutdown(); !st.ok()) return st;
  // The baselines use at least a few thousand entries whatever the stream count: malloc and
  // Tcl's allocator hand out memory from blocks, and a few dozen entries may fit in one they
  // already hold.
  auto map_entry = bytes_per_map_entry(std::max<std::uint32_t>(streams, kLeastBaselineEntries));
  if (!map_entry.ok()) return map_entry.status();
  const std::uint32_t namespaces = std::max<std::uint32_t>(agents, kLeastBaselineEntries);
  auto ns = bytes_per_namespace(namespaces / 10, namespaces);
  if (!ns.ok()) return ns.status();

  const std::string site = "site process";
  return std::vector<BenchResult>{
      {"memory", "bytes_per_idle_stream_cpp_agent", *cpp, "bytes", "target", kCppStreamTargetBytes,
       "", site},
      {"memory", "bytes_per_idle_stream_cpp_agent", *cpp, "bytes", "std_map_entry_same_state",
       *map_entry, "", site},
      {"memory", "bytes_per_tcl_agent", *tcl, "bytes", "target", kTclAgentTargetBytes, "", site},
      {"memory", "bytes_per_tcl_agent", *tcl, "bytes", "bare_tcl_namespace_same_procs", *ns, "",
       site},
  };
}

}  // namespace mstream::bench
