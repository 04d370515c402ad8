#pragma once
// Node: a sans-IO participant of a session (a site, a leader with its site 0, a shell), as the
// drivers see it. The real driver (src/runtime/node_loop) feeds it UDP datagrams and clock
// readings; the simulator feeds it simulated ones. A Node never touches a socket or a clock.
//
// Driving it, in a loop: on_datagram() for each path datagram, on_join() for each join
// datagram, on_timeout() once now >= next_timeout(), step() after each batch, then
// poll_transmit() until false. The driver sends each datagram to peer_address(to) (or to the
// address it last heard `to` from).

#include <optional>
#include <string>

#include "proto/transport.hpp"
#include "proto/types.hpp"
#include "wire/codec.hpp"

namespace mstream::proto {

class Node {
 public:
  virtual ~Node() = default;
  virtual SiteId self() const = 0;
  // A path datagram (kind 0). Bad ones are counted and dropped.
  virtual void on_datagram(wire::ByteView bytes, Time now) = 0;
  // The site that sent the last datagram on_datagram() accepted, or kNoSource.
  virtual SiteId last_source() const = 0;
  // A join datagram (kind 1) from the UDP address `from`; fills *reply and returns true when
  // it must be answered. Only a leader answers.
  virtual bool on_join(wire::ByteView /*bytes*/, const std::string& /*from*/, Time /*now*/,
                       wire::Bytes* /*reply*/) {
    return false;
  }
  // Runs the work that is ready (control messages, handlers), within a bounded budget so the
  // network keeps being served; has_work() says whether more is ready.
  virtual void step(Time now) = 0;
  virtual bool has_work() const = 0;
  virtual Time next_timeout() const = 0;
  virtual void on_timeout(Time now) = 0;
  virtual bool poll_transmit(Time now, OutDatagram* out) = 0;
  virtual std::optional<std::string> peer_address(SiteId site) const = 0;
  // The session told this node to stop.
  virtual bool finished() const = 0;
};

inline constexpr SiteId kNoSource = 0xFFFFFFFFu;

}  // namespace mstream::proto
