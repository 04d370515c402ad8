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
//
// Network: IPv4 UDP, one socket per Endpoint, datagrams moved in batches (recvmmsg/sendmmsg).
// Every site of a session must use the same sender buffer bounds and max_message_bytes
// (a receiver refuses what a sender with its own settings could not send). Bad input from
// the network (DESIGN.md guarantee 7) never reaches a handler and never fails a call: it is
// counted in stats() and reported on stderr at most once a second.

#include <array>
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
  // Largest datagram; 0 picks 1400, or 65000 when every peer is on loopback (judged from the
  // listen address: 127.0.0.0/8 means a loopback session). Otherwise within [512, 65507].
  // Any UDP datagram is received whatever this says, so sites may differ here.
  std::size_t mtu = 0;
  Retransmission retransmission = Retransmission::kSelectiveRepeat;
  // Per channel sender buffer bounds and the largest message (see append()).
  std::uint32_t max_unconsumed_messages = 4096;
  std::size_t max_unconsumed_bytes = 16u << 20;
  std::size_t max_message_bytes = 1u << 20;
  // Drops this fraction of arriving datagrams at random before the core sees them: the loss
  // model of seed 004's experiments, for tests and benchmarks. 0 in production. Within
  // [0, 1); drop_seed seeds its own generator, so the drop decisions repeat run to run.
  double receive_drop_probability = 0.0;
  std::uint64_t drop_seed = 1;
  // Spin on the socket instead of sleeping in the kernel while waiting in poll(): lower
  // latency, one core busy.
  bool busy_poll = false;
  // With secured, every datagram to a peer is sealed under the key of the pair, which both
  // ends derive from traffic_key (doc/security.md), and only sealed datagrams that
  // authenticate under it, each once, are accepted: the rest is counted (forged_in,
  // replayed_in, unsealed_in) and dropped. Every peer must use the same key. The
  // cipher is AEGIS-256 towards peers that open it when this CPU has AES instructions and
  // `aes` is on, else XChaCha20-Poly1305 (portable).
  bool secured = false;
  std::array<std::uint8_t, 32> traffic_key{};
  bool aes = true;
};

// A message handed to a handler. payload is valid only during the call.
// A handler may call append() and open_stream(), but not poll() or run_until() (they fail
// with kInvalidArgument: a nested poll would consume later messages before this one). A
// handler must not throw.
struct Message {
  std::uint64_t from = 0;  // sender stream
  std::uint64_t to = 0;    // receiving stream
  std::uint64_t seq = 0;   // position in the (from, to) pair, from 1
  std::span<const std::uint8_t> payload;
};

// Counters since open(); they only grow.
struct EndpointStats {
  std::uint64_t datagrams_in = 0;           // every datagram the socket received, even if dropped
  std::uint64_t datagrams_out = 0;          // every datagram the kernel accepted for sending
  std::uint64_t dropped_by_loss_model = 0;  // receive_drop_probability
  std::uint64_t malformed_in = 0;           // failed to decode: counted, dropped, logged
  std::uint64_t misaddressed_in = 0;        // a well-formed datagram for another site
  std::uint64_t unknown_site_in = 0;        // from a site not added with add_peer()
  std::uint64_t rejected_frames = 0;        // frames refused: unknown stream, out of window, ...
  std::uint64_t retransmissions = 0;        // datagrams sent again (repeats and probes)
  std::uint64_t messages_consumed = 0;      // by handlers at this endpoint
  std::uint64_t messages_released = 0;      // consumption acks received by local senders
  std::uint64_t forged_in = 0;              // secured: did not authenticate (forged, tampered with)
  std::uint64_t replayed_in = 0;            // secured: authenticated, but seen before
  std::uint64_t unsealed_in = 0;            // secured: not sealed at all
};

class Endpoint {
 public:
  // Binds the socket. Errors: kInvalidArgument (bad address or options), kIoError.
  static Result<std::unique_ptr<Endpoint>> open(const EndpointOptions& options);
  virtual ~Endpoint() = default;

  // "HOST:PORT" actually bound.
  virtual std::string local_address() const = 0;
  virtual std::uint32_t site_id() const = 0;

  // Where site `site` listens; a later call replaces the address. The sites added are the
  // session's members: once there is one, datagrams from any other site are dropped
  // (stats().unknown_site_in). Before the first add_peer() every site is accepted and
  // answered at the address its datagrams come from. A HOST name is resolved here, once.
  // Errors: kInvalidArgument for an unparsable or unresolvable address.
  virtual Status add_peer(std::uint32_t site, std::string_view host_port) = 0;

  // A receiving stream at this endpoint. The handler runs once per message, in per-sender
  // order; its return is the message's consumption, which is what the sender is told.
  using Handler = std::function<void(const Message&)>;
  // Errors: kInvalidArgument (stream 0, empty handler), kAlreadyExists.
  virtual Status open_stream(std::uint64_t stream, Handler handler) = 0;

  // Appends a message from local stream `from` to stream `to` at site `to_site`; returns its
  // sequence number. It is sent from inside poll(). Errors, with nothing accepted:
  // kWouldBlock when the (from, to) buffer is full of unconsumed messages (poll() and retry),
  // kTooLarge, kInvalidArgument, kNotFound (no address for to_site). A stream at this same
  // site (to_site == site_id()) needs no address and is reached without the network.
  // The payload is copied; the caller may reuse it at once.
  virtual Result<std::uint64_t> append(std::uint64_t from, std::uint64_t to, std::uint32_t to_site,
                                       std::span<const std::uint8_t> payload) = 0;

  // Called when the receiver acknowledges consumption of (from, to) messages up to up_to.
  using ReleasedCallback =
      std::function<void(std::uint64_t from, std::uint64_t to, std::uint64_t up_to)>;
  virtual void on_released(ReleasedCallback callback) = 0;

  // Runs the loop once: sends what is queued, waits up to `timeout` for datagrams or a timer,
  // handles what arrived (running handlers), and sends the replies. It returns as soon as
  // one batch of datagrams or a timer was handled, so callers loop. With busy_poll the wait
  // spins instead of sleeping. Errors: kIoError, kInvalidArgument (called from a handler).
  virtual Status poll(std::chrono::nanoseconds timeout) = 0;
  // poll() until done() is true; false if `timeout` passed first or poll() failed. done() is
  // checked before every poll() and at least every 10 ms.
  virtual bool run_until(const std::function<bool()>& done, std::chrono::nanoseconds timeout) = 0;

  // True when every message appended here was consumed and acknowledged, and no datagram of
  // ours awaits its transport receipt.
  virtual bool idle() const = 0;
  virtual EndpointStats stats() const = 0;
};

}  // namespace mstream
