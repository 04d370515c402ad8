// churn: what a session keeps of the streams and shells that are gone (doc/session.md, "What
// is forgotten"). A leader with a durable state (`--state`) and three sites; shells one after
// another, each churning `per_shell` streams: create (at sites in turn, with a Tcl agent that
// counts in its briefcase), three appends and a -sync one, a move to the next site, destroy.
//
// Method: a warm-up churn first fills every horizon (the last destroyed streams a site keeps,
// the pins of destroyed senders, two emptied sandboxes per site) and every table to its
// working size. Then the measured churn, sampled `kSamples` times: at each sample the shell
// waits for quiescence, every daemon gives its free heap pages back (SIGUSR1: malloc_trim),
// and the sample is the four daemons' anonymous resident memory (RssAnon: heap and private
// pages) plus the size of the leader's state files. The growth per churned stream is the
// least-squares slope of the samples against the streams churned: the noise of one sample
// (an allocator's arena, SQLite's write-ahead log) does not decide it.
//
// Baseline, in the same run and the same processes: what one live idle stream costs the four
// of them (with the same agent, its directory records everywhere and its leader record
// stored), measured as the same sum over `idle` streams created after the churn. Target:
// growth per churned stream <= 0.05 of it.
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench.hpp"
#include "bench/session.hpp"
#include "site/shell_api.hpp"

namespace mstream::bench {
namespace {

using namespace std::chrono_literals;

constexpr double kTarget = 0.05;
constexpr int kSamples = 8;
constexpr std::uint32_t kSites = 3;
constexpr auto kQuiescentTimeout = std::chrono::seconds(60);
const char* const kAgent = "set n 0\nbriefcase n\non_stream_append {incr n}\n";

Status churn_one(site::ShellApi& shell, std::uint64_t i) {
  const std::string name = "/bench/churn/" + std::to_string(i);
  tcl::CreateOptions at;
  at.site = static_cast<tcl::SiteNumber>(1 + i % kSites);
  if (auto r = shell.stream_create(name, at); !r.ok()) return r.status();
  if (auto r = shell.register_agent(name, "", kAgent, "", false); !r.ok()) return r.status();
  for (int k = 0; k < 3; ++k)
    if (auto r = shell.stream_append(name, "m", false); !r.ok()) return r.status();
  if (auto r = append_sync(shell, name, "last"); !r.ok()) return r.status();
  if (auto r = shell.stream_move(name, static_cast<tcl::SiteNumber>(1 + (i + 1) % kSites)); !r.ok())
    return r.status();
  if (Status st = shell.stream_destroy(name); !st.ok()) return st;
  return Status::ok_status();
}

class Churn {
 public:
  Churn(BenchSession& session, std::string state_dir, std::uint32_t per_shell)
      : session_(session), state_dir_(std::move(state_dir)), per_shell_(per_shell) {}

  // Churns `count` more streams, a new shell every per_shell of them.
  Status run(std::uint64_t count) {
    for (std::uint64_t k = 0; k < count; ++k, ++churned_) {
      if (churned_ > 0 && churned_ % per_shell_ == 0)
        if (Status st = session_.new_shell(); !st.ok()) return st;
      if (Status st = churn_one(session_.shell(), churned_); !st.ok()) return st;
    }
    return Status::ok_status();
  }
  std::uint64_t churned() const { return churned_; }

  // The four daemons' RssAnon plus the leader's state files, once the session is quiescent
  // and every daemon trimmed its heap.
  Result<double> sample() {
    if (Status st = session_.shell().wait_quiescent(kQuiescentTimeout); !st.ok()) return st;
    if (Status st = session_.signal_daemons(SIGUSR1); !st.ok()) return st;
    if (Status st = session_.pump_for(300ms); !st.ok()) return st;
    double bytes = 0;
    for (std::uint32_t site = 0; site <= kSites; ++site) {
      auto rss = anonymous_rss_bytes(session_.site_pid(site));
      if (!rss.ok()) return rss.status();
      bytes += static_cast<double>(*rss);
    }
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(state_dir_, ec))
      if (entry.is_regular_file(ec)) bytes += static_cast<double>(entry.file_size(ec));
    return bytes;
  }

 private:
  BenchSession& session_;
  std::string state_dir_;
  std::uint32_t per_shell_;
  std::uint64_t churned_ = 0;
};

// The least-squares slope of y against x.
double slope(const std::vector<double>& x, const std::vector<double>& y) {
  const double mx = mean(x), my = mean(y);
  double num = 0, den = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    num += (x[i] - mx) * (y[i] - my);
    den += (x[i] - mx) * (x[i] - mx);
  }
  return den > 0 ? num / den : 0;
}

Result<std::vector<BenchResult>> measure(BenchSession& session, const std::string& state_dir,
                                         const BenchOptions& options) {
  const std::uint64_t streams =
      options.streams > 0 ? options.streams : (options.quick ? 400 : 100'000);
  // Past every horizon: each site sees every destroy (4,096 pins, 1,024 stream ends).
  const std::uint64_t warm = options.quick ? 200 : 10'000;
  const std::uint32_t per_shell = options.quick ? 100 : 1'000;
  const std::uint32_t idle = options.quick ? 100 : 2'000;
  Churn churn(session, state_dir, per_shell);
  if (Status st = churn.run(warm); !st.ok()) return st;
  std::vector<double> x, y;
  for (int s = 0; s <= kSamples; ++s) {
    if (s > 0)
      if (Status st = churn.run(streams / kSamples); !st.ok()) return st;
    auto bytes = churn.sample();
    if (!bytes.ok()) return bytes.status();
    x.push_back(static_cast<double>(churn.churned()));
    y.push_back(*bytes);
  }
  const double per_churned = slope(x, y);

  // The baseline: idle streams with the same agent, spread over the sites, kept.
  auto before = churn.sample();
  if (!before.ok()) return before.status();
  site::ShellApi& shell = session.shell();
  for (std::uint32_t i = 0; i < idle; ++i) {
    const std::string name = "/bench/idle/" + std::to_string(i);
    tcl::CreateOptions at;
    at.site = static_cast<tcl::SiteNumber>(1 + i % kSites);
    if (auto r = shell.stream_create(name, at); !r.ok()) return r.status();
    if (auto r = shell.register_agent(name, "", kAgent, "", false); !r.ok()) return r.status();
    if (auto r = append_sync(shell, name, "m"); !r.ok()) return r.status();
  }
  auto after = churn.sample();
  if (!after.ok()) return after.status();
  const double per_idle = (*after - *before) / idle;
  const std::string where = "4 daemons + leader state";
  return std::vector<BenchResult>{
      {"churn", "growth_per_churned_stream", per_churned, "bytes", "one_idle_stream", per_idle, "",
       where},
  };
}

}  // namespace

Result<std::vector<BenchResult>> run_churn(const BenchOptions& options) {
  std::string dir = (std::filesystem::temp_directory_path() / "mstream-churn-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr)
    return Status::error(Status::Code::kIoError, "churn: could not make a state directory");
  SessionConfig config = session_config(options);
  config.sites = kSites;
  config.leader_args = {"--state", dir};
  Result<std::vector<BenchResult>> out =
      Status::error(Status::Code::kInternal, "churn: no session");
  {
    auto session = BenchSession::start(config);
    if (!session.ok()) {
      out = session.status();
    } else {
      out = measure(**session, dir, options);
      if (Status st = (*session)->shutdown(); !st.ok() && out.ok()) out = st;
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return out;
}

std::string churn_summary(const std::vector<BenchResult>& results) {
  for (const auto& r : results) {
    if (r.metric != "growth_per_churned_stream") continue;
    char line[200];
    std::snprintf(line, sizeof(line),
                  "churn: target growth per churned stream <= %.2f of an idle stream's memory: "
                  "%.4f (%s)\n",
                  kTarget, r.ratio(), r.ratio() <= kTarget ? "met" : "MISSED");
    return line;
  }
  return {};
}

}  // namespace mstream::bench
