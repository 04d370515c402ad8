#pragma once
// Reserved stream and site ids of a session, and the user message envelope.
//
// Every site and shell has a control stream, the leader has its own: control messages are
// ordinary messages between them (doc/session.md). User streams get ids 1, 2, ... from the
// leader, far below kControlBit.

#include <cstdint>

#include "proto/types.hpp"

namespace mstream::site {

inline constexpr proto::StreamId kControlBit = 1ull << 62;
inline constexpr proto::StreamId kLeaderStream = kControlBit | (1ull << 40);
inline constexpr proto::StreamId control_stream(proto::SiteId site) { return kControlBit | site; }
inline constexpr bool is_control(proto::StreamId id) { return (id & kControlBit) != 0; }
inline constexpr proto::SiteId control_site(proto::StreamId id) {
  return static_cast<proto::SiteId>(id & 0xFFFFFFFFu);
}
// Shells get ids from here up, sites below it.
inline constexpr proto::SiteId kFirstShellId = 1u << 24;
inline constexpr bool is_shell(proto::SiteId site) { return site >= kFirstShellId; }

// The controllers a site may run (COMMANDS.md, Policy): agents of the site itself, with ids
// no leader hands out (those count up from 1).
inline constexpr std::uint64_t kSessionControllerAgent = (1ull << 62) | 1;
inline constexpr std::uint64_t kSiteControllerAgent = (1ull << 62) | 2;

// A user message on the wire: one flags byte, then the message.
inline constexpr std::uint8_t kMessageSync = 1;  // the sender waits for the handlers' results

}  // namespace mstream::site
