#include "runtime/node_loop.hpp"

#include <unistd.h>

#include <algorithm>
#include <random>

#include "proto/joiner.hpp"
#include "runtime/clock.hpp"
#include "runtime/udp_limits.hpp"

namespace mstream::runtime {
namespace {
using proto::Time;
constexpr Time kRunSlice = 10 * proto::kMillisecond;
constexpr Time kJoinRepeat = 100 * proto::kMillisecond;
}  // namespace

Result<std::unique_ptr<NodeLoop>> NodeLoop::open(const NodeLoopOptions& options) {
  if (options.receive_drop_probability < 0 || options.receive_drop_probability >= 1)
    return Status::error(Status::Code::kInvalidArgument, "drop probability must be in [0, 1)");
  auto address = SocketAddress::parse(options.listen);
  if (!address.ok()) return address.status();
  auto socket = UdpSocket::bind(*address, kSocketBufferBytes);
  if (!socket.ok()) return socket.status();
  return std::unique_ptr<NodeLoop>(new NodeLoop(options, std::move(*socket)));
}

NodeLoop::NodeLoop(const NodeLoopOptions& options, UdpSocket socket)
    : options_(options),
      socket_(std::move(socket)),
      receive_(kSendBatch, kReceiveSlotBytes),
      send_batch_(kSendBatch),
      out_(kSendBatch),
      loss_(options.receive_drop_probability, options.drop_seed) {}

NodeLoop::~NodeLoop() = default;

std::size_t NodeLoop::mtu() const {
  return socket_.local_address().is_loopback() ? kLoopbackMtu : kLanMtu;
}

void NodeLoop::set_peer(proto::SiteId site, const SocketAddress& address) {
  peers_[site] = address;
}

Result<NodeLoop::Joined> NodeLoop::join(const std::string& leader, wire::JoinMessage::Role role,
                                        std::chrono::nanoseconds timeout,
                                        const std::optional<proto::JoinSecrets>& secrets) {
  auto address = SocketAddress::parse(leader);
  if (!address.ok()) return address.status();
  // A new membership: the ids of an earlier one (a site that left and joins again) name
  // other peers now.
  peers_.clear();
  const std::uint64_t nonce = std::random_device{}() ^
                              (static_cast<std::uint64_t>(::getpid()) << 32) ^
                              static_cast<std::uint64_t>(monotonic_now());
  proto::Joiner joiner(nonce, role, static_cast<std::uint64_t>(::getpid()), secrets);
  const Time deadline = deadline_after(monotonic_now(), timeout);
  Time next_send = 0;
  std::string doubt;  // the leader's last word on a request it could not authenticate
  // Damage that gets past UDP's checksum yet fails the seal is rare; the same answer to
  // three requests in a row is another secret, and waiting out the timeout would only hide it.
  constexpr std::uint32_t kDoubtsToGiveUp = 3;
  for (;;) {
    Time now = monotonic_now();
    if (now >= deadline) {
      if (!doubt.empty())
        return Status::error(Status::Code::kInvalidArgument, "the leader refused: " + doubt);
      return Status::error(Status::Code::kUnavailable, "no answer from a leader at " + leader);
    }
    if (now >= next_send) {
      std::uint64_t dropped = 0;
      send_batch_.set(0, joiner.request(), *address);
      auto sent = socket_.send(send_batch_, 0, 1, &dropped);
      if (!sent.ok()) return sent.status();
      next_send = now + kJoinRepeat;
    }
    Status st = socket_.wait(false, std::min(next_send, deadline) - now);
    if (!st.ok()) return st;
    auto n = socket_.receive(&receive_, receive_.capacity());
    if (!n.ok()) return n.status();
    for (std::size_t i = 0; i < *n; ++i) {
      if (receive_.truncated(i) || !wire::is_join(receive_.bytes(i))) continue;
      const proto::Joiner::Outcome out = joiner.on_reply(receive_.bytes(i));
      switch (out.kind) {
        case proto::Joiner::Outcome::Kind::kNothing:
          break;
        case proto::Joiner::Outcome::Kind::kResend:
          next_send = 0;
          break;
        case proto::Joiner::Outcome::Kind::kDoubted:
          doubt = out.reason;
          if (joiner.doubts_in_a_row() >= kDoubtsToGiveUp)
            return Status::error(Status::Code::kInvalidArgument, "the leader refused: " + doubt);
          break;
        case proto::Joiner::Outcome::Kind::kRefused:
          return Status::error(Status::Code::kInvalidArgument, "the leader refused: " + out.reason);
        case proto::Joiner::Outcome::Kind::kAccepted:
          peers_[0] = *address;
          return Joined{out.site, out.leader_key};
      }
    }
  }
}

// Shells come and go for months: the addresses of members the node no longer knows (it
// forgot them once they left) go, whenever the table doubled since the last time.
void NodeLoop::prune_departed() {
  std::erase_if(peers_, [this](const auto& p) {
    return p.first != 0 && !node_->peer_address(p.first).has_value();
  });
  prune_above_ = std::max<std::size_t>(kLeastPrune, 2 * peers_.size());
}

const SocketAddress* NodeLoop::address_of(proto::SiteId site) {
  auto it = peers_.find(site);
  if (it != peers_.end()) return &it->second;
  auto text = node_->peer_address(site);
  if (!text) return nullptr;
  auto parsed = SocketAddress::parse(*text);
  if (!parsed.ok()) return nullptr;
  return &(peers_[site] = *parsed);
}

void NodeLoop::on_datagram(std::size_t i, Time now) {
  if (receive_.truncated(i)) return;
  const wire::ByteView bytes = receive_.bytes(i);
  if (wire::is_join(bytes)) {
    join_reply_.clear();
    if (node_->on_join(bytes, SocketAddress(receive_.source(i)).to_string(), now, &join_reply_)) {
      std::uint64_t dropped = 0;
      send_batch_.set(0, join_reply_, SocketAddress(receive_.source(i)));
      (void)socket_.send(send_batch_, 0, 1, &dropped);
    }
    return;
  }
  if (loss_.drop()) {
    ++dropped_;
    return;
  }
  node_->on_datagram(bytes, now);
  const proto::SiteId src = node_->last_source();
  if (src != proto::kNoSource) {
    // A site is answered where it last spoke from: the leader saw its address at the join
    // already, this keeps it right if its address changes (NAT, restart).
    auto [it, fresh] = peers_.insert_or_assign(src, SocketAddress(receive_.source(i)));
    if (fresh && peers_.size() > prune_above_) prune_departed();
  }
}

Status NodeLoop::flush(Time now) {
  for (;;) {
    std::size_t n = 0;
    bool drained = false;
    while (n < out_.size()) {
      if (!node_->poll_transmit(now, &out_[n])) {
        drained = true;
        break;
      }
      const SocketAddress* to = address_of(out_[n].to);
      if (!to) {
        ++unroutable_;  // the core repeats it once the address is known
        continue;
      }
      send_batch_.set(n, out_[n].bytes, *to);
      ++n;
    }
    std::size_t done = 0;
    while (done < n) {
      std::uint64_t dropped = 0;
      auto sent = socket_.send(send_batch_, done, n - done, &dropped);
      if (!sent.ok()) return sent.status();
      done += *sent;
      if (done < n) {
        Status st = socket_.wait(true, 10 * proto::kMillisecond);
        if (!st.ok()) return st;
      }
    }
    if (drained) return Status::ok_status();
  }
}

Status NodeLoop::run_once(std::chrono::nanoseconds max_wait) {
  Time now = monotonic_now();
  if (Status st = flush(now); !st.ok()) return st;
  const Time deadline = deadline_after(now, max_wait);
  for (;;) {
    bool woke = false;
    for (std::size_t round = 0; round < kMaxReceiveRounds; ++round) {
      auto n = socket_.receive(&receive_, receive_.capacity());
      if (!n.ok()) return n.status();
      for (std::size_t i = 0; i < *n; ++i) on_datagram(i, now);
      woke = woke || *n > 0;
      if (*n < receive_.capacity()) break;
    }
    if (now >= node_->next_timeout()) {
      node_->on_timeout(now);
      woke = true;
    }
    if (woke || node_->has_work()) {
      node_->step(now);
      return flush(now);
    }
    if (now >= deadline) return Status::ok_status();
    if (!options_.busy_poll) {
      const Time wake = std::min(deadline, node_->next_timeout());
      Status st = socket_.wait(false, std::max<Time>(0, wake - now), wake_fd_);
      if (!st.ok()) return st;
    }
    now = monotonic_now();
  }
}

bool NodeLoop::run_until(const std::function<bool()>& done, std::chrono::nanoseconds timeout) {
  const Time deadline = deadline_after(monotonic_now(), timeout);
  for (;;) {
    if (done()) return true;
    const Time now = monotonic_now();
    if (now >= deadline) return false;
    if (!run_once(std::chrono::nanoseconds(std::min(deadline - now, kRunSlice))).ok()) return false;
  }
}

}  // namespace mstream::runtime
