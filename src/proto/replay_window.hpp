#pragma once
// ReplayWindow: which counters of one sender (wire/crypto.hpp's sealed datagrams) were seen,
// so that a recorded datagram played again is dropped even though it authenticates. The
// newest kSize counters are remembered exactly (the IPsec and WireGuard scheme, RFC 6479);
// anything older than them is taken for a replay, which a datagram delayed past a thousand
// newer ones from the same sender may be too: the path's retransmission repairs that.
//
// A sender's counters come in two independent lanes (the node itself, and its keepalive
// thread from wire::kKeepaliveCounters up), each with its own window. A newer boot of the
// sender starts both afresh; an older one is refused.

#include <array>
#include <cstdint>

namespace mstream::proto {

class ReplayWindow {
 public:
  static constexpr std::uint64_t kSize = 1024;

  // Whether a datagram with this boot and counter is new; if so it is marked seen. Call it
  // only for datagrams that authenticated, or a forger could move the window.
  bool accept(std::uint32_t boot, std::uint64_t counter) {
    if (boot < boot_) return false;
    if (boot > boot_) {
      boot_ = boot;
      lanes_ = {};
    }
    Lane& lane = lanes_[counter >> 63];
    const std::uint64_t c = counter & ~(1ull << 63);
    if (c == 0) return false;  // senders count from 1
    if (c > lane.top) {
      const std::uint64_t shift = c - lane.top;
      if (shift >= kSize) {
        lane.bits = {};
      } else {
        for (std::uint64_t i = lane.top + 1; i <= c; ++i) clear(lane, i);
      }
      lane.top = c;
      set(lane, c);
      return true;
    }
    if (lane.top - c >= kSize) return false;
    if (test(lane, c)) return false;
    set(lane, c);
    return true;
  }

 private:
  struct Lane {
    std::uint64_t top = 0;
    std::array<std::uint64_t, kSize / 64> bits{};
  };
  static void set(Lane& l, std::uint64_t c) {
    l.bits[(c / 64) % l.bits.size()] |= 1ull << (c % 64);
  }
  static void clear(Lane& l, std::uint64_t c) {
    l.bits[(c / 64) % l.bits.size()] &= ~(1ull << (c % 64));
  }
  static bool test(const Lane& l, std::uint64_t c) {
    return (l.bits[(c / 64) % l.bits.size()] >> (c % 64)) & 1;
  }

  std::uint32_t boot_ = 0;
  std::array<Lane, 2> lanes_{};
};

}  // namespace mstream::proto
