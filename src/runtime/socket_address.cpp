#include "runtime/socket_address.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>

namespace mstream::runtime {
namespace {

Status invalid(std::string_view what, std::string_view input) {
  return Status::error(Status::Code::kInvalidArgument,
                       std::string(what) + ": \"" + std::string(input) + "\"");
}

}  // namespace

Result<SocketAddress> SocketAddress::parse(std::string_view host_port) {
  const std::size_t colon = host_port.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == host_port.size())
    return invalid("expected HOST:PORT", host_port);
  const std::string host(host_port.substr(0, colon));
  const std::string_view port_text = host_port.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
    return invalid("bad port", host_port);

  SocketAddress addr;
  addr.sa_.sin_family = AF_INET;
  addr.sa_.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sa_.sin_addr) == 1) return addr;

  // A name: resolve it now, so that the hot path never blocks in the resolver.
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    return invalid(std::string("cannot resolve host (") + gai_strerror(rc) + ")", host_port);
  }
  std::memcpy(&addr.sa_.sin_addr, &reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr,
              sizeof(in_addr));
  freeaddrinfo(found);
  return addr;
}

std::string SocketAddress::to_string() const {
  char host[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &sa_.sin_addr, host, sizeof(host));
  return std::string(host) + ":" + std::to_string(port());
}

}  // namespace mstream::runtime
