// durable: what durability costs a stream (DESIGN.md guarantee 6). A local session of a
// leader and two sites; two streams at site 1 with failure manager site 2 and one bench.counter
// agent each, one of them created -durable. Each round the shell appends N 64-byte messages to
// one stream, then "stats" -sync (returned once all before it were consumed, and checked: the
// counter saw them all), and then the same to the other: durable_msgs_per_s against
// non_durable_msgs_per_s, the median rounds, and the ratio durable / non-durable (target >=
// 0.5, issue 19). A durable stream's site acknowledges a message, and sends what its handlers
// appended, only once site 2 stored a checkpoint covering it (one SQLite commit with fsync per
// batch of checkpoints): the shell's window of unacknowledged messages then waits on checkpoints,
// which is the cost measured.
//
// A second pair: one -sync append's round trip, durable against not (the median of many):
// the latency a checkpoint adds to one message (a round trip to the failure manager and a
// commit).
//
// Placement: unpinned, blocking, as the other session benchmarks. Site 2's store is in the
// machine's temporary directory: on a disk (not tmpfs), each commit costs a real fsync of the
// write-ahead log.
#include <string>
#include <vector>

#include "bench/agents.hpp"
#include "bench/bench.hpp"
#include "bench/process.hpp"
#include "bench/session.hpp"
#include "site/shell_api.hpp"

namespace mstream::bench {
namespace {

const char* const kPlain = "bench/durable/plain";
const char* const kDurable = "bench/durable/durable";
constexpr std::size_t kMessageBytes = 64;
constexpr std::uint32_t kWarmupMessages = 500;

}  // namespace

Result<std::vector<BenchResult>> run_durable(const BenchOptions& options) {
  register_bench_agent_types();
  const std::uint32_t n = options.messages > 0 ? options.messages : (options.quick ? 2000 : 20000);
  const int latency_samples = options.quick ? 50 : 300;
  SessionConfig config = session_config(options);
  config.sites = 2;
  auto session = BenchSession::start(config);
  if (!session.ok()) return session.status();
  site::ShellApi& shell = (*session)->shell();
  for (const char* stream : {kPlain, kDurable}) {
    tcl::CreateOptions create;
    create.site = 1;
    create.failure_manager = 2;
    create.durable = stream == kDurable;
    if (auto r = shell.stream_create(stream, create); !r.ok()) return r.status();
    if (auto r = shell.register_agent(stream, "", "", std::string(kCounterAgent), false); !r.ok())
      return r.status();
  }
  std::uint64_t counted[2] = {0, 0};
  // One burst to stream `which` (0 plain, 1 durable); its rate in messages per second.
  auto burst = [&](int which, std::uint32_t count) -> Result<double> {
    const char* stream = which == 0 ? kPlain : kDurable;
    auto b = append_burst(shell, stream, count, "stats", kMessageBytes);
    if (!b.ok()) return b.status();
    counted[which] += count;
    auto numbers = parse_sync_numbers(b->result, 2);
    if (!numbers.ok()) return numbers.status();
    if ((*numbers)[0] != counted[which])
      return Status::error(Status::Code::kInternal,
                           std::string(stream) + " counted " + std::to_string((*numbers)[0]) +
                               " messages, expected " + std::to_string(counted[which]));
    return (count + 1) * 1e9 / b->ns;
  };
  for (int which : {0, 1})
    if (auto r = burst(which, kWarmupMessages); !r.ok()) return r.status();

  std::vector<double> rate[2];
  for (int round = 0; round < rounds_or_default(options); ++round) {
    for (int which : {0, 1}) {
      auto r = burst(which, n);
      if (!r.ok()) return r.status();
      rate[which].push_back(*r);
    }
  }
  std::vector<double> latency_us[2];
  for (int i = 0; i < latency_samples; ++i) {
    for (int which : {0, 1}) {
      const auto t0 = Clock::now();
      auto r = append_sync(shell, which == 0 ? kPlain : kDurable, "stats");
      const auto t1 = Clock::now();
      if (!r.ok()) return r.status();
      latency_us[which].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
  }
  if (Status st = (*session)->shutdown(); !st.ok()) return st;

  const char* wait = wait_strategy_name(WaitStrategy::kBlock);
  return std::vector<BenchResult>{
      {"durable", "durable_msgs_per_s", median(rate[1]), "msgs/s", "non_durable_msgs_per_s",
       median(rate[0]), wait, "unpinned"},
      {"durable", "durable_sync_append_us", median(latency_us[1]), "us",
       "non_durable_sync_append_us", median(latency_us[0]), wait, "unpinned"},
  };
}

std::string durable_summary(const std::vector<BenchResult>& results) {
  for (const auto& r : results) {
    if (r.metric != "durable_msgs_per_s") continue;
    const double ratio = r.baseline_value > 0 ? r.value / r.baseline_value : 0;
    char line[200];
    std::snprintf(line, sizeof(line),
                  "durable: target throughput >= 0.5 of a non-durable stream's: %.3f (%s)\n", ratio,
                  ratio >= 0.5 ? "met" : "MISSED");
    return line;
  }
  return {};
}

}  // namespace mstream::bench
