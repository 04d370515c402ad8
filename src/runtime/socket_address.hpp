#pragma once
// An IPv4 UDP address, parsed from and printed as "HOST:PORT". IPv4 only for now: every
// session we run is on one LAN or on loopback.
// Thread-safety: a plain value.

#include <netinet/in.h>

#include <string>
#include <string_view>

#include "mstream/status.hpp"

namespace mstream::runtime {

class SocketAddress {
 public:
  SocketAddress() = default;
  explicit SocketAddress(const sockaddr_in& sa) : sa_(sa) {}

  // "127.0.0.1:7001", "localhost:0", "0.0.0.0:7001". HOST may be a name; it is resolved once,
  // here, to its first IPv4 address. Errors: kInvalidArgument with the reason.
  static Result<SocketAddress> parse(std::string_view host_port);

  const sockaddr_in& raw() const { return sa_; }
  sockaddr_in* mutable_raw() { return &sa_; }
  std::uint16_t port() const { return ntohs(sa_.sin_port); }
  // 127.0.0.0/8.
  bool is_loopback() const { return (ntohl(sa_.sin_addr.s_addr) >> 24) == 127; }
  std::string to_string() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) {
    return a.sa_.sin_addr.s_addr == b.sa_.sin_addr.s_addr && a.sa_.sin_port == b.sa_.sin_port;
  }

 private:
  sockaddr_in sa_{};
};

}  // namespace mstream::runtime
