#pragma once
// Sizes shared by the real drivers (Endpoint, NodeLoop).

#include <cstddef>

namespace mstream::runtime {

inline constexpr std::size_t kLanMtu = 1400;
// Linux loopback's MTU is 65536; IPv4 and UDP headers take 28 bytes. Leave some slack.
inline constexpr std::size_t kLoopbackMtu = 65000;
inline constexpr std::size_t kMinMtu = 512;
inline constexpr std::size_t kMaxMtu = 65507;  // the largest UDP payload over IPv4
// Receive slots hold any UDP datagram, so sites that disagree about the MTU still hear each
// other; slots are left uninitialized, so only the pages datagrams touch become resident.
inline constexpr std::size_t kReceiveSlotBytes = 65536;
inline constexpr std::size_t kSendBatch = 64;
// Bounds one wake-up's receiving so that handlers and acks are not starved by a flood.
inline constexpr std::size_t kMaxReceiveRounds = 8;
inline constexpr int kSocketBufferBytes = 4 << 20;

}  // namespace mstream::runtime
