// Smoke tests of `mstream bench`: each benchmark runs in its quick form and prints
// well-formed JSON lines with the contract's fields and a positive ratio. The numbers of a
// quick run are noise; only their shape is checked here. Also the link between a benchmark's
// two processes, which every two-process benchmark relies on. The session benchmarks start
// daemons from the mstream binary the build made (MSTREAM_BINARY).
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "bench/bench.hpp"
#include "bench/process.hpp"

namespace mstream::bench {
namespace {

// The contract's fields, in order, then the two descriptive ones. Numbers as JSON allows.
const std::regex& json_line_pattern() {
  static const std::regex re(
      R"re(^\{"bench":"[a-z_-]+","metric":"[^"]+","value":(-?[0-9.eE+-]+),"unit":"[^"]+",)re"
      R"re("baseline":"[^"]+","baseline_value":(-?[0-9.eE+-]+),"ratio":(-?[0-9.eE+-]+),)re"
      R"re("wait":"(spin|block|)","placement":"[^"]*"\}$)re");
  return re;
}

void expect_well_formed(const std::vector<BenchResult>& results, const std::string& bench) {
  ASSERT_FALSE(results.empty());
  for (const auto& r : results) {
    const std::string line = to_json_line(r);
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, json_line_pattern())) << line;
    EXPECT_EQ(r.bench, bench) << line;
    const double value = std::stod(m[1].str());
    const double baseline = std::stod(m[2].str());
    const double ratio = std::stod(m[3].str());
    EXPECT_GT(value, 0) << line;
    EXPECT_GT(baseline, 0) << line;
    EXPECT_GT(ratio, 0) << line;
    // The printed ratio is value / baseline_value, to the printed precision.
    EXPECT_NEAR(ratio, value / baseline, 1e-4 * ratio) << line;
  }
}

std::set<std::string> metrics_of(const std::vector<BenchResult>& results) {
  std::set<std::string> out;
  for (const auto& r : results) out.insert(r.metric);
  return out;
}

BenchOptions quick() {
  BenchOptions o;
  o.quick = true;
  o.binary = MSTREAM_BINARY;
  return o;
}

TEST(BenchJson, LineHoldsTheContractFieldsInOrder) {
  BenchResult r{"pingpong", "p50_rtt", 30.5, "us", "raw_udp", 20, "spin", "cpu0/cpu1"};
  EXPECT_EQ(to_json_line(r),
            R"({"bench":"pingpong","metric":"p50_rtt","value":30.5,"unit":"us",)"
            R"("baseline":"raw_udp","baseline_value":20,"ratio":1.525,"wait":"spin",)"
            R"("placement":"cpu0/cpu1"})");
}

TEST(BenchJson, StringsAreEscaped) {
  BenchResult r{"x", "a\"b\\c", 1, "u", "b", 1, "", ""};
  EXPECT_NE(to_json_line(r).find(R"("metric":"a\"b\\c")"), std::string::npos);
}

TEST(BenchJson, TableNamesEveryMetric) {
  BenchResult r{"memory", "bytes_per_idle_channel", 200, "bytes", "target", 256, "", "x"};
  const std::string table = to_table({r});
  EXPECT_NE(table.find("bytes_per_idle_channel"), std::string::npos);
  EXPECT_NE(table.find("0.781"), std::string::npos);
}

TEST(BenchLink, WordsCrossBothWaysAndTheChildRunsOnItsCore) {
  const Placement placement = choose_placement(true);
  auto child = fork_pinned(placement.child_core, [&placement](Link& to_parent) {
    auto word = to_parent.receive(std::chrono::seconds(5));
    if (!word) return 3;
    if (placement.pinned() && sched_getcpu() != placement.child_core) return 4;
    return to_parent.send(*word + 1) ? 0 : 5;
  });
  ASSERT_TRUE(child.ok()) << child.status().to_string();
  Link link(*child);
  const std::uint64_t big = 0xfedcba9876543210ull;
  ASSERT_TRUE(link.send(big));
  EXPECT_EQ(link.receive(std::chrono::seconds(5)), big + 1);
  EXPECT_EQ(child->wait(std::chrono::seconds(5)), 0);
}

TEST(BenchLink, ReceiveFromASilentChildIsBoundedAndTheChildIsReaped) {
  auto child = fork_pinned(-1, [](Link&) {
    for (;;) pause();
    return 0;
  });
  ASSERT_TRUE(child.ok()) << child.status().to_string();
  Link link(*child);
  EXPECT_EQ(link.try_receive(), std::nullopt);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(link.receive(std::chrono::milliseconds(50)), std::nullopt);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_NE(child->wait(std::chrono::milliseconds(50)), 0);  // killed
}

TEST(Bench, UnknownNameIsNotFound) {
  auto r = run_benchmark("nosuch", quick());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
}

TEST(BenchSmoke, PingpongReportsP50AndP99AgainstRawUdp) {
  auto r = run_benchmark("pingpong", quick());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_well_formed(*r, "pingpong");
  EXPECT_EQ(metrics_of(*r), (std::set<std::string>{"p50_rtt", "p99_rtt"}));
  for (const auto& x : *r) EXPECT_EQ(x.baseline, "raw_udp");
}

TEST(BenchSmoke, ThroughputReportsConsumedPerSecondAgainstZeroMq) {
  auto r = run_benchmark("throughput", quick());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_well_formed(*r, "throughput");
  EXPECT_EQ(metrics_of(*r),
            (std::set<std::string>{"consumed_per_second", "cpu_per_message",
                                   "secured_consumed_per_second", "secured_cpu_per_message",
                                   "secured_portable_consumed_per_second",
                                   "secured_portable_cpu_per_message"}));
  for (const auto& x : *r)
    EXPECT_EQ(x.baseline,
              x.metric.starts_with("secured") ? "mstream_unsecured" : "zeromq_push_pull_tcp");
}

TEST(BenchSmoke, LossReportsEveryClassAndLevelAgainstNoLoss) {
  auto r = run_benchmark("loss", quick());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_well_formed(*r, "loss");
  EXPECT_EQ(r->size(), 6u);
  EXPECT_EQ(metrics_of(*r).count("goodput_selective_repeat_loss_5%"), 1u);
  EXPECT_EQ(metrics_of(*r).count("goodput_go_back_n_loss_10%"), 1u);
}

TEST(BenchSmoke, MemoryReportsChannelPathStreamAndAgentBytes) {
  BenchOptions o = quick();
  o.streams = 50;
  auto r = run_benchmark("memory", o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_well_formed(*r, "memory");
  EXPECT_EQ(metrics_of(*r),
            (std::set<std::string>{"bytes_per_idle_channel", "bytes_per_idle_path_end",
                                   "bytes_per_idle_stream_cpp_agent", "bytes_per_tcl_agent"}));
}

TEST(BenchSmoke, MoveReportsHopTimesAgainstRawUdpRoundTrips) {
  BenchOptions o = quick();
  o.hops = 20;
  auto r = run_benchmark("move", o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_well_formed(*r, "move");
  EXPECT_EQ(metrics_of(*r),
            (std::set<std::string>{"mean_per_hop", "p50_per_hop", "p99_per_hop",
                                   "datagrams_per_hop", "control_messages_per_hop",
                                   "worker_handoffs_per_hop", "worker_handoff_round_trip"}));
  std::set<std::string> baselines;
  std::map<std::string, double> value;
  for (const auto& x : *r) {
    baselines.insert(x.baseline);
    value[x.metric] = x.value;
  }
  EXPECT_EQ(baselines, (std::set<std::string>{"raw_udp_rtt_mean", "raw_udp_rtt_p50",
                                              "raw_udp_rtt_p99", "paper_agni_1998",
                                              "least_a_move_needs", "least_this_agent_needs"}));
  // Counted over the whole session: a hop takes the request, the order, the stream, the
  // target's word and its answer, and runs the agent's relocation handler on a worker.
  // Messages to one site in one step share a datagram (the target's Location and answer to
  // the requester), and acknowledgements ride on them: fewer datagrams than messages, but
  // never fewer than the five sends a move is made of.
  EXPECT_GE(value["control_messages_per_hop"], 5.0);
  EXPECT_GE(value["datagrams_per_hop"], 5.0);
  EXPECT_GE(value["worker_handoffs_per_hop"], 1.0);
  EXPECT_GT(value["worker_handoff_round_trip"], 0.0);
}

TEST(BenchSmoke, MovingPipelineReportsEveryKAndLossAgainstNoMoves) {
  BenchOptions o = quick();
  o.messages = 10;
  auto r = run_benchmark("moving-pipeline", o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_well_formed(*r, "moving-pipeline");
  EXPECT_EQ(r->size(), 12u);  // K = 1, 10, 100, 1000 at 0%, 5%, 10% loss
  EXPECT_EQ(metrics_of(*r).count("consume_time_k1_drop_0%"), 1u);
  EXPECT_EQ(metrics_of(*r).count("consume_time_k1000_drop_10%"), 1u);
  for (const auto& x : *r) EXPECT_EQ(x.baseline.rfind("no_moves_", 0), 0u) << x.baseline;
  const std::string table = summary_of("moving-pipeline", *r);
  EXPECT_NE(table.find("drop 10%"), std::string::npos) << table;
  EXPECT_NE(table.find("1000"), std::string::npos) << table;
}

TEST(BenchSmoke, AppendTclReportsHandlersAgainstBareProcAndCppAgent) {
  BenchOptions o = quick();
  o.messages = 500;
  auto r = run_benchmark("append-tcl", o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_well_formed(*r, "append-tcl");
  EXPECT_EQ(metrics_of(*r),
            (std::set<std::string>{"tcl_handlers_per_second", "time_per_tcl_handler"}));
  std::set<std::string> baselines;
  for (const auto& x : *r) baselines.insert(x.baseline);
  EXPECT_EQ(baselines,
            (std::set<std::string>{"cpp_agent_handlers_per_second", "bare_tcl_proc_call"}));
}

TEST(BenchSmoke, FailoverReportsHandlerDelayAgainstTheFailureTimeout) {
  auto r = run_benchmark("failover", quick());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_well_formed(*r, "failover");
  EXPECT_EQ(metrics_of(*r), (std::set<std::string>{"failover_ms", "failover_ms_min",
                                                   "failover_ms_max", "first_answer_ms"}));
  for (const auto& x : *r) {
    EXPECT_EQ(x.baseline, "failure_timeout");
    EXPECT_EQ(x.unit, "ms");
  }
  const std::string summary = summary_of("failover", *r);
  EXPECT_NE(summary.find("target <= failure timeout + 100 ms"), std::string::npos) << summary;
}

TEST(BenchSmoke, DurableReportsThroughputAndLatencyAgainstANonDurableStream) {
  auto r = run_benchmark("durable", quick());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_well_formed(*r, "durable");
  EXPECT_EQ(metrics_of(*r),
            (std::set<std::string>{"durable_msgs_per_s", "durable_sync_append_us"}));
  std::set<std::string> baselines;
  for (const auto& x : *r) baselines.insert(x.baseline);
  EXPECT_EQ(baselines,
            (std::set<std::string>{"non_durable_msgs_per_s", "non_durable_sync_append_us"}));
  EXPECT_NE(summary_of("durable", *r).find("target throughput >= 0.5"), std::string::npos);
}

TEST(BenchSmoke, ChurnReportsGrowthPerChurnedStreamAgainstAnIdleStream) {
  auto r = run_benchmark("churn", quick());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_well_formed(*r, "churn");
  EXPECT_EQ(metrics_of(*r), (std::set<std::string>{"growth_per_churned_stream"}));
  EXPECT_EQ(r->front().baseline, "one_idle_stream");
  EXPECT_GT(r->front().baseline_value, 0);
  EXPECT_NE(summary_of("churn", *r).find("target growth per churned stream <= 0.05"),
            std::string::npos);
}

TEST(BenchSmoke, SessionBenchmarkWithoutADaemonBinaryFailsCleanly) {
  BenchOptions o = quick();
  o.binary = "/nonexistent/mstream";
  o.hops = 5;
  auto r = run_benchmark("move", o);
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace mstream::bench
