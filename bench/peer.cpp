#include "bench/peer.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace mstream::bench {

std::uint16_t port_of(const std::string& host_port) {
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos) return 0;
  long port = std::strtol(host_port.c_str() + colon + 1, nullptr, 10);
  if (port <= 0 || port > 65535) return 0;
  return static_cast<std::uint16_t>(port);
}

Result<std::uint16_t> exchange_ports(Link& link, std::uint16_t own_port) {
  if (!link.send(own_port)) {
    return Status::error(Status::Code::kUnavailable, "peer process gone before the handshake");
  }
  auto word = link.receive(kHandshakeTimeout);
  if (!word || *word == 0 || *word > 65535) {
    return Status::error(Status::Code::kUnavailable, "peer process sent no port in time");
  }
  return static_cast<std::uint16_t>(*word);
}

Result<std::unique_ptr<Endpoint>> open_peered_endpoint(const EndpointOptions& options, Link& link,
                                                       std::uint32_t peer_site) {
  auto ep = Endpoint::open(options);
  if (!ep.ok()) {
    link.send(0);  // tell the peer at once rather than let it time out
    return ep.status();
  }
  auto peer = exchange_ports(link, port_of((*ep)->local_address()));
  if (!peer.ok()) return peer.status();
  Status s = (*ep)->add_peer(peer_site, "127.0.0.1:" + std::to_string(*peer));
  if (!s.ok()) return s;
  return std::move(ep).value();
}

Result<int> open_peered_udp_socket(Link& link, std::chrono::milliseconds blocking_timeout) {
  auto fail = [&](int fd, const char* what) -> Result<int> {
    std::string msg = std::string(what) + ": " + std::strerror(errno);
    if (fd >= 0) close(fd);
    link.send(0);
    return Status::error(Status::Code::kIoError, msg);
  };
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(fd, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return fail(fd, "bind");
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return fail(fd, "getsockname");
  }
  timeval tv{};
  tv.tv_sec = blocking_timeout.count() / 1000;
  tv.tv_usec = static_cast<suseconds_t>((blocking_timeout.count() % 1000) * 1000);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
    return fail(fd, "setsockopt");
  }
  auto peer = exchange_ports(link, ntohs(addr.sin_port));
  if (!peer.ok()) {
    close(fd);
    return peer.status();
  }
  addr.sin_port = htons(*peer);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail(fd, "connect");
  }
  return fd;
}

}  // namespace mstream::bench
