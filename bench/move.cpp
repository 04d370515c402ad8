// move: seed 004 §3's experiment. One stream with one agent (a minimal relocation handler
// and briefcase: bench.counter) moves round robin over the 4 sites of a local session, each
// move issued by the shell with stream_move, which returns once the stream has arrived and its
// relocation handler has run (COMMANDS.md). The paper measured 38.5 ms per hop averaged over
// 1,000 hops (150 MHz UltraSPARCs, 10 Mb/s Ethernet, TCP to the leader).
//
// A move is a chain of one-way control messages: shell -> leader (request), leader -> source
// site (move out), source -> target (the stream, its briefcases and channel state), target ->
// leader and requester (installed, answered), each carried reliably by the transport. So the
// baseline is the raw UDP round trip between two processes, measured in the same run with the
// same placement (unpinned, as the session's six processes are) and the same waiting strategy
// (blocking in the kernel, as the daemons do); the ratio is hops in round trips.
//
// Every round starts a fresh session (the first hops, each agent's first visit to a site, are
// warm-up and not timed) beside a raw UDP echo process; blocks of 50 hops and 50 raw round
// trips alternate, so background load that comes and goes (this machine is shared) falls on
// both alike. The hop count is checked at the end against the agent's briefcase.
//
// What a hop costs besides its time, from the counters of every process of the session (each
// daemon's --stats-file, read before and after the timed hops):
//   - datagrams_per_hop and control_messages_per_hop, against the least a move needs: five
//     control messages (the request to the leader, its order to the source, the stream to the
//     target, the target's word to the leader and its answer to the requester), each in a
//     datagram of its own, every acknowledgement riding on one of them;
//   - worker_handoffs_per_hop: work handed to a handler thread and back, against the least
//     this agent needs: one (its relocation handler at the target, which saves its briefcase
//     there for its next move: the source needs no round trip to its lane);
//   - worker_handoff_round_trip: what one such hand-off costs (runtime::WorkerPool, in this
//     process, the driver blocking on the pool's eventfd as a daemon's loop does), measured in
//     blocks between the hops, against the raw UDP round trip.
#include <poll.h>

#include <string>
#include <vector>

#include "bench/agents.hpp"
#include "bench/bench.hpp"
#include "bench/process.hpp"
#include "bench/raw_udp.hpp"
#include "bench/session.hpp"
#include "runtime/worker_pool.hpp"
#include "site/shell_api.hpp"

namespace mstream::bench {
namespace {

constexpr std::uint32_t kSites = 4;
// Two full cycles: every site has seen the agent (its code cached there) before timing.
constexpr std::uint32_t kWarmupHops = 2 * kSites;
// Seed 004 §3: "a move latency of 38.5 milliseconds averaged over 1000 hops".
constexpr double kPaperMeanUs = 38'500;
const char* const kStream = "bench/move";
// Hops and raw UDP round trips alternate in blocks of this many, so both see the same load.
constexpr std::uint32_t kBlock = 50;
// The echo gives up on its own after this, whatever happens here.
constexpr auto kEchoDeadline = std::chrono::minutes(10);

// The least a move needs (see the top of this file).
constexpr double kLeastControlMessages = 5;
constexpr double kLeastWorkerHandoffs = 1;

// Hop times, raw UDP round trips and worker hand-offs, ns, measured alternately in blocks,
// under one load; and the session's counters over the timed hops.
struct Samples {
  std::vector<double> hops;
  std::vector<double> udp;
  std::vector<double> handoffs;
  double timed_hops = 0;
  double datagrams = 0;
  double control_messages = 0;
  double worker_jobs = 0;
};

// One round trip of empty work through a one-lane pool: submitted, run on its thread, its
// done collected by this thread, woken by the pool's eventfd. kUnavailable after 10 s (a
// broken pool, not a slow one).
Result<std::int64_t> worker_handoff(runtime::WorkerPool& pool) {
  bool done = false;
  const auto t0 = Clock::now();
  pool.submit(
      0, [] {}, [&done] { done = true; });
  while (!done) {
    if (Clock::now() - t0 > std::chrono::seconds(10))
      return Status::error(Status::Code::kUnavailable, "a worker hand-off took over 10 s");
    pollfd p{pool.wake_fd(), POLLIN, 0};
    if (::poll(&p, 1, 1000) < 0 && errno != EINTR)
      return Status::error(Status::Code::kIoError, "poll on the worker pool's eventfd failed");
    pool.run_done();
  }
  return (Clock::now() - t0).count();
}

// One session, and one raw UDP echo beside it.
Status measure_round(const BenchOptions& options, std::uint32_t hops, Samples* out) {
  // Forked before the session starts its output thread (fork only while single-threaded).
  auto echo = RawUdpEcho::start(WaitStrategy::kBlock, Placement{}, kEchoDeadline);
  if (!echo.ok()) return echo.status();
  SessionConfig config = session_config(options);
  config.sites = kSites;
  auto session = BenchSession::start(config);
  if (!session.ok()) return session.status();
  auto pool = runtime::WorkerPool::start(1);
  if (!pool.ok()) return pool.status();
  site::ShellApi& shell = (*session)->shell();
  tcl::CreateOptions create;
  create.site = 1;
  if (auto r = shell.stream_create(kStream, create); !r.ok()) return r.status();
  if (auto r = shell.register_agent(kStream, "", "", std::string(kCounterAgent), false); !r.ok())
    return r.status();

  std::uint32_t site = 1;
  auto hop = [&]() -> Result<std::int64_t> {
    site = site % kSites + 1;
    const auto t0 = Clock::now();
    auto r = shell.stream_move(kStream, site);
    const auto t1 = Clock::now();
    if (!r.ok()) return r.status();
    return (t1 - t0).count();
  };
  for (std::uint32_t i = 0; i < kWarmupHops; ++i) {
    if (auto r = hop(); !r.ok()) return r.status();
    if (auto r = (*echo)->round_trip(); !r.ok()) return r.status();
    if (auto r = worker_handoff(**pool); !r.ok()) return r.status();
  }
  auto before = (*session)->counters();
  if (!before.ok()) return before.status();
  for (std::uint32_t done = 0; done < hops;) {
    const std::uint32_t block = std::min(kBlock, hops - done);
    for (std::uint32_t i = 0; i < block; ++i) {
      auto ns = hop();
      if (!ns.ok()) return ns.status();
      out->hops.push_back(static_cast<double>(*ns));
    }
    for (std::uint32_t i = 0; i < block; ++i) {
      auto ns = (*echo)->round_trip();
      if (!ns.ok()) return ns.status();
      out->udp.push_back(static_cast<double>(*ns));
    }
    for (std::uint32_t i = 0; i < block; ++i) {
      auto ns = worker_handoff(**pool);
      if (!ns.ok()) return ns.status();
      out->handoffs.push_back(static_cast<double>(*ns));
    }
    done += block;
  }
  auto after = (*session)->counters();
  if (!after.ok()) return after.status();
  auto grew = [&](const char* name) {
    return static_cast<double>((*after)[name] - (*before)[name]);
  };
  out->timed_hops += hops;
  out->datagrams += grew("datagrams_out");
  out->control_messages += grew("control_messages_out");
  out->worker_jobs += grew("worker_jobs");
  // The briefcase travelled with every hop, and the relocation handler ran on each.
  auto stats = append_sync(shell, kStream, "stats");
  if (!stats.ok()) return stats.status();
  auto numbers = parse_sync_numbers(*stats, 2);
  if (!numbers.ok()) return numbers.status();
  if ((*numbers)[1] != kWarmupHops + hops)
    return Status::error(Status::Code::kInternal,
                         "the agent counted " + std::to_string((*numbers)[1]) +
                             " relocations for " + std::to_string(kWarmupHops + hops) + " moves");
  return (*session)->shutdown();
}

}  // namespace

Result<std::vector<BenchResult>> run_move(const BenchOptions& options) {
  register_bench_agent_types();
  const std::uint32_t hops = options.hops > 0 ? options.hops : (options.quick ? 100 : 1000);
  Samples ns;
  for (int round = 0; round < rounds_or_default(options); ++round) {
    if (Status st = measure_round(options, hops, &ns); !st.ok()) return st;
  }
  std::vector<double> move_us;
  std::vector<double> udp_us;
  std::vector<double> handoff_us;
  for (double v : ns.hops) move_us.push_back(v / 1000.0);
  for (double v : ns.udp) udp_us.push_back(v / 1000.0);
  for (double v : ns.handoffs) handoff_us.push_back(v / 1000.0);
  const char* wait = wait_strategy_name(WaitStrategy::kBlock);
  const std::string placement = "unpinned";
  const double mean_hop = mean(move_us);
  return std::vector<BenchResult>{
      {"move", "mean_per_hop", mean_hop, "us", "raw_udp_rtt_mean", mean(udp_us), wait, placement},
      {"move", "p99_per_hop", percentile(move_us, 0.99), "us", "raw_udp_rtt_p99",
       percentile(udp_us, 0.99), wait, placement},
      {"move", "p50_per_hop", percentile(move_us, 0.50), "us", "raw_udp_rtt_p50",
       percentile(udp_us, 0.50), wait, placement},
      // Not measured here: the paper's figure, for scale (like memory's "target").
      {"move", "mean_per_hop", mean_hop, "us", "paper_agni_1998", kPaperMeanUs, wait, placement},
      {"move", "datagrams_per_hop", ns.datagrams / ns.timed_hops, "datagrams", "least_a_move_needs",
       kLeastControlMessages, wait, placement},
      {"move", "control_messages_per_hop", ns.control_messages / ns.timed_hops, "messages",
       "least_a_move_needs", kLeastControlMessages, wait, placement},
      {"move", "worker_handoffs_per_hop", ns.worker_jobs / ns.timed_hops, "handoffs",
       "least_this_agent_needs", kLeastWorkerHandoffs, wait, placement},
      {"move", "worker_handoff_round_trip", mean(handoff_us), "us", "raw_udp_rtt_mean",
       mean(udp_us), wait, placement},
  };
}

}  // namespace mstream::bench
