#include "runtime/keepalive_thread.hpp"

#include <sys/socket.h>

#include "wire/datagram.hpp"

namespace mstream::runtime {

void KeepaliveThread::start(int fd, const SocketAddress& to, proto::SiteId self,
                            proto::SiteId peer, std::chrono::nanoseconds interval) {
  stop();
  stopping_ = false;
  wire::Bytes bytes;
  wire::encode_header({self, peer, 0}, &bytes);
  wire::seal(&bytes);
  thread_ = std::thread([this, fd, to, bytes = std::move(bytes), interval] {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, interval, [this] { return stopping_; })) {
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
