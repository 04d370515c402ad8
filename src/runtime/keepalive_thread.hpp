#pragma once
// KeepaliveThread: sends a keepalive datagram (doc/protocol.md "Keepalives") from a socket to
// one peer at a fixed interval, on a thread of its own. A shell's event loop runs only while
// one of its commands waits for the session (SessionClient::pump): a script in `after`, in a
// long computation or waiting for input would otherwise fall silent and be declared failed.
// The datagrams are the transport's own keepalives (packet number 0, no frames), sent on the
// node's socket, so the peer hears the node at the address it knows.
//
// Thread-safety: start and stop from one thread; the datagrams go out from the thread it runs.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "proto/types.hpp"
#include "runtime/socket_address.hpp"
#include "wire/crypto.hpp"

namespace mstream::runtime {

class KeepaliveThread {
 public:
  KeepaliveThread() = default;
  ~KeepaliveThread() { stop(); }
  KeepaliveThread(const KeepaliveThread&) = delete;
  KeepaliveThread& operator=(const KeepaliveThread&) = delete;

  // Sends from `fd` (a bound UDP socket, which must outlive stop()) to `to`, as site `self`
  // to site `peer`, every `interval`; in a secured session sealed under `pair_key` (the key
  // of the pair (self, peer): a shell's with the leader, from its join), with
  // counters of its own (wire::kKeepaliveCounters), and saying what its node's transport
  // opens (`opens_aegis`: proto::Transport::seals_aegis(), so that the peer does not take the
  // beat for another process's). A second start() replaces the first.
  void start(int fd, const SocketAddress& to, proto::SiteId self, proto::SiteId peer,
             std::chrono::nanoseconds interval,
             const std::optional<wire::Key>& pair_key = std::nullopt, bool opens_aegis = false);
  void stop();

 private:
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace mstream::runtime
