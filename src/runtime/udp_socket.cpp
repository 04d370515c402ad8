#include "runtime/udp_socket.hpp"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>

namespace mstream::runtime {
namespace {

Status io_error(const char* what) {
  return Status::error(Status::Code::kIoError, std::string(what) + ": " + strerror(errno));
}

// Errors that concern one datagram (its destination, its size), not the socket.
bool is_per_datagram_error(int err) {
  switch (err) {
    case EMSGSIZE:
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ECONNREFUSED:
    case EPERM:
    case EACCES:
    case EINVAL:
    case EADDRNOTAVAIL:
    case ENOBUFS:  // transient shortage; waiting for POLLOUT would not help
    case ENETDOWN:
      return true;
    default:
      return false;
  }
}

void set_buffer(int fd, int force_opt, int opt, int bytes) {
  // The FORCE variants pass the sysctl cap when we have CAP_NET_ADMIN; otherwise the plain
  // option is clamped to net.core.[rw]mem_max. Neither failure is fatal: only slower.
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof(bytes)) != 0)
    (void)setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes));
}

}  // namespace

ReceiveBatch::ReceiveBatch(std::size_t slots, std::size_t slot_bytes)
    : slot_bytes_(slot_bytes),
      buffer_(new std::uint8_t[slots * slot_bytes]),
      headers_(slots),
      iov_(slots),
      sources_(slots) {
  reset_headers();
}

void ReceiveBatch::reset_headers() {
  for (std::size_t i = 0; i < headers_.size(); ++i) {
    iov_[i].iov_base = buffer_.get() + i * slot_bytes_;
    iov_[i].iov_len = slot_bytes_;
    msghdr& h = headers_[i].msg_hdr;
    h = msghdr{};
    h.msg_name = &sources_[i];
    h.msg_namelen = sizeof(sockaddr_in);
    h.msg_iov = &iov_[i];
    h.msg_iovlen = 1;
    headers_[i].msg_len = 0;
  }
}

SendBatch::SendBatch(std::size_t capacity) : headers_(capacity), iov_(capacity), dests_(capacity) {}

void SendBatch::set(std::size_t i, wire::ByteView bytes, const SocketAddress& to) {
  dests_[i] = to.raw();
  iov_[i].iov_base = const_cast<std::uint8_t*>(bytes.data());  // sendmsg does not write
  iov_[i].iov_len = bytes.size();
  msghdr& h = headers_[i].msg_hdr;
  h = msghdr{};
  h.msg_name = &dests_[i];
  h.msg_namelen = sizeof(sockaddr_in);
  h.msg_iov = &iov_[i];
  h.msg_iovlen = 1;
  headers_[i].msg_len = 0;
}

Result<UdpSocket> UdpSocket::bind(const SocketAddress& address, int buffer_bytes) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return io_error("socket");
  UdpSocket sock(fd);
  set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, buffer_bytes);
  set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, buffer_bytes);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address.raw()), sizeof(sockaddr_in)) != 0)
    return io_error(("bind " + address.to_string()).c_str());
  socklen_t len = sizeof(sockaddr_in);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(sock.local_.mutable_raw()), &len) != 0)
    return io_error("getsockname");
  return sock;
}

UdpSocket::UdpSocket(UdpSocket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), local_(other.local_) {}

UdpSocket& UdpSocket::operator=(UdpSocket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    local_ = other.local_;
  }
  return *this;
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) close(fd_);
}

Result<std::size_t> UdpSocket::receive_one(ReceiveBatch* batch) {
  for (;;) {
    socklen_t len = sizeof(sockaddr_in);
    // MSG_TRUNC: the real length of a datagram larger than the slot, to report truncation.
    const ssize_t n =
        recvfrom(fd_, batch->buffer_.get(), batch->slot_bytes_, MSG_DONTWAIT | MSG_TRUNC,
                 reinterpret_cast<sockaddr*>(&batch->sources_[0]), &len);
    if (n >= 0) {
      const auto size = static_cast<std::size_t>(n);
      batch->headers_[0].msg_len = static_cast<unsigned>(std::min(size, batch->slot_bytes_));
      batch->headers_[0].msg_hdr.msg_flags = size > batch->slot_bytes_ ? MSG_TRUNC : 0;
      return std::size_t{1};
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
    if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)
      return std::size_t{0};
    return io_error("recvfrom");
  }
}

Result<std::size_t> UdpSocket::receive(ReceiveBatch* batch, std::size_t max) {
  if (max <= 1) return receive_one(batch);
  max = std::min(max, batch->headers_.size());
  // The kernel overwrites msg_namelen and msg_flags; give every slot its full size back.
  for (std::size_t i = 0; i < max; ++i) {
    batch->headers_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    batch->headers_[i].msg_hdr.msg_flags = 0;
  }
  for (;;) {
    const int n = recvmmsg(fd_, batch->headers_.data(), static_cast<unsigned>(max), MSG_DONTWAIT,
                           nullptr);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
    // An ICMP error queued for an earlier send (e.g. ECONNREFUSED): nothing to receive.
    if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)
      return std::size_t{0};
    return io_error("recvmmsg");
  }
}

Result<std::size_t> UdpSocket::send(SendBatch& batch, std::size_t first, std::size_t count,
                                    std::uint64_t* dropped) {
  std::size_t done = 0;
  while (done < count) {
    int n = 0;
    if (count - done == 1) {
      const msghdr& h = batch.headers_[first + done].msg_hdr;
      const ssize_t r = sendto(fd_, h.msg_iov->iov_base, h.msg_iov->iov_len, MSG_DONTWAIT,
                               static_cast<const sockaddr*>(h.msg_name), h.msg_namelen);
      n = r >= 0 ? 1 : -1;
    } else {
      n = sendmmsg(fd_, batch.headers_.data() + first + done, static_cast<unsigned>(count - done),
                   MSG_DONTWAIT);
    }
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;  // a short count means the next one failed: the next call reports why
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (!is_per_datagram_error(errno)) return io_error("sendmmsg");
    ++*dropped;
    ++done;
  }
  return done;
}

Status UdpSocket::wait(bool want_write, proto::Time timeout, int also_readable) {
  pollfd pfds[2]{};
  pollfd& pfd = pfds[0];
  pfd.fd = fd_;
  pfd.events = static_cast<short>(POLLIN | (want_write ? POLLOUT : 0));
  pfds[1].fd = also_readable;
  pfds[1].events = POLLIN;
  const nfds_t n = also_readable >= 0 ? 2 : 1;
  if (timeout < 0) timeout = 0;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout / proto::kSecond);
  ts.tv_nsec = static_cast<long>(timeout % proto::kSecond);
  // ppoll, not epoll_wait: one or two descriptors, and nanosecond timeouts for the cores'
  // timers.
  const int rc = ppoll(pfds, n, timeout == proto::kNever ? nullptr : &ts, nullptr);
  if (rc < 0 && errno != EINTR) return io_error("ppoll");
  return Status::ok_status();
}

}  // namespace mstream::runtime
