#pragma once
// A non-blocking UDP socket that moves datagrams in batches (recvmmsg/sendmmsg): one system
// call per batch instead of one per datagram, which is most of the per-datagram cost on
// loopback (DESIGN.md, "Wake-ups": batch work per wake-up).
// Thread-safety: none; one thread owns a socket and its batches.

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "mstream/status.hpp"
#include "proto/types.hpp"
#include "runtime/socket_address.hpp"
#include "wire/codec.hpp"

namespace mstream::runtime {

// Receive buffers for one recvmmsg call: `slots` datagrams of at most `slot_bytes` each.
class ReceiveBatch {
 public:
  ReceiveBatch(std::size_t slots, std::size_t slot_bytes);
  ReceiveBatch(ReceiveBatch&&) noexcept = default;
  ReceiveBatch& operator=(ReceiveBatch&&) noexcept = default;

  std::size_t capacity() const { return headers_.size(); }
  std::size_t slot_bytes() const { return slot_bytes_; }
  // Datagram i of the last receive(); valid until the next one.
  wire::ByteView bytes(std::size_t i) const {
    return wire::ByteView(buffer_.get() + i * slot_bytes_, headers_[i].msg_len);
  }
  // The datagram was larger than slot_bytes and was cut short by the kernel.
  bool truncated(std::size_t i) const { return (headers_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0; }
  const sockaddr_in& source(std::size_t i) const { return sources_[i]; }

 private:
  friend class UdpSocket;
  void reset_headers();

  std::size_t slot_bytes_;
  // Left uninitialized: a slot's pages become resident only once a datagram that large
  // arrives, which keeps an idle endpoint small.
  std::unique_ptr<std::uint8_t[]> buffer_;
  std::vector<mmsghdr> headers_;
  std::vector<iovec> iov_;
  std::vector<sockaddr_in> sources_;
};

// Outgoing datagrams for one sendmmsg call. The bytes are referenced, not copied: they must
// stay valid until sent.
class SendBatch {
 public:
  explicit SendBatch(std::size_t capacity);
  std::size_t capacity() const { return headers_.size(); }
  void set(std::size_t i, wire::ByteView bytes, const SocketAddress& to);

 private:
  friend class UdpSocket;
  std::vector<mmsghdr> headers_;
  std::vector<iovec> iov_;
  std::vector<sockaddr_in> dests_;
};

class UdpSocket {
 public:
  // Binds a non-blocking socket and asks for `buffer_bytes` of kernel send and receive
  // buffer (a burst of 64 KB loopback datagrams overflows the 208 KB default at once).
  // Errors: kIoError with the reason.
  static Result<UdpSocket> bind(const SocketAddress& address, int buffer_bytes);

  UdpSocket(UdpSocket&& other) noexcept;
  UdpSocket& operator=(UdpSocket&& other) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  ~UdpSocket();

  int fd() const { return fd_; }
  const SocketAddress& local_address() const { return local_; }

  // Receives up to min(max, batch->capacity()) datagrams without blocking; returns how many
  // (0: none waiting). Errors: kIoError for a failure of the socket itself. With max == 1 it
  // uses recvfrom, which costs less than recvmmsg when datagrams come one at a time.
  Result<std::size_t> receive(ReceiveBatch* batch, std::size_t max);

  // Sends datagrams [first, first + count) of batch without blocking. Returns how many are
  // done: sent, or dropped after an error that concerns only that datagram (counted in
  // *dropped; the protocol repeats what matters). Fewer than `count` only when the kernel
  // buffer is full: wait(true, ...) and send the rest. Errors: kIoError as for receive().
  // A single datagram goes by sendto, cheaper than sendmmsg.
  Result<std::size_t> send(SendBatch& batch, std::size_t first, std::size_t count,
                           std::uint64_t* dropped);

  // Sleeps in the kernel until the socket is readable (or writable, if want_write) or
  // `timeout` ns passed. An interrupted wait returns ok early.
  // `also_readable` (if >= 0) is a second descriptor whose readability ends the wait too.
  Status wait(bool want_write, proto::Time timeout, int also_readable = -1);

 private:
  Result<std::size_t> receive_one(ReceiveBatch* batch);
  explicit UdpSocket(int fd) : fd_(fd) {}
  int fd_ = -1;
  SocketAddress local_;
};

}  // namespace mstream::runtime
