// Output of `mstream bench`: the JSON lines of the contract, the readable table, the machine
// facts, and the dispatch by name.
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "bench/bench.hpp"

namespace mstream::bench {

const char* wait_strategy_name(WaitStrategy w) {
  return w == WaitStrategy::kSpin ? "spin" : "block";
}

const std::vector<std::string>& benchmark_names() {
  static const std::vector<std::string> names = {
      "pingpong",        "throughput", "loss",     "memory",  "move",
      "moving-pipeline", "append-tcl", "failover", "durable", "churn"};
  return names;
}

Result<std::vector<BenchResult>> run_benchmark(const std::string& name,
                                               const BenchOptions& options) {
  Result<std::vector<BenchResult>> results =
      Status::error(Status::Code::kNotFound, "no such benchmark \"" + name + "\"");
  if (name == "pingpong") results = run_pingpong(options);
  if (name == "throughput") results = run_throughput(options);
  if (name == "loss") results = run_loss(options);
  if (name == "memory") results = run_memory(options);
  if (name == "move") results = run_move(options);
  if (name == "moving-pipeline") results = run_moving_pipeline(options);
  if (name == "append-tcl") results = run_append_tcl(options);
  if (name == "failover") results = run_failover(options);
  if (name == "durable") results = run_durable(options);
  if (name == "churn") results = run_churn(options);
  if (!results.ok()) return results;
  // A value of 0 can be a true result (no goodput at all); a baseline of 0 leaves the ratio
  // meaningless, so it is a failed run, not a number to print.
  for (const auto& r : *results) {
    if (!(r.baseline_value > 0)) {
      return Status::error(Status::Code::kInternal,
                           r.metric + ": the baseline measured nothing (" + r.baseline + ")");
    }
  }
  return results;
}

namespace {

void append_json_string(std::string* out, const std::string& s) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      *out += buf;
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

// JSON has no NaN or infinity; a failed measurement is reported as an error before it gets
// here, so this only guards the format.
void append_json_number(std::string* out, double v) {
  if (!std::isfinite(v)) {
    *out += "null";
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  *out += buf;
}

void field(std::string* out, const char* name, const std::string& v, bool first = false) {
  if (!first) out->push_back(',');
  append_json_string(out, name);
  out->push_back(':');
  append_json_string(out, v);
}

void field(std::string* out, const char* name, double v) {
  out->push_back(',');
  append_json_string(out, name);
  out->push_back(':');
  append_json_number(out, v);
}

std::string format_number(double v) {
  char buf[32];
  if (std::fabs(v) >= 1000) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.4g", v);
  }
  return buf;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

}  // namespace

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  auto mid = values.begin() + static_cast<std::ptrdiff_t>((values.size() - 1) / 2);
  std::nth_element(values.begin(), mid, values.end());
  return *mid;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  const auto k = static_cast<std::ptrdiff_t>(p * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + k, values.end());
  return values[static_cast<std::size_t>(k)];
}

double mean(const std::vector<double>& values) {
  if (values.empty()) return 0;
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

int rounds_or_default(const BenchOptions& options) {
  if (options.rounds > 0) return options.rounds;
  return options.quick ? 1 : 3;
}

std::string to_json_line(const BenchResult& r) {
  std::string out = "{";
  field(&out, "bench", r.bench, true);
  field(&out, "metric", r.metric);
  field(&out, "value", r.value);
  field(&out, "unit", r.unit);
  field(&out, "baseline", r.baseline);
  field(&out, "baseline_value", r.baseline_value);
  field(&out, "ratio", r.ratio());
  field(&out, "wait", r.wait);
  field(&out, "placement", r.placement);
  out.push_back('}');
  return out;
}

std::string to_table(const std::vector<BenchResult>& results) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof(line), "%-15s %-28s %12s %-7s %-28s %12s %7s  %-5s %s\n", "bench",
                "metric", "value", "unit", "baseline", "baseline", "ratio", "wait", "placement");
  out << line;
  for (const auto& r : results) {
    std::snprintf(line, sizeof(line), "%-15s %-28s %12s %-7s %-28s %12s %7.3f  %-5s %s\n",
                  r.bench.c_str(), r.metric.c_str(), format_number(r.value).c_str(), r.unit.c_str(),
                  r.baseline.c_str(), format_number(r.baseline_value).c_str(), r.ratio(),
                  r.wait.c_str(), r.placement.c_str());
    out << line;
  }
  return out.str();
}

std::string summary_of(const std::string& bench, const std::vector<BenchResult>& results) {
  if (bench == "moving-pipeline") return moving_pipeline_table(results);
  if (bench == "failover") return failover_summary(results);
  if (bench == "durable") return durable_summary(results);
  if (bench == "churn") return churn_summary(results);
  return {};
}

std::string machine_facts() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int allowed = 0;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) allowed = CPU_COUNT(&set);
  utsname u{};
  uname(&u);
  std::ostringstream out;
  out << "machine: " << sysconf(_SC_NPROCESSORS_ONLN) << " cores online, " << allowed
      << " allowed; " << cpu_model() << "; " << u.sysname << " " << u.release;
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "; load average %.2f %.2f %.2f", load[0], load[1], load[2]);
    out << buf;
    // Anything else running competes with the benchmark's processes for the cores.
    if (load[0] > 0.5) out << " (other work is running: expect noisy numbers)";
  }
  return out.str();
}

}  // namespace mstream::bench
