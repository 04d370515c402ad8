#pragma once
// mstream::Endpoint: the messaging core of mstream on a real UDP socket, in one process.
// An Endpoint plays one site: it hosts receiving streams whose handlers consume messages,
// and sends from local streams to streams at other sites, with per sender/receiver pair FIFO,
// exactly-once consumption, and acknowledgement only after consumption (DESIGN.md guarantees
// 1 and 2). The site daemon of a full session (leader, moves) is built on the same core.
//
// Thread-safety: none. An Endpoint and everything it calls back run on the one thread that
// calls its methods; handlers run inside poll().
// Lifetime: handlers and callbacks must stay valid while the Endpoint lives.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "mstream/status.hpp"

namespace mstream {

enum class Retransmission { kSelectiveRepeat, kGoBackN };

struct EndpointOptions {
  std::uint32_t site_id = 1;
  // Where to bind, "HOST:PORT"; port 0 picks a free one (see Endpoint::local_address()).
  std::string listen = "127.0.0.1:0";
  // Largest datagram; 0 picks 1400, or 65000 when every peer is on loopback.
  std::size_t mtu = 0;
  Retransmission retransmission = Retransmission::kSelectiveRepeat;
  // Per channel sender buffer bounds and the largest message (see append()).
  std::uint32_t max_unconsumed_messages = 4096;
  std::size_t max_unconsumed_bytes = 16u << 20;
  std::size_t max_message_bytes = 1u << 20;
  // Drops this fraction of arriving datagrams at random before the core sees them: the loss
  // model of seed 004's experiments, for tests and benchmarks. 0 in production.
  double receive_drop_probability = 0.0;
  std::uint64_t drop_seed = 1;
  // Spin on the socket instead of sleeping in the kernel while waiting in poll(): lower
  // latency, one core busy.
  bool busy_poll = false;
};

// A message handed to a handler. payload is valid only during the call.
struct Message {
  std::uint64_t from = 0;  // sender stream
  std::uint64_t to = 0;    // receiving stream
  std::uint64_t seq = 0;   // position in the (from, to) pair, from 1
  std::span<const std::uint8_t> payload;
};

struct EndpointStats {
  std::uint64_t datagrams_in = 0;
  std::uint64_t datagrams_out = 0;
  std::uint64_t dropped_by_loss_model = 0;  // receive_drop_probability
  std::uint64_t malformed_in = 0;           // failed to decode: counted, dropped, logged
  std::uint64_t misaddressed_in = 0;
  std::uint64_t rejected_frames = 0;
  std::uint64_t retransmissions = 0;
  std::uint64_t messages_consumed = 0;  // by handlers at this endpoint
  std::uint64_t messages_released = 0;  // consumption acks received by local senders
};

class Endpoint {
 public:
  // Binds the socket. Errors: kInvalidArgument (bad address or options), kIoError.
  static Result<std::unique_ptr<Endpoint>> open(const EndpointOptions& options);
  virtual ~Endpoint() = default;

  // "HOST:PORT" actually bound.
  virtual std::string local_address() const = 0;
  virtual std::uint32_t site_id() const = 0;

  // Where site `site` listens. Errors: kInvalidArgument for an unparsable address.
  virtual Status add_peer(std::uint32_t site, std::string_view host_port) = 0;

  // A receiving stream at this endpoint. The handler runs once per message, in per-sender
  // order; its return is the message's consumption, which is what the sender is told.
  using Handler = std::function<void(const Message&)>;
  // Errors: kInvalidArgument (stream 0, empty handler), kAlreadyExists.
  virtual Status open_stream(std::uint64_t stream, Handler handler) = 0;

  // Appends a message from local stream `from` to stream `to` at site `to_site`; returns its
  // sequence number. It is sent from inside poll(). Errors, with nothing accepted:
  // kWouldBlock when the (from, to) buffer is full of unconsumed messages (poll() and retry),
  // kTooLarge, kInvalidArgument, kNotFound (no address for to_site).
  virtual Result<std::uint64_t> append(std::uint64_t from, std::uint64_t to,
                                       std::uint32_t to_site,
                                       std::span<const std::uint8_t> payload) = 0;

  // Called when the receiver acknowledges consumption of (from, to) messages up to up_to.
  using ReleasedCallback =
      std::function<void(std::uint64_t from, std::uint64_t to, std::uint64_t up_to)>;
  virtual void on_released(ReleasedCallback callback) = 0;

  // Runs the loop once: sends what is queued, waits up to `timeout` for datagrams or a timer,
  // handles what arrived (running handlers), and sends the replies. Errors: kIoError.
  virtual Status poll(std::chrono::nanoseconds timeout) = 0;
  // poll() until done() is true; false if `timeout` passed first.
  virtual bool run_until(const std::function<bool()>& done, std::chrono::nanoseconds timeout) = 0;

  // True when every message appended here was consumed and acknowledged.
  virtual bool idle() const = 0;
  virtual EndpointStats stats() const = 0;
};

}  // namespace mstream
