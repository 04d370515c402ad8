#pragma once
// Vocabulary types of the sans-IO protocol cores. No I/O, no clock: time is a value the
// driver passes in.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>

namespace mstream::proto {

// Nanoseconds on a monotonic clock chosen by the driver (real or simulated).
using Time = std::int64_t;
inline constexpr Time kNever = std::numeric_limits<Time>::max();
inline constexpr Time kMicrosecond = 1'000;
inline constexpr Time kMillisecond = 1'000'000;
inline constexpr Time kSecond = 1'000'000'000;

// A site of the session; the leader is site 0.
using SiteId = std::uint32_t;
// A stream (or a shell acting as a sender). 0 is never a valid stream.
using StreamId = std::uint64_t;
// Per sender/receiver pair message number; the first message of a pair is 1.
using Seq = std::uint64_t;
// Per path datagram number; 0 marks a datagram that asks for no acknowledgement.
using PacketNumber = std::uint64_t;

// One sender/receiver stream pair: the unit of FIFO, exactly-once consumption.
struct ChannelKey {
  StreamId from = 0;
  StreamId to = 0;
  friend bool operator==(const ChannelKey&, const ChannelKey&) = default;
};

struct ChannelKeyHash {
  std::size_t operator()(const ChannelKey& k) const noexcept {
    std::uint64_t h = k.from * 0x9E3779B97F4A7C15ull;
    h ^= k.to + 0x632BE59BD9B4E019ull + (h << 6) + (h >> 2);
    return static_cast<std::size_t>(h);
  }
};

}  // namespace mstream::proto
