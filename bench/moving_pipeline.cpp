// moving-pipeline: seed 004 §3, figure 5. One sender stream and one receiver stream, both
// moving once every K messages, with messages dropped at the receiving process with a uniform
// probability (the paper's congestion model; the daemons' hidden --drop option). The metric is
// the mean time to consume a message: from the shell's "go" to the receiver's consumption of
// the last of N messages, divided by N. The baseline is the same run without moves: the same
// session, the same N, the same loss, measured just before it.
//
// Placement: a local session of 4 sites. The sender alternates between sites 1 and 2, the
// receiver between sites 3 and 4, so every message crosses the network (messages between
// streams of one site do not), and no move ever lands on the other end's site. Agents are C++
// (bench.pipe_sender / bench.pipe_receiver): the sender appends K messages per handler and then
// relocates itself, the next K go out from its relocation handler at the new site; the
// receiver relocates itself after every K it consumed. The end time is the receiver's own
// CLOCK_MONOTONIC reading at its last consumption (one clock for every process of a machine),
// so the termination detection the shell then waits for is not counted.
//
// N is at least 4 K (so K = 1000 still moves each end 3 or 4 times) and at least `messages`
// (default 400). One session per loss level; the rounds (default 3) repeat every cell, and
// each cell reports its median round.
//
// Loss here is per datagram, as the paper's model drops at the receiver; but a datagram
// carries many messages (on loopback up to 64 KB of them), so a message is lost only with the
// datagram it rode in, and control messages (moves go through the leader) are lost too.
#include <array>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <map>
#include <sstream>

#include "bench/agents.hpp"
#include "bench/bench.hpp"
#include "bench/session.hpp"
#include "runtime/clock.hpp"
#include "site/shell_api.hpp"

namespace mstream::bench {
namespace {

constexpr std::uint32_t kKs[] = {1, 10, 100, 1000};
constexpr double kDrops[] = {0.0, 0.05, 0.10};
const char* const kSender = "bench/pipe/sender";
const char* const kReceiver = "bench/pipe/receiver";
// A run that takes longer than this is stuck, not slow.
constexpr auto kRunTimeout = std::chrono::seconds(120);

std::string percent(double p) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%g%%", p * 100);
  return buf;
}

std::string cell_metric(std::uint32_t k, double drop) {
  return "consume_time_k" + std::to_string(k) + "_drop_" + percent(drop);
}

std::uint32_t messages_for(std::uint32_t k, const BenchOptions& options) {
  const std::uint32_t least = options.messages > 0 ? options.messages : (options.quick ? 20 : 400);
  return std::max(least, (options.quick ? 2 : 4) * k);
}

struct RunStats {
  double ns_per_message = 0;
};

// One run of n messages with moves every k (0: none). REQUIRES: both streams exist, idle.
Result<RunStats> pipeline_run(BenchSession& session, std::uint32_t n, std::uint32_t k) {
  site::ShellApi& shell = session.shell();
  auto reset = append_sync(shell, kReceiver, "reset " + std::to_string(k));
  if (!reset.ok()) return reset.status();
  const proto::Time t0 = runtime::monotonic_now();
  auto go = shell.stream_append(kSender, "go " + std::to_string(n) + " " + std::to_string(k),
                                /*sync=*/false);
  if (!go.ok()) return go.status();
  if (Status st = shell.wait_quiescent(kRunTimeout); !st.ok()) {
    return session.problem().ok() ? st : session.problem();
  }
  auto received = append_sync(shell, kReceiver, "stats");
  if (!received.ok()) return received.status();
  auto r = parse_sync_numbers(*received, 3);  // consumed, last_ns, moves
  if (!r.ok()) return r.status();
  auto sent = append_sync(shell, kSender, "stats");
  if (!sent.ok()) return sent.status();
  auto s = parse_sync_numbers(*sent, 2);  // sent, moves
  if (!s.ok()) return s.status();
  // The run did what it claims: every message consumed once, each end moved as often as K says.
  const std::uint64_t receiver_moves = k == 0 ? 0 : n / k;
  const std::uint64_t sender_moves = k == 0 ? 0 : (n + k - 1) / k - 1;
  if ((*r)[0] != n || (*s)[0] != n || (*r)[2] != receiver_moves || (*s)[1] != sender_moves) {
    return Status::error(Status::Code::kInternal,
                         "pipeline run n=" + std::to_string(n) + " k=" + std::to_string(k) +
                             ": sent " + std::to_string((*s)[0]) + ", consumed " +
                             std::to_string((*r)[0]) + ", moves " + std::to_string((*s)[1]) + "/" +
                             std::to_string((*r)[2]) + ", expected " +
                             std::to_string(sender_moves) + "/" + std::to_string(receiver_moves));
  }
  const double elapsed = static_cast<double>(static_cast<proto::Time>((*r)[1]) - t0);
  return RunStats{elapsed / n};
}

struct Cell {
  std::vector<double> moving_us;
  std::vector<double> still_us;
};

// Every cell of one loss level, in one session.
Status run_level(const BenchOptions& options, double drop, std::size_t level,
                 std::map<std::uint32_t, Cell>* cells) {
  SessionConfig config = session_config(options);
  config.sites = 4;
  if (drop > 0) {
    char p[32];
    std::snprintf(p, sizeof(p), "%g", drop);
    config.daemon_args.insert(config.daemon_args.end(), {"--drop", p});
    config.drop_seed = options.seed * 1000 + level * 100;
  }
  auto session = BenchSession::start(config);
  if (!session.ok()) return session.status();
  site::ShellApi& shell = (*session)->shell();
  tcl::CreateOptions at;
  at.site = 1;
  if (auto r = shell.stream_create(kSender, at); !r.ok()) return r.status();
  at.site = 3;
  if (auto r = shell.stream_create(kReceiver, at); !r.ok()) return r.status();
  if (auto r = shell.register_agent(kReceiver, "3 4", "", std::string(kPipeReceiverAgent), false);
      !r.ok())
    return r.status();
  if (auto r = shell.register_agent(kSender, std::string(kReceiver) + " 1 2", "",
                                    std::string(kPipeSenderAgent), false);
      !r.ok())
    return r.status();
  // Warm-up: both agents visit all their sites, and the paths between them carry traffic.
  if (auto r = pipeline_run(**session, 8, 2); !r.ok()) return r.status();
  for (int round = 0; round < rounds_or_default(options); ++round) {
    for (std::uint32_t k : kKs) {
      const std::uint32_t n = messages_for(k, options);
      auto still = pipeline_run(**session, n, 0);
      if (!still.ok()) return still.status();
      auto moving = pipeline_run(**session, n, k);
      if (!moving.ok()) return moving.status();
      (*cells)[k].still_us.push_back(still->ns_per_message / 1000.0);
      (*cells)[k].moving_us.push_back(moving->ns_per_message / 1000.0);
    }
  }
  return (*session)->shutdown();
}

}  // namespace

Result<std::vector<BenchResult>> run_moving_pipeline(const BenchOptions& options) {
  register_bench_agent_types();
  std::vector<BenchResult> out;
  for (std::size_t level = 0; level < std::size(kDrops); ++level) {
    const double drop = kDrops[level];
    std::map<std::uint32_t, Cell> cells;
    if (Status st = run_level(options, drop, level, &cells); !st.ok()) {
      return Status::error(st.code(), "drop " + percent(drop) + ": " + st.message());
    }
    for (std::uint32_t k : kKs) {
      const Cell& c = cells[k];
      out.push_back(BenchResult{
          "moving-pipeline", cell_metric(k, drop), median(c.moving_us), "us",
          "no_moves_n" + std::to_string(messages_for(k, options)) + "_drop_" + percent(drop),
          median(c.still_us), wait_strategy_name(WaitStrategy::kBlock), "unpinned"});
    }
  }
  return out;
}

std::string moving_pipeline_table(const std::vector<BenchResult>& results) {
  // rows: K; columns: loss; each cell "moving us/msg (ratio to no moves)".
  std::map<std::uint32_t, std::map<long, const BenchResult*>> grid;  // K, drop %
  for (const auto& r : results) {
    unsigned k = 0;
    double drop = 0;
    if (std::sscanf(r.metric.c_str(), "consume_time_k%u_drop_%lf%%", &k, &drop) == 2)
      grid[k][std::lround(drop)] = &r;
  }
  std::ostringstream s;
  s << "moving pipeline (seed 004 figure 5): mean consumption time per message, us, with "
       "moves every K messages (ratio to the same run without moves)\n";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%8s", "K");
  s << buf;
  for (double d : kDrops) {
    std::snprintf(buf, sizeof(buf), " %22s", ("drop " + percent(d)).c_str());
    s << buf;
  }
  s << "\n";
  for (const auto& [k, row] : grid) {
    std::snprintf(buf, sizeof(buf), "%8u", k);
    s << buf;
    for (double d : kDrops) {
      auto it = row.find(std::lround(d * 100));
      if (it == row.end()) {
        std::snprintf(buf, sizeof(buf), " %22s", "-");
      } else {
        std::snprintf(buf, sizeof(buf), " %13.1f (x%6.2f)", it->second->value, it->second->ratio());
      }
      s << buf;
    }
    s << "\n";
  }
  s << "no moves (us/msg):";
  for (const auto& [k, row] : grid) {
    s << " K=" << k << ":";
    for (double d : kDrops) {
      auto it = row.find(std::lround(d * 100));
      if (it != row.end()) {
        std::snprintf(buf, sizeof(buf), " %.1f", it->second->baseline_value);
        s << buf;
      }
    }
  }
  s << "\n";
  return s.str();
}

}  // namespace mstream::bench
