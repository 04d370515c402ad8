#pragma once
// A one-way stream of 64-byte messages between two processes, counted where they are
// consumed: the mstream side of the throughput and loss benchmarks. The child sends (one
// sender stream to one receiving stream), the parent receives and counts.

#include <chrono>
#include <cstdint>

#include "bench/bench.hpp"
#include "bench/process.hpp"
#include "mstream/endpoint.hpp"

namespace mstream::bench {

inline constexpr std::size_t kLoadPayloadBytes = 64;

struct LoadConfig {
  WaitStrategy wait = WaitStrategy::kBlock;
  Placement placement;
  // Counting starts `warmup` after the first consumed message and lasts `seconds`.
  double warmup = 0.2;
  double seconds = 1.0;
  Retransmission retransmission = Retransmission::kSelectiveRepeat;
  // Loss injected at the receiver only (EndpointOptions::receive_drop_probability).
  double receive_drop_probability = 0;
  std::uint64_t seed = 1;
  // The sender's bound on unconsumed messages (EndpointOptions); the default is the user's.
  std::uint32_t max_unconsumed_messages = EndpointOptions{}.max_unconsumed_messages;
  // Both ends seal their datagrams (EndpointOptions::secured), under one fixed key.
  bool secured = false;
  bool aes = true;  // secured: AEGIS-256 where the CPU does it (EndpointOptions::aes)
};

struct LoadResult {
  double messages_per_second = 0;  // consumed at the receiver
  std::uint64_t consumed = 0;      // during the counted window
  double seconds = 0;              // the counted window, measured
  // CPU time of both processes (all their threads) over the whole run, per message consumed
  // over the whole run: what a message costs, whatever else the machine is doing.
  double cpu_ns_per_message = 0;
  std::uint64_t total_consumed = 0;  // over the whole run, warmup included
  EndpointStats receiver;            // at the end of the run (mstream only)
};

// The LoadConfig the command's options ask for: block unless told otherwise, the two processes
// placed as options.pin says, and `seconds` counted (options.seconds if given; `quick_seconds`
// in a quick run) after a warmup long enough for the window to settle, loss or not.
LoadConfig load_config(const BenchOptions& options, double seconds, double quick_seconds);

// CPU time used by this process and its reaped children since construction.
class CpuMeter {
 public:
  CpuMeter() : start_(now()) {}
  double seconds() const { return now() - start_; }

 private:
  static double now();
  double start_;
};

// Errors: those of Endpoint::open and of the handshake, kUnavailable when no message arrives
// within a few seconds, kInternal when the sending child fails.
Result<LoadResult> run_mstream_load(const LoadConfig& cfg);

// Counts while `receive_some` runs: a warmup after the first message, then `seconds`. Shared
// by the mstream and ZeroMQ receivers so both count the same window the same way.
// receive_some(deadline) consumes what it can until the deadline and returns how many; it
// returns -1 on an error.
template <typename ReceiveSome>
Result<LoadResult> count_consumed(const LoadConfig& cfg, ReceiveSome&& receive_some) {
  using std::chrono::duration;
  const auto first_deadline = Clock::now() + std::chrono::seconds(5);
  std::int64_t got = 0;
  while (got == 0 && Clock::now() < first_deadline) {
    got = receive_some(std::min(first_deadline, Clock::now() + std::chrono::milliseconds(50)));
    if (got < 0) return Status::error(Status::Code::kIoError, "receive failed");
  }
  if (got == 0) return Status::error(Status::Code::kUnavailable, "no message within 5 s");
  const auto warm_end =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(duration<double>(cfg.warmup));
  std::uint64_t warm = 0;
  while (Clock::now() < warm_end) {
    std::int64_t n = receive_some(warm_end);
    if (n < 0) return Status::error(Status::Code::kIoError, "receive failed");
    warm += static_cast<std::uint64_t>(n);
  }
  LoadResult r;
  r.total_consumed = static_cast<std::uint64_t>(got) + warm;
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(duration<double>(cfg.seconds));
  while (Clock::now() < end) {
    std::int64_t n = receive_some(end);
    if (n < 0) return Status::error(Status::Code::kIoError, "receive failed");
    r.consumed += static_cast<std::uint64_t>(n);
  }
  r.total_consumed += r.consumed;
  r.seconds = seconds_between(t0, Clock::now());
  r.messages_per_second = static_cast<double>(r.consumed) / r.seconds;
  return r;
}

}  // namespace mstream::bench
