#pragma once
// The benchmarks behind `mstream bench NAME [--json]` (DESIGN.md, "The mstream command").
// Each benchmark measures mstream and its baseline in the same run, on the same machine, with
// the same process placement and the same waiting strategy, and returns one BenchResult per
// metric; ratio = value / baseline_value. Nothing here is tuned per machine: every number is
// measured.
//
// Thread-safety: none. A benchmark forks child processes; call it from a single-threaded
// process (the `mstream` command, a test binary before it starts threads). Every child is
// killed and reaped before a benchmark returns, on every path.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mstream/status.hpp"

namespace mstream::bench {

// How a process waits for the next datagram or message. A baseline always uses the same
// strategy as the mstream run it is compared with.
enum class WaitStrategy { kSpin, kBlock };
const char* wait_strategy_name(WaitStrategy w);

struct BenchOptions {
  // A tiny run for tests: well-formed output in about a second per benchmark; the numbers
  // are noisy.
  bool quick = false;
  // Length of each measured run; 0 picks the benchmark's default (about a second).
  double seconds = 0;
  // How many times each run is repeated, mstream and baseline interleaved, so that both see
  // the same background load; 0 picks the default (3, or 1 when quick). Latencies are pooled
  // over the rounds, rates are the median round. failover: its repetitions, each in a fresh
  // session (0: 5, or 2 when quick).
  int rounds = 0;
  // Unset: the benchmark's default (spin for latency, block for throughput and loss).
  std::optional<WaitStrategy> wait;
  // Pin the two processes of a two-process benchmark to different cores.
  bool pin = true;
  // Memory benchmark: how many channels (and sites, divided by 10) to create.
  std::uint32_t channels = 0;
  std::uint64_t seed = 1;

  // The session benchmarks (move, moving-pipeline, append-tcl, memory's streams and agents)
  // start `mstream leader` and `mstream site` processes from this executable; empty: this
  // process's own (right for the mstream command; a test names the binary).
  std::string binary;
  // The session daemons' handler worker threads (mstream site --workers); unset: their default.
  std::optional<std::uint32_t> workers;
  // move: timed hops per round; 0 picks the default (1,000, as in seed 004; 100 when quick).
  std::uint32_t hops = 0;
  // append-tcl: messages per timed run; moving-pipeline: the least number of messages per
  // cell (each cell sends at least 4 K). 0 picks the default.
  std::uint32_t messages = 0;
  // memory: idle streams with a C++ agent to create at one site (Tcl agents: a fifth of it);
  // 0 picks the default (1,000; 100 when quick).
  std::uint32_t streams = 0;
};

// One measured metric, compared with its baseline.
struct BenchResult {
  std::string bench;     // "pingpong"
  std::string metric;    // "p50_rtt"
  double value = 0;      // mstream's number
  std::string unit;      // "us"
  std::string baseline;  // what value is compared with: "raw_udp", "zeromq_push_pull", ...
  double baseline_value = 0;
  // Not part of the contract's ratio; how the run was placed and waited, for the reader.
  std::string wait;       // "spin" or "block" ("" when no process waits, e.g. memory)
  std::string placement;  // "cpu0/cpu1", "unpinned", "in-process"
  double ratio() const { return baseline_value != 0 ? value / baseline_value : 0; }
};

// The benchmark names `mstream bench` accepts, in the order `all` runs them.
const std::vector<std::string>& benchmark_names();

// Runs one benchmark by name. Errors: kNotFound (unknown name), or the failure of a run
// (kUnavailable when a child process did not answer in time, kIoError, ...).
Result<std::vector<BenchResult>> run_benchmark(const std::string& name,
                                               const BenchOptions& options);

Result<std::vector<BenchResult>> run_pingpong(const BenchOptions& options);
Result<std::vector<BenchResult>> run_throughput(const BenchOptions& options);
Result<std::vector<BenchResult>> run_loss(const BenchOptions& options);
Result<std::vector<BenchResult>> run_memory(const BenchOptions& options);
Result<std::vector<BenchResult>> run_move(const BenchOptions& options);
Result<std::vector<BenchResult>> run_moving_pipeline(const BenchOptions& options);
Result<std::vector<BenchResult>> run_append_tcl(const BenchOptions& options);
Result<std::vector<BenchResult>> run_failover(const BenchOptions& options);
Result<std::vector<BenchResult>> run_durable(const BenchOptions& options);
// churn: growth of the daemons' memory and the leader's state per churned stream, against an
// idle stream's (bench/churn.cpp).
Result<std::vector<BenchResult>> run_churn(const BenchOptions& options);
// memory's second half: bytes per idle stream with a C++ agent and per Tcl agent at a site of
// a real session (run_memory calls it).
Result<std::vector<BenchResult>> run_session_memory(const BenchOptions& options);

// A benchmark's own summary of its results, for a reader (e.g. moving-pipeline's table in the
// layout of seed 004's figure 5); empty for most. Printed after the results.
std::string summary_of(const std::string& bench, const std::vector<BenchResult>& results);
std::string moving_pipeline_table(const std::vector<BenchResult>& results);
// failover's: the measured times against the target (failure timeout + 100 ms).
std::string failover_summary(const std::vector<BenchResult>& results);
// durable's: the throughput ratio against the target (0.3).
std::string durable_summary(const std::vector<BenchResult>& results);
// churn's: the ratio against the target (0.05).
std::string churn_summary(const std::vector<BenchResult>& results);

// One line of JSON holding the contract's fields (bench, metric, value, unit, baseline,
// baseline_value, ratio) followed by wait and placement. No trailing newline.
std::string to_json_line(const BenchResult& r);
// A readable table of results, with a header line.
std::string to_table(const std::vector<BenchResult>& results);
// The machine facts that matter for reading the numbers: cores, CPU model, kernel, and the
// load average (other processes on a 2-core machine change every timing).
std::string machine_facts();

// The median of `values` (the lower middle one for an even count); 0 when empty.
double median(std::vector<double> values);
// The p-quantile (0..1) of `values`, nearest rank below; 0 when empty.
double percentile(std::vector<double> values, double p);
double mean(const std::vector<double>& values);
// rounds, or the default for quick and normal runs.
int rounds_or_default(const BenchOptions& options);

}  // namespace mstream::bench
