// pingpong: the round trip of a 64-byte message between two processes through the core
// (append at A, B's handler consumes it and appends a reply, A's handler consumes the reply),
// against a raw UDP ping-pong of the same size between the same two cores, waiting the same
// way. Consumption acknowledgements flow as they always do; the benchmark measures
// message-to-reply latency, which includes whatever the acks cost the hot path.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "bench/bench.hpp"
#include "bench/peer.hpp"
#include "bench/process.hpp"
#include "bench/raw_udp.hpp"
#include "mstream/endpoint.hpp"

namespace mstream::bench {
namespace {

constexpr std::size_t kPayloadBytes = 64;
constexpr std::uint8_t kPing = 1;
constexpr std::uint8_t kStop = 0xff;      // first payload byte: tells the echoing child to exit
constexpr std::uint64_t kPingStream = 1;  // at the parent, site 1
constexpr std::uint64_t kEchoStream = 2;  // at the child, site 2
constexpr std::uint32_t kParentSite = 1;
constexpr std::uint32_t kChildSite = 2;
// A reply later than this means something is broken, not slow.
constexpr auto kReplyTimeout = std::chrono::seconds(2);

struct Config {
  WaitStrategy wait = WaitStrategy::kSpin;
  Placement placement;
  double seconds = 1.0;
  std::size_t warmup = 2000;
  std::size_t max_samples = 2'000'000;
  // The child gives up on its own after this, whatever the parent does.
  std::chrono::milliseconds child_deadline{30'000};
};

using Samples = std::vector<std::int64_t>;  // round trips, ns

double percentile_us(Samples& s, double p) {
  if (s.empty()) return 0;
  std::size_t k = static_cast<std::size_t>(p * static_cast<double>(s.size() - 1));
  std::nth_element(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(k), s.end());
  return static_cast<double>(s[k]) / 1000.0;
}

// Runs round_trip(i) -> Result<ns> through a warmup (a count, cut short by time on a slow or
// loaded machine), then records samples for cfg.seconds, and at least kMinSamples of them.
constexpr std::size_t kMinSamples = 100;
constexpr auto kMaxWarmup = std::chrono::milliseconds(200);

template <typename RoundTrip>
Result<Samples> measure_round_trips(const Config& cfg, RoundTrip&& round_trip) {
  std::uint64_t i = 0;
  const auto warm_end = Clock::now() + kMaxWarmup;
  for (; i < cfg.warmup && Clock::now() < warm_end; ++i) {
    auto ns = round_trip(i);
    if (!ns.ok()) return ns.status();
  }
  Samples samples;
  samples.reserve(std::min<std::size_t>(cfg.max_samples, 1 << 20));
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(cfg.seconds));
  for (; samples.size() < cfg.max_samples; ++i) {
    if (samples.size() >= kMinSamples && Clock::now() >= end) break;
    auto ns = round_trip(i);
    if (!ns.ok()) return ns.status();
    samples.push_back(*ns);
  }
  return samples;
}

// --- raw UDP ---------------------------------------------------------------------------

// Receives one datagram within `timeout`, spinning on MSG_DONTWAIT or blocking in the
// kernel (SO_RCVTIMEO bounds each wait). Returns its size, or -1 on timeout or error.
ssize_t udp_receive(int fd, std::uint8_t* buf, std::size_t cap, WaitStrategy wait,
                    Clock::duration timeout) {
  const auto deadline = Clock::now() + timeout;
  const int flags = wait == WaitStrategy::kSpin ? MSG_DONTWAIT : 0;
  for (;;) {
    ssize_t n = recv(fd, buf, cap, flags);
    if (n >= 0) return n;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
    if (Clock::now() >= deadline) return -1;
  }
}

int udp_echo_child(Link& link, WaitStrategy wait, std::chrono::milliseconds child_deadline) {
  auto fd = open_peered_udp_socket(link, std::chrono::milliseconds(200));
  if (!fd.ok()) return 4;
  std::array<std::uint8_t, 2048> buf{};
  const auto deadline = Clock::now() + child_deadline;
  int code = 5;
  while (Clock::now() < deadline) {
    ssize_t n = udp_receive(*fd, buf.data(), buf.size(), wait, std::chrono::milliseconds(200));
    if (n <= 0) continue;
    if (buf[0] == kStop) {
      code = 0;
      break;
    }
    if (send(*fd, buf.data(), static_cast<std::size_t>(n), 0) != n) break;
  }
  close(*fd);
  return code;
}

}  // namespace

Result<std::unique_ptr<RawUdpEcho>> RawUdpEcho::start(WaitStrategy wait, const Placement& placement,
                                                      std::chrono::milliseconds child_deadline) {
  auto child = fork_pinned(placement.child_core, [wait, child_deadline](Link& link) {
    return udp_echo_child(link, wait, child_deadline);
  });
  if (!child.ok()) return child.status();
  std::unique_ptr<RawUdpEcho> echo(new RawUdpEcho(std::move(*child), wait));
  Link link(echo->child_);
  auto fd = open_peered_udp_socket(link, std::chrono::milliseconds(200));
  if (!fd.ok()) return fd.status();
  echo->fd_ = *fd;
  return echo;
}

RawUdpEcho::~RawUdpEcho() {
  if (fd_ >= 0) {
    std::array<std::uint8_t, kPayloadBytes> stop{};
    stop[0] = kStop;
    // Loopback does not drop, but repeat the stop a few times rather than rely on it.
    for (int k = 0; k < 3; ++k) (void)send(fd_, stop.data(), stop.size(), 0);
    close(fd_);
  }
  child_.wait(std::chrono::milliseconds(2000));
}

Result<std::int64_t> RawUdpEcho::round_trip() {
  std::array<std::uint8_t, kPayloadBytes> ping{};
  std::array<std::uint8_t, 2048> reply{};
  ping[0] = kPing;
  const std::uint64_t i = next_++;
  std::memcpy(ping.data() + 8, &i, sizeof(i));  // a stale reply must not count
  const auto t0 = Clock::now();
  if (send(fd_, ping.data(), ping.size(), 0) != static_cast<ssize_t>(ping.size())) {
    return Status::error(Status::Code::kIoError, std::string("send: ") + strerror(errno));
  }
  std::uint64_t echoed = ~i;
  while (echoed != i) {
    ssize_t n = udp_receive(fd_, reply.data(), reply.size(), wait_, kReplyTimeout);
    if (n != static_cast<ssize_t>(kPayloadBytes)) {
      return Status::error(Status::Code::kUnavailable, "raw UDP echo did not answer");
    }
    std::memcpy(&echoed, reply.data() + 8, sizeof(echoed));
  }
  return (Clock::now() - t0).count();
}

namespace {

Result<Samples> udp_pingpong(const Config& cfg) {
  auto echo = RawUdpEcho::start(cfg.wait, cfg.placement, cfg.child_deadline);
  if (!echo.ok()) return echo.status();
  return measure_round_trips(cfg, [&](std::uint64_t) { return (*echo)->round_trip(); });
}

// --- mstream ---------------------------------------------------------------------------

EndpointOptions endpoint_options(std::uint32_t site, WaitStrategy wait) {
  EndpointOptions o;
  o.site_id = site;
  o.busy_poll = wait == WaitStrategy::kSpin;
  return o;
}

int mstream_echo_child(Link& link, const Config& cfg) {
  auto ep = open_peered_endpoint(endpoint_options(kChildSite, cfg.wait), link, kParentSite);
  if (!ep.ok()) return 4;
  Endpoint& e = **ep;
  bool stop = false;
  bool failed = false;
  Status s = e.open_stream(kEchoStream, [&](const Message& m) {
    if (!m.payload.empty() && m.payload[0] == kStop) {
      stop = true;
      return;
    }
    // The reply is appended from inside the handler, as an agent would.
    if (!e.append(kEchoStream, kPingStream, kParentSite, m.payload).ok()) failed = true;
  });
  if (!s.ok()) return 4;
  e.run_until([&] { return stop || failed; }, cfg.child_deadline);
  // Let the consumption ack of the stop message and of the last replies go out.
  e.run_until([&] { return e.idle(); }, std::chrono::milliseconds(500));
  return failed ? 6 : (stop ? 0 : 5);
}

Result<Samples> mstream_pingpong(const Config& cfg) {
  auto child = fork_pinned(cfg.placement.child_core,
                           [&cfg](Link& link) { return mstream_echo_child(link, cfg); });
  if (!child.ok()) return child.status();
  Link link(*child);
  auto ep = open_peered_endpoint(endpoint_options(kParentSite, cfg.wait), link, kChildSite);
  if (!ep.ok()) return ep.status();
  Endpoint& e = **ep;
  bool replied = false;
  Clock::time_point replied_at;
  Status s = e.open_stream(kPingStream, [&](const Message&) {
    replied_at = Clock::now();
    replied = true;
  });
  if (!s.ok()) return s;

  std::array<std::uint8_t, kPayloadBytes> ping{};
  ping[0] = kPing;
  auto samples = measure_round_trips(cfg, [&](std::uint64_t i) -> Result<std::int64_t> {
    replied = false;
    const auto t0 = Clock::now();
    auto seq = e.append(kPingStream, kEchoStream, kChildSite, ping);
    if (!seq.ok()) return seq.status();
    if (!e.run_until([&] { return replied; }, kReplyTimeout)) {
      return Status::error(
          Status::Code::kUnavailable,
          "mstream echo did not reply within 2 s (round trip " + std::to_string(i) + ")");
    }
    return (replied_at - t0).count();
  });
  ping[0] = kStop;
  if (e.append(kPingStream, kEchoStream, kChildSite, ping).ok()) {
    e.run_until([&] { return e.idle(); }, std::chrono::milliseconds(1000));
  }
  int code = child->wait(std::chrono::milliseconds(2000));
  if (!samples.ok()) return samples;
  if (code != 0) {
    return Status::error(Status::Code::kInternal,
                         "mstream echo child exited with " + std::to_string(code));
  }
  return samples;
}

}  // namespace

Result<std::vector<BenchResult>> run_pingpong(const BenchOptions& options) {
  Config cfg;
  cfg.wait = options.wait.value_or(WaitStrategy::kSpin);
  cfg.placement = choose_placement(options.pin);
  cfg.seconds = options.seconds > 0 ? options.seconds : (options.quick ? 0.2 : 0.5);
  if (options.quick) cfg.warmup = 200;
  AffinityGuard affinity;
  if (Status s = affinity.pin(cfg.placement.parent_core); !s.ok()) return s;
  // Rounds alternate baseline and mstream, and samples are pooled, so that background load
  // that comes and goes falls on both alike.
  Samples udp_all;
  Samples ms_all;
  for (int round = 0; round < rounds_or_default(options); ++round) {
    auto udp = udp_pingpong(cfg);
    if (!udp.ok()) return udp.status();
    udp_all.insert(udp_all.end(), udp->begin(), udp->end());
    auto ms = mstream_pingpong(cfg);
    if (!ms.ok()) return ms.status();
    ms_all.insert(ms_all.end(), ms->begin(), ms->end());
  }

  std::vector<BenchResult> out;
  const char* wait = wait_strategy_name(cfg.wait);
  const std::string placement = cfg.placement.describe();
  for (auto [metric, p] : {std::pair{"p50_rtt", 0.50}, std::pair{"p99_rtt", 0.99}}) {
    out.push_back(BenchResult{"pingpong", metric, percentile_us(ms_all, p), "us", "raw_udp",
                              percentile_us(udp_all, p), wait, placement});
  }
  return out;
}

}  // namespace mstream::bench
