#include "runtime/keepalive_thread.hpp"

#include <sys/socket.h>

#include "wire/datagram.hpp"

namespace mstream::runtime {

void KeepaliveThread::start(int fd, const SocketAddress& to, proto::SiteId self, proto::SiteId peer,
                            std::chrono::nanoseconds interval,
                            const std::optional<wire::Key>& pair_key, bool opens_aegis) {
  stop();
  stopping_ = false;
  wire::Bytes plain;
  wire::encode_header({self, peer, 0}, &plain);
  wire::seal(&plain, pair_key ? wire::Integrity::kSealed : wire::Integrity::kChecksum);
  const std::uint8_t kind = opens_aegis ? wire::kKindSealedAegisCapable : wire::kKindSealed;
  thread_ = std::thread([this, fd, to, plain = std::move(plain), interval, pair_key, self, kind] {
    std::unique_lock lock(mu_);
    wire::Bytes sealed;
    std::uint64_t counter = wire::kKeepaliveCounters;
    while (!cv_.wait_for(lock, interval, [this] { return stopping_; })) {
      // Each beat under a counter of its own: the peer's replay window drops a repeat.
      if (pair_key) wire::seal_datagram(*pair_key, {self, 0, ++counter, kind}, plain, &sealed);
      const wire::Bytes& bytes = pair_key ? sealed : plain;
      // A lost or refused keepalive is only a missed beat: the next one follows.
      (void)::sendto(fd, bytes.data(), bytes.size(), MSG_DONTWAIT,
                     reinterpret_cast<const sockaddr*>(&to.raw()), sizeof(sockaddr_in));
    }
  });
}

void KeepaliveThread::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

}  // namespace mstream::runtime
