// throughput: 64-byte messages consumed per second, one sender process to one receiver
// process, against ZeroMQ PUSH/PULL over TCP loopback between the same two cores, waiting the
// same way. ZeroMQ runs with its defaults (one I/O thread per context, high-water mark 1000):
// a baseline is never tuned down, and we do not tune it up past what a user gets either.
// Note that ZeroMQ's I/O thread shares its process's core; mstream's loop is one thread. So
// "spin" for ZeroMQ is a non-blocking loop that yields the core when nothing is ready: a bare
// spin would starve the I/O thread it waits for and measure only that.
#include <sched.h>
#include <zmq.h>

#include <array>
#include <cstring>

#include "bench/bench.hpp"
#include "bench/process.hpp"
#include "bench/stream_load.hpp"

namespace mstream::bench {
namespace {

constexpr std::uint64_t kStopWord = 1;
constexpr auto kChildDeadline = std::chrono::seconds(60);
// How many messages between two looks at the clock and the parent's pipe: a clock read costs
// about as much as a ZeroMQ send, so look only now and then.
constexpr int kCheckEvery = 256;

// A ZeroMQ context and socket that are closed on every path. linger 0: a benchmark that ends
// must not wait for undelivered messages.
class ZmqSocket {
 public:
  explicit ZmqSocket(int type) : ctx_(zmq_ctx_new()) {
    if (ctx_ != nullptr) socket_ = zmq_socket(ctx_, type);
    int linger = 0;
    if (socket_ != nullptr) zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof(linger));
  }
  ~ZmqSocket() {
    if (socket_ != nullptr) zmq_close(socket_);
    if (ctx_ != nullptr) zmq_ctx_term(ctx_);
  }
  ZmqSocket(const ZmqSocket&) = delete;
  ZmqSocket& operator=(const ZmqSocket&) = delete;
  void* get() const { return socket_; }
  bool ok() const { return socket_ != nullptr; }
  void set_timeouts(int ms) {
    zmq_setsockopt(socket_, ZMQ_SNDTIMEO, &ms, sizeof(ms));
    zmq_setsockopt(socket_, ZMQ_RCVTIMEO, &ms, sizeof(ms));
  }

 private:
  void* ctx_ = nullptr;
  void* socket_ = nullptr;
};

Status zmq_error(const char* what) {
  return Status::error(Status::Code::kIoError,
                       std::string(what) + ": " + zmq_strerror(zmq_errno()));
}

// The pushing child. Contexts are made after fork(): ZeroMQ is not fork-safe.
int zmq_sender_child(Link& link, WaitStrategy wait) {
  auto port = link.receive(std::chrono::milliseconds(10'000));
  if (!port || *port == 0) return 4;
  ZmqSocket push(ZMQ_PUSH);
  if (!push.ok()) return 4;
  push.set_timeouts(100);  // bounds each blocking send, so the stop word is seen
  const std::string addr = "tcp://127.0.0.1:" + std::to_string(*port);
  if (zmq_connect(push.get(), addr.c_str()) != 0) return 4;
  std::array<std::uint8_t, kLoadPayloadBytes> payload{};
  const int flags = wait == WaitStrategy::kSpin ? ZMQ_DONTWAIT : 0;
  const auto deadline = Clock::now() + kChildDeadline;
  for (std::uint64_t i = 0;; ++i) {
    payload[0] = static_cast<std::uint8_t>(i);
    bool full = false;
    if (zmq_send(push.get(), payload.data(), payload.size(), flags) < 0) {
      if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) return 6;
      full = true;
      // Spinning: give the I/O thread, which shares this core, its turn.
      if (wait == WaitStrategy::kSpin) sched_yield();
    }
    // A blocked send has already waited up to its timeout: look at once, or a receiver that
    // stopped reading would keep us here for kCheckEvery timeouts.
    if (full || i % kCheckEvery == 0) {
      if (Clock::now() >= deadline) return 5;
      if (auto w = link.try_receive(); w && *w == kStopWord) return 0;
    }
  }
}

Result<LoadResult> run_zmq_load(const LoadConfig& cfg) {
  CpuMeter cpu;
  auto child = fork_pinned(cfg.placement.child_core,
                           [&cfg](Link& link) { return zmq_sender_child(link, cfg.wait); });
  if (!child.ok()) return child.status();
  Link link(*child);
  Result<LoadResult> result = Status::error(Status::Code::kInternal, "not run");
  {
    ZmqSocket pull(ZMQ_PULL);
    if (!pull.ok()) {
      link.send(0);
      return zmq_error("zmq_socket");
    }
    pull.set_timeouts(50);
    if (zmq_bind(pull.get(), "tcp://127.0.0.1:*") != 0) {
      link.send(0);
      return zmq_error("zmq_bind");
    }
    char endpoint[256] = {};
    std::size_t len = sizeof(endpoint);
    zmq_getsockopt(pull.get(), ZMQ_LAST_ENDPOINT, endpoint, &len);
    const char* colon = std::strrchr(endpoint, ':');
    link.send(colon != nullptr ? std::strtoull(colon + 1, nullptr, 10) : 0);

    std::array<std::uint8_t, kLoadPayloadBytes> buf{};
    const int flags = cfg.wait == WaitStrategy::kSpin ? ZMQ_DONTWAIT : 0;
    result = count_consumed(cfg, [&](Clock::time_point until) -> std::int64_t {
      std::int64_t n = 0;
      for (;;) {
        int r = zmq_recv(pull.get(), buf.data(), buf.size(), flags);
        if (r >= 0) {
          ++n;
        } else if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) {
          return -1;
        } else if (cfg.wait == WaitStrategy::kSpin) {
          sched_yield();  // the I/O thread shares this core; spinning must not starve it
        }
        if ((r < 0 || n % kCheckEvery == 0) && Clock::now() >= until) return n;
      }
    });
    link.send(kStopWord);
  }
  int code = child->wait(std::chrono::milliseconds(3000));
  if (!result.ok()) return result.status();
  if (code != 0) {
    return Status::error(Status::Code::kInternal,
                         "ZeroMQ sender child exited with " + std::to_string(code));
  }
  result->cpu_ns_per_message =
      cpu.seconds() * 1e9 / static_cast<double>(std::max<std::uint64_t>(1, result->total_consumed));
  return result;
}

// One secured round; a datagram the receiver could not open fails the run (the numbers would
// be of something else).
Status run_secured(const LoadConfig& cfg, std::vector<double>* rates, std::vector<double>* cpu) {
  auto r = run_mstream_load(cfg);
  if (!r.ok()) return r.status();
  if (r->receiver.forged_in + r->receiver.unsealed_in != 0)
    return Status::error(Status::Code::kInternal, "the secured receiver dropped datagrams");
  rates->push_back(r->messages_per_second);
  cpu->push_back(r->cpu_ns_per_message);
  return Status::ok_status();
}

}  // namespace

Result<std::vector<BenchResult>> run_throughput(const BenchOptions& options) {
  LoadConfig cfg = load_config(options, /*seconds=*/1.0, /*quick_seconds=*/0.3);
  AffinityGuard affinity;
  if (Status s = affinity.pin(cfg.placement.parent_core); !s.ok()) return s;
  // Rounds alternate baseline and mstream; each side reports its median round.
  std::vector<double> zmq_rates;
  std::vector<double> ms_rates;
  std::vector<double> zmq_cpu;
  std::vector<double> ms_cpu;
  std::vector<double> sealed_rates;
  std::vector<double> sealed_cpu;
  std::vector<double> portable_rates;
  std::vector<double> portable_cpu;
  LoadConfig sealed_cfg = cfg;
  sealed_cfg.secured = true;
  LoadConfig portable_cfg = sealed_cfg;
  portable_cfg.aes = false;
  for (int round = 0; round < rounds_or_default(options); ++round) {
    auto zmq = run_zmq_load(cfg);
    if (!zmq.ok()) return zmq.status();
    zmq_rates.push_back(zmq->messages_per_second);
    zmq_cpu.push_back(zmq->cpu_ns_per_message);
    auto ms = run_mstream_load(cfg);
    if (!ms.ok()) return ms.status();
    ms_rates.push_back(ms->messages_per_second);
    ms_cpu.push_back(ms->cpu_ns_per_message);
    if (Status st = run_secured(sealed_cfg, &sealed_rates, &sealed_cpu); !st.ok()) return st;
    if (Status st = run_secured(portable_cfg, &portable_rates, &portable_cpu); !st.ok()) return st;
  }
  const char* wait = wait_strategy_name(cfg.wait);
  const std::string placement = cfg.placement.describe();
  // CPU per message is the contract's throughput seen from the other side: on a machine
  // shared with other work, rates follow the share of the cores each run got, while the CPU a
  // message costs does not. Lower is better (ratio > 1: mstream spends more).
  return std::vector<BenchResult>{
      {"throughput", "consumed_per_second", median(ms_rates), "msgs/s", "zeromq_push_pull_tcp",
       median(zmq_rates), wait, placement},
      {"throughput", "cpu_per_message", median(ms_cpu), "ns", "zeromq_push_pull_tcp",
       median(zmq_cpu), wait, placement},
      // Security on (every datagram sealed, doc/security.md) vs off, the same rounds: the
      // target is >= 0.9. "secured" seals as a session does by default (AEGIS-256 where
      // the CPU does it); "secured_portable" with XChaCha20-Poly1305, as towards a peer
      // without AES.
      {"throughput", "secured_consumed_per_second", median(sealed_rates), "msgs/s",
       "mstream_unsecured", median(ms_rates), wait, placement},
      {"throughput", "secured_cpu_per_message", median(sealed_cpu), "ns", "mstream_unsecured",
       median(ms_cpu), wait, placement},
      {"throughput", "secured_portable_consumed_per_second", median(portable_rates), "msgs/s",
       "mstream_unsecured", median(ms_rates), wait, placement},
      {"throughput", "secured_portable_cpu_per_message", median(portable_cpu), "ns",
       "mstream_unsecured", median(ms_cpu), wait, placement}};
}

}  // namespace mstream::bench
