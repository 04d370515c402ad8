#include "bench/stream_load.hpp"

#include <sys/resource.h>

#include <array>

#include "bench/peer.hpp"

namespace mstream::bench {
namespace {

constexpr std::uint32_t kReceiverSite = 1;  // the parent
constexpr std::uint32_t kSenderSite = 2;    // the child
constexpr std::uint64_t kSenderStream = 1;
constexpr std::uint64_t kReceiverStream = 2;
constexpr std::uint64_t kStopWord = 1;
// Appends between two polls while the buffer has room: enough to fill large datagrams, few
// enough that the sender keeps acks flowing.
constexpr int kAppendBatch = 256;
// The child gives up on its own after this, whatever the parent does.
constexpr auto kChildDeadline = std::chrono::seconds(60);

EndpointOptions load_options(const LoadConfig& cfg, std::uint32_t site) {
  EndpointOptions o;
  o.site_id = site;
  o.retransmission = cfg.retransmission;
  o.busy_poll = cfg.wait == WaitStrategy::kSpin;
  o.max_unconsumed_messages = cfg.max_unconsumed_messages;
  o.secured = cfg.secured;
  o.aes = cfg.aes;
  o.traffic_key.fill(0x5A);  // a benchmark's: what it costs, not what it hides
  if (site == kReceiverSite) {
    o.receive_drop_probability = cfg.receive_drop_probability;
    o.drop_seed = cfg.seed;
  }
  return o;
}

// The sending child: appends as fast as the channel's buffer of unconsumed messages allows,
// polling when it is full, until the parent says stop.
int sender_child(Link& link, const LoadConfig& cfg) {
  auto ep = open_peered_endpoint(load_options(cfg, kSenderSite), link, kReceiverSite);
  if (!ep.ok()) return 4;
  Endpoint& e = **ep;
  std::array<std::uint8_t, kLoadPayloadBytes> payload{};
  const auto deadline = Clock::now() + kChildDeadline;
  auto next_check = Clock::now();
  for (std::uint64_t i = 0;;) {
    bool blocked = false;
    for (int k = 0; k < kAppendBatch; ++k, ++i) {
      payload[0] = static_cast<std::uint8_t>(i);
      auto r = e.append(kSenderStream, kReceiverStream, kReceiverSite, payload);
      if (r.ok()) continue;
      if (r.status().code() != Status::Code::kWouldBlock) return 6;
      blocked = true;
      break;
    }
    // When blocked, wait for consumption acks (spinning or sleeping as the endpoint does);
    // otherwise only push out what was appended.
    if (!e.poll(blocked ? std::chrono::nanoseconds(std::chrono::milliseconds(1))
                        : std::chrono::nanoseconds(0))
             .ok()) {
      return 7;
    }
    const auto now = Clock::now();
    if (now >= next_check) {
      if (now >= deadline) return 5;
      if (auto w = link.try_receive(); w && *w == kStopWord) return 0;
      next_check = now + std::chrono::milliseconds(10);
    }
  }
}

}  // namespace

LoadConfig load_config(const BenchOptions& options, double seconds, double quick_seconds) {
  LoadConfig cfg;
  cfg.wait = options.wait.value_or(WaitStrategy::kBlock);
  cfg.placement = choose_placement(options.pin);
  cfg.seconds = options.seconds > 0 ? options.seconds : (options.quick ? quick_seconds : seconds);
  cfg.warmup = options.quick ? 0.05 : 0.2;
  cfg.seed = options.seed;
  return cfg;
}

double CpuMeter::now() {
  auto secs = [](const rusage& u) {
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  };
  rusage self{};
  rusage children{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  return secs(self) + secs(children);
}

Result<LoadResult> run_mstream_load(const LoadConfig& cfg) {
  CpuMeter cpu;
  auto child =
      fork_pinned(cfg.placement.child_core, [&cfg](Link& link) { return sender_child(link, cfg); });
  if (!child.ok()) return child.status();
  Link link(*child);
  auto ep = open_peered_endpoint(load_options(cfg, kReceiverSite), link, kSenderSite);
  if (!ep.ok()) return ep.status();
  Endpoint& e = **ep;
  std::uint64_t consumed = 0;
  Status s = e.open_stream(kReceiverStream, [&consumed](const Message&) { ++consumed; });
  if (!s.ok()) return s;

  auto result = count_consumed(cfg, [&](Clock::time_point until) -> std::int64_t {
    const std::uint64_t before = consumed;
    const auto left = until - Clock::now();
    if (left > Clock::duration::zero()) {
      e.run_until([until] { return Clock::now() >= until; }, left);
    }
    return static_cast<std::int64_t>(consumed - before);
  });
  link.send(kStopWord);
  int code = child->wait(std::chrono::milliseconds(3000));
  if (!result.ok()) return result.status();
  if (code != 0) {
    return Status::error(Status::Code::kInternal,
                         "mstream sender child exited with " + std::to_string(code));
  }
  result->receiver = e.stats();
  result->cpu_ns_per_message =
      cpu.seconds() * 1e9 / static_cast<double>(std::max<std::uint64_t>(1, result->total_consumed));
  return result;
}

}  // namespace mstream::bench
