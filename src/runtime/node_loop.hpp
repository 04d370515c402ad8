#pragma once
// NodeLoop: the real driver of a session participant (proto::Node: a site, the leader with its
// site 0, a shell) on one UDP socket. It reads datagrams in batches, hands path datagrams and
// join datagrams to the node, fires its timers, lets it run ready work, and sends what it
// queued to the address each site was last heard from (or the one the directory gives).
//
// Thread-safety: none; one thread runs the loop and the node (handlers run inside run_once).
// Lifetime: the attached node must outlive the loop's use of it.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "mstream/status.hpp"
#include "proto/joiner.hpp"
#include "proto/node.hpp"
#include "runtime/loss_model.hpp"
#include "runtime/socket_address.hpp"
#include "runtime/udp_socket.hpp"
#include "wire/join.hpp"

namespace mstream::runtime {

struct NodeLoopOptions {
  std::string listen = "127.0.0.1:0";
  // Drops this fraction of arriving path datagrams (seed 004's loss model); 0 in production.
  double receive_drop_probability = 0.0;
  std::uint64_t drop_seed = 1;
  // Spin instead of sleeping in the kernel while waiting: lower latency, one core busy.
  bool busy_poll = false;
};

class NodeLoop {
 public:
  // Binds the socket. Errors: kInvalidArgument (bad address), kIoError.
  static Result<std::unique_ptr<NodeLoop>> open(const NodeLoopOptions& options);
  ~NodeLoop();

  std::string local_address() const { return socket_.local_address().to_string(); }
  // The datagram size nodes on this socket should use: large on loopback.
  std::size_t mtu() const;

  // Asks the leader at `leader` ("HOST:PORT") for a site id, repeating the request until it
  // answers (proto::Joiner). With JoinSecrets (from the session's secret file) it joins a
  // secured session and comes back with its key with the leader. Errors: kUnavailable (no
  // answer within timeout), kInvalidArgument (refused, with the leader's reason, answered
  // by a leader of another key pair, or a bad address).
  struct Joined {
    proto::SiteId site = 0;
    std::optional<wire::Key> leader_key;
  };
  Result<Joined> join(const std::string& leader, wire::JoinMessage::Role role,
                      std::chrono::nanoseconds timeout,
                      const std::optional<proto::JoinSecrets>& secrets = std::nullopt);
  // Where `site` is, before it has sent us anything (e.g. the leader, site 0).
  void set_peer(proto::SiteId site, const SocketAddress& address);

  void attach(proto::Node* node) { node_ = node; }
  // The socket (for a KeepaliveThread) and where the leader is, once join() succeeded.
  int fd() const { return socket_.fd(); }
  const SocketAddress* leader_address() const {
    auto it = peers_.find(0);
    return it == peers_.end() ? nullptr : &it->second;
  }
  // A descriptor that becomes readable when the node has work from another thread (a
  // WorkerPool's wake_fd): the loop's wait ends then too. -1: none.
  void set_wake_fd(int fd) { wake_fd_ = fd; }

  // One round: sends what is queued, waits up to max_wait for datagrams or a timer, handles
  // them, runs ready work and sends the results. Errors: kIoError.
  Status run_once(std::chrono::nanoseconds max_wait);
  // run_once() until done() (checked every round, at least every 10 ms); false on timeout.
  bool run_until(const std::function<bool()>& done, std::chrono::nanoseconds timeout);

  std::uint64_t dropped_by_loss_model() const { return dropped_; }
  // Addresses known now (of members heard from, or given): those of members the node forgot
  // go whenever the table doubles, so it stays within about twice the members it knows.
  std::size_t peer_count() const { return peers_.size(); }

 private:
  NodeLoop(const NodeLoopOptions& options, UdpSocket socket);
  void on_datagram(std::size_t i, proto::Time now);
  Status flush(proto::Time now);
  const SocketAddress* address_of(proto::SiteId site);
  void prune_departed();

  NodeLoopOptions options_;
  UdpSocket socket_;
  ReceiveBatch receive_;
  SendBatch send_batch_;
  std::vector<proto::OutDatagram> out_;
  LossModel loss_;
  proto::Node* node_ = nullptr;
  std::unordered_map<proto::SiteId, SocketAddress> peers_;
  static constexpr std::size_t kLeastPrune = 64;
  std::size_t prune_above_ = kLeastPrune;
  wire::Bytes join_reply_;
  int wake_fd_ = -1;
  std::uint64_t dropped_ = 0;
  std::uint64_t unroutable_ = 0;
};

}  // namespace mstream::runtime
