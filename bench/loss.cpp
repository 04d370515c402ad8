// loss: goodput (64-byte messages consumed per second) under random loss injected at the
// receiver, for each retransmission class, against the same class in the same run at 0% loss.
// The loss model is seed 004's: each arriving datagram is dropped independently with the
// given probability before the core sees it.
#include <array>
#include <cstdio>
#include <iterator>

#include "bench/bench.hpp"
#include "bench/process.hpp"
#include "bench/stream_load.hpp"

namespace mstream::bench {
namespace {

constexpr double kLossLevels[] = {0.01, 0.05, 0.10};

struct ClassUnderTest {
  Retransmission retransmission;
  const char* name;
};
constexpr ClassUnderTest kClasses[] = {
    {Retransmission::kSelectiveRepeat, "selective_repeat"},
    {Retransmission::kGoBackN, "go_back_n"},
};

std::string loss_metric(const char* class_name, double loss) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "goodput_%s_loss_%g%%", class_name, loss * 100);
  return buf;
}

}  // namespace

Result<std::vector<BenchResult>> run_loss(const BenchOptions& options) {
  // Quick runs are long enough for a lossy go-back-N run on a loaded machine to deliver
  // something (0.2 s was not, at 10% loss: its first timeouts can take most of it).
  LoadConfig cfg = load_config(options, /*seconds=*/0.6, /*quick_seconds=*/0.5);
  AffinityGuard affinity;
  if (Status s = affinity.pin(cfg.placement.parent_core); !s.ok()) return s;
  // rates[class][level]: level 0 is the 0% baseline. Each round runs every level once, so
  // background load that comes and goes falls on the baseline and the lossy runs alike.
  constexpr std::size_t kLevels = std::size(kLossLevels) + 1;
  std::vector<std::array<std::vector<double>, kLevels>> rates(std::size(kClasses));
  for (int round = 0; round < rounds_or_default(options); ++round) {
    for (std::size_t c = 0; c < std::size(kClasses); ++c) {
      cfg.retransmission = kClasses[c].retransmission;
      for (std::size_t level = 0; level < kLevels; ++level) {
        cfg.receive_drop_probability = level == 0 ? 0 : kLossLevels[level - 1];
        cfg.seed = options.seed + static_cast<std::uint64_t>(round);
        auto r = run_mstream_load(cfg);
        if (!r.ok()) return r.status();
        rates[c][level].push_back(r->messages_per_second);
      }
    }
  }
  std::vector<BenchResult> out;
  for (std::size_t c = 0; c < std::size(kClasses); ++c) {
    const double clean = median(rates[c][0]);
    for (std::size_t level = 1; level < kLevels; ++level) {
      out.push_back(BenchResult{"loss", loss_metric(kClasses[c].name, kLossLevels[level - 1]),
                                median(rates[c][level]), "msgs/s",
                                std::string(kClasses[c].name) + "_loss_0%", clean,
                                wait_strategy_name(cfg.wait), cfg.placement.describe()});
    }
  }
  return out;
}

}  // namespace mstream::bench
