// mstream::Endpoint on a real UDP socket: the real driver of proto::Transport.
//
// One poll() is one wake-up's worth of work, batched (DESIGN.md, "Wake-ups"):
//   0. send what append() queued;
//   1. drain readable datagrams into Transport::on_datagram;
//   2. fire the core's timers if due;
//   3. run every ready delivery's handler and consume it (ack after consumption: seed 004
//      §2.4, DESIGN.md guarantee 2), then hand releases to the on_released callback;
//   4. drain Transport::poll_transmit and send it all.
// Datagrams that come one at a time move by recvfrom/sendto, streams of them by
// recvmmsg/sendmmsg batches (see drain_receive()). Only the wait between wake-ups differs:
// ppoll() in the kernel, or spinning on non-blocking reads when EndpointOptions::busy_poll
// is set.

#include "mstream/endpoint.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proto/transport.hpp"
#include "runtime/clock.hpp"
#include "runtime/loss_model.hpp"
#include "runtime/rate_limited_log.hpp"
#include "runtime/socket_address.hpp"
#include "runtime/udp_limits.hpp"
#include "runtime/udp_socket.hpp"
#include "wire/datagram.hpp"

namespace mstream {
namespace runtime {
namespace {

using proto::Time;

// run_until() re-checks done() at least this often even when nothing arrives.
constexpr Time kRunSlice = 10 * proto::kMillisecond;

Status invalid(std::string message) {
  return Status::error(Status::Code::kInvalidArgument, std::move(message));
}

Status validate(const EndpointOptions& o) {
  if (o.mtu != 0 && (o.mtu < kMinMtu || o.mtu > kMaxMtu))
    return invalid("mtu must be 0 or within [" + std::to_string(kMinMtu) + ", " +
                   std::to_string(kMaxMtu) + "]");
  if (!(o.receive_drop_probability >= 0.0 && o.receive_drop_probability < 1.0))
    return invalid("receive_drop_probability must be within [0, 1)");
  if (o.max_unconsumed_messages == 0 || o.max_unconsumed_bytes == 0)
    return invalid("sender buffer bounds must be positive");
  if (o.max_message_bytes == 0 || o.max_message_bytes > wire::kMaxMessageBytes)
    return invalid("max_message_bytes must be within [1, " +
                   std::to_string(wire::kMaxMessageBytes) + "]");
  return Status::ok_status();
}

proto::TransportConfig to_transport_config(const EndpointOptions& o, std::size_t mtu) {
  proto::TransportConfig cfg;
  cfg.path.mtu = mtu;
  cfg.path.retransmission = o.retransmission == Retransmission::kGoBackN
                                ? proto::RetransmissionClass::kGoBackN
                                : proto::RetransmissionClass::kSelectiveRepeat;
  cfg.channel.max_unconsumed_messages = o.max_unconsumed_messages;
  cfg.channel.max_unconsumed_bytes = o.max_unconsumed_bytes;
  cfg.channel.max_message_bytes = o.max_message_bytes;
  cfg.aes = o.aes;
  return cfg;
}

class UdpEndpoint final : public Endpoint {
 public:
  UdpEndpoint(const EndpointOptions& options, std::size_t mtu, UdpSocket socket)
      : options_(options),
        socket_(std::move(socket)),
        transport_(options.site_id, to_transport_config(options, mtu)),
        loss_(options.receive_drop_probability, options.drop_seed),
        receive_(mtu > 1500 ? 32 : 64, kReceiveSlotBytes),
        out_(kSendBatch),
        send_batch_(kSendBatch) {
    if (options.secured) transport_.set_master_key(options.traffic_key);
  }

  std::string local_address() const override { return socket_.local_address().to_string(); }
  std::uint32_t site_id() const override { return options_.site_id; }

  Status add_peer(std::uint32_t site, std::string_view host_port) override {
    auto addr = SocketAddress::parse(host_port);
    if (!addr.ok()) return addr.status();
    peers_[site] = Peer{*addr, /*configured=*/true};
    // The peer table is the session's membership: once it has a site, datagrams from sites
    // outside it are dropped before they make any state (a forged source id must not make
    // us keep paths and retransmit towards nobody).
    transport_.admit_site(site);
    return Status::ok_status();
  }

  Status open_stream(std::uint64_t stream, Handler handler) override {
    if (stream == 0) return invalid("stream 0 is not a valid stream");
    if (!handler) return invalid("empty handler");
    if (handlers_.count(stream) != 0)
      return Status::error(Status::Code::kAlreadyExists,
                           "stream " + std::to_string(stream) + " is already open");
    Status st = transport_.open_stream(stream);
    if (!st.ok()) return st;
    handlers_.emplace(stream, std::move(handler));
    return Status::ok_status();
  }

  Result<std::uint64_t> append(std::uint64_t from, std::uint64_t to, std::uint32_t to_site,
                               std::span<const std::uint8_t> payload) override {
    // A stream at this same site is reached without the network (the core delivers it).
    if (to_site != options_.site_id && peers_.find(to_site) == peers_.end())
      return Status::error(Status::Code::kNotFound,
                           "no address for site " + std::to_string(to_site) + " (add_peer)");
    auto seq = transport_.append(from, to, to_site, payload, monotonic_now());
    if (!seq.ok()) return seq.status();
    return *seq;
  }

  void on_released(ReleasedCallback callback) override { on_released_ = std::move(callback); }

  Status poll(std::chrono::nanoseconds timeout) override;
  bool run_until(const std::function<bool()>& done, std::chrono::nanoseconds timeout) override;

  bool idle() const override { return transport_.idle() && !has_backlog(); }
  EndpointStats stats() const override;

 private:
  struct Peer {
    SocketAddress address;
    // Given by add_peer(); otherwise learned from the peer's own datagrams, and replaced if
    // that site shows up at another address (it restarted, or moved networks).
    bool configured = false;
  };

  bool has_backlog() const { return out_begin_ < out_end_; }
  Result<std::size_t> drain_receive(Time now);
  void on_datagram(std::size_t i, Time now);
  void learn_peer(proto::SiteId site, const sockaddr_in& from);
  Status process(Time now);
  void run_deliveries(Time now);
  void drain_events(Time now);
  Status flush_transmit(Time now);
  Status send_backlog();

  EndpointOptions options_;
  UdpSocket socket_;
  proto::Transport transport_;
  LossModel loss_;
  ReceiveBatch receive_;
  std::unordered_map<proto::SiteId, Peer> peers_;
  // Node-based: a handler may open streams while it runs without invalidating itself.
  std::unordered_map<proto::StreamId, Handler> handlers_;
  ReleasedCallback on_released_;
  bool in_poll_ = false;
  bool one_at_a_time_ = true;  // see drain_receive()
  bool last_read_found_ = false;

  // Datagrams taken from the core and not yet accepted by the kernel: out_[out_begin_,
  // out_end_). Their byte buffers are reused, so steady-state sending allocates nothing.
  std::vector<proto::OutDatagram> out_;
  SendBatch send_batch_;
  std::size_t out_begin_ = 0;
  std::size_t out_end_ = 0;

  proto::Delivery delivery_;  // reused across deliveries
  proto::Released released_;
  proto::Rejected rejected_;

  RateLimitedLog network_log_{"dropped a datagram", proto::kSecond};
  RateLimitedLog reject_log_{"a peer rejected a message", proto::kSecond};
  RateLimitedLog internal_log_{"internal error", proto::kSecond};

  std::uint64_t datagrams_in_ = 0;
  std::uint64_t datagrams_out_ = 0;
  std::uint64_t dropped_by_loss_model_ = 0;
  std::uint64_t truncated_in_ = 0;
  std::uint64_t send_errors_ = 0;
  std::uint64_t unroutable_out_ = 0;
  std::uint64_t messages_consumed_ = 0;
};

Status UdpEndpoint::poll(std::chrono::nanoseconds timeout) {
  // A handler polling again would consume later messages before its own returned, breaking
  // both the atomic-handler rule and the core's in-order consume().
  if (in_poll_) return invalid("poll() or run_until() called from inside a handler");
  in_poll_ = true;
  struct Reset {
    bool* flag;
    ~Reset() { *flag = false; }
  } reset{&in_poll_};

  Time now = monotonic_now();
  const Time deadline = deadline_after(now, timeout);
  // What append() queued goes out before anything else: a request sent one receive syscall
  // earlier is answered one syscall earlier.
  if (Status st = flush_transmit(now); !st.ok()) return st;
  bool first = true;
  for (;;) {
    auto received = drain_receive(now);
    if (!received.ok()) return received.status();
    const bool timer_due = now >= transport_.next_timeout();
    const bool woke = *received > 0 || timer_due;
    // The first pass also sends what append() queued since the last poll. Replies and
    // acknowledgements go at once, not at the next poll(): a caller that stops polling once
    // its own work is done must not leave the peer waiting (tried deferring them to ride
    // with the next append: no measurable gain in the ping-pong benchmark).
    if (woke || first) {
      Status st = process(now);
      if (!st.ok()) return st;
    }
    if (woke || now >= deadline) return Status::ok_status();
    first = false;
    if (!options_.busy_poll) {
      const Time wake = std::min(deadline, transport_.next_timeout());
      Status st = socket_.wait(has_backlog(), wake - now);
      if (!st.ok()) return st;
    }
    now = monotonic_now();
    if (has_backlog()) {
      Status st = flush_transmit(now);
      if (!st.ok()) return st;
    }
  }
}

bool UdpEndpoint::run_until(const std::function<bool()>& done, std::chrono::nanoseconds timeout) {
  const Time deadline = deadline_after(monotonic_now(), timeout);
  for (;;) {
    if (done()) return true;
    const Time now = monotonic_now();
    if (now >= deadline) return false;
    if (!poll(std::chrono::nanoseconds(std::min(deadline - now, kRunSlice))).ok()) return false;
  }
}

Result<std::size_t> UdpEndpoint::drain_receive(Time now) {
  // Datagrams that come one at a time (request/reply) are read with recvfrom, a stream of
  // them with recvmmsg batches; which one is guessed from the last reads: two reads in a row
  // that each found a datagram switch to batches, a batch of at most one switches back.
  std::size_t total = 0;
  for (std::size_t round = 0; round < kMaxReceiveRounds; ++round) {
    const std::size_t want = one_at_a_time_ ? 1 : receive_.capacity();
    auto n = socket_.receive(&receive_, want);
    if (!n.ok()) return n.status();
    for (std::size_t i = 0; i < *n; ++i) on_datagram(i, now);
    total += *n;
    if (one_at_a_time_) {
      if (*n == 1 && last_read_found_) one_at_a_time_ = false;
      last_read_found_ = *n == 1;
      break;  // the next poll reads on; a lone reply is handled without a wasted read
    }
    if (*n <= 1) {
      one_at_a_time_ = true;
      last_read_found_ = *n == 1;
      break;
    }
    if (*n < want) break;
  }
  return total;
}

void UdpEndpoint::on_datagram(std::size_t i, Time now) {
  ++datagrams_in_;
  if (receive_.truncated(i)) {
    ++truncated_in_;
    network_log_.note("larger than a UDP datagram can be (truncated)", now);
    return;
  }
  if (loss_.drop()) {
    ++dropped_by_loss_model_;
    return;
  }
  const wire::ByteView bytes = receive_.bytes(i);
  Status st = transport_.on_datagram(bytes, now);
  if (!st.ok()) {
    network_log_.note(st.to_string(), now);
    return;
  }
  learn_peer(transport_.last_source(), receive_.source(i));
}

void UdpEndpoint::learn_peer(proto::SiteId site, const sockaddr_in& from) {
  auto it = peers_.find(site);
  if (it == peers_.end()) {
    peers_.emplace(site, Peer{SocketAddress(from), /*configured=*/false});
  } else if (!it->second.configured) {
    it->second.address = SocketAddress(from);
  }
}

Status UdpEndpoint::process(Time now) {
  if (now >= transport_.next_timeout()) transport_.on_timeout(now);
  run_deliveries(now);
  drain_events(now);
  return flush_transmit(now);
}

void UdpEndpoint::run_deliveries(Time now) {
  while (transport_.poll_delivery(&delivery_)) {
    auto it = handlers_.find(delivery_.key.to);
    if (it != handlers_.end()) {
      const Message message{delivery_.key.from, delivery_.key.to, delivery_.seq,
                            std::span<const std::uint8_t>(delivery_.payload)};
      it->second(message);
    }
    // The handler returned: that is the consumption the sender waits for.
    Status st = transport_.consume(delivery_.key, delivery_.seq, now);
    if (!st.ok()) {
      internal_log_.note("consume: " + st.to_string(), now);
      continue;
    }
    ++messages_consumed_;
  }
}

void UdpEndpoint::drain_events(Time now) {
  while (transport_.poll_released(&released_)) {
    if (on_released_) on_released_(released_.key.from, released_.key.to, released_.up_to);
  }
  // The message stays buffered at the sender (it is re-sent if its receiver relocates); an
  // Endpoint has no relocation, so all there is to do is to say so.
  while (transport_.poll_rejected(&rejected_)) {
    reject_log_.note("stream " + std::to_string(rejected_.key.to) + " is not at site " +
                         std::to_string(rejected_.site),
                     now);
  }
}

Status UdpEndpoint::send_backlog() {
  const std::uint64_t errors_before = send_errors_;
  auto done = socket_.send(send_batch_, out_begin_, out_end_ - out_begin_, &send_errors_);
  if (!done.ok()) return done.status();
  datagrams_out_ += *done - (send_errors_ - errors_before);
  out_begin_ += *done;
  return Status::ok_status();
}

Status UdpEndpoint::flush_transmit(Time now) {
  for (;;) {
    if (has_backlog()) {
      Status st = send_backlog();
      if (!st.ok() || has_backlog()) return st;  // the kernel buffer is full: wait for POLLOUT
    }
    std::size_t n = 0;
    bool core_drained = false;
    while (n < kSendBatch) {
      if (!transport_.poll_transmit(now, &out_[n])) {
        core_drained = true;
        break;
      }
      auto it = peers_.find(out_[n].to);
      if (it == peers_.end()) {
        // A reply to a site we never heard from at an address; the core repeats it later.
        ++unroutable_out_;
        continue;
      }
      send_batch_.set(n, out_[n].bytes, it->second.address);
      ++n;
    }
    out_begin_ = 0;
    out_end_ = n;
    if (n == 0) return Status::ok_status();
    Status st = send_backlog();
    if (!st.ok() || has_backlog() || core_drained) return st;
  }
}

EndpointStats UdpEndpoint::stats() const {
  const proto::TransportStats& t = transport_.stats();
  EndpointStats s;
  s.datagrams_in = datagrams_in_;
  s.datagrams_out = datagrams_out_;
  s.dropped_by_loss_model = dropped_by_loss_model_;
  s.malformed_in = t.malformed_in + truncated_in_;
  s.misaddressed_in = t.misaddressed_in;
  s.unknown_site_in = t.unknown_site_in;
  s.rejected_frames = t.rejected_frames;
  s.retransmissions = t.retransmissions;
  s.messages_consumed = messages_consumed_;
  s.messages_released = t.messages_released;
  s.forged_in = t.forged_in;
  s.replayed_in = t.replayed_in;
  s.unsealed_in = t.unsealed_in;
  return s;
}

}  // namespace
}  // namespace runtime

Result<std::unique_ptr<Endpoint>> Endpoint::open(const EndpointOptions& options) {
  Status st = runtime::validate(options);
  if (!st.ok()) return st;
  auto address = runtime::SocketAddress::parse(options.listen);
  if (!address.ok()) return address.status();
  const std::size_t mtu = options.mtu != 0         ? options.mtu
                          : address->is_loopback() ? runtime::kLoopbackMtu
                                                   : runtime::kLanMtu;
  auto socket = runtime::UdpSocket::bind(*address, runtime::kSocketBufferBytes);
  if (!socket.ok()) return socket.status();
  return std::unique_ptr<Endpoint>(
      std::make_unique<runtime::UdpEndpoint>(options, mtu, std::move(*socket)));
}

}  // namespace mstream
