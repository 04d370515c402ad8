#pragma once
// Joiner: the sans-IO client side of joining a session (wire/join.hpp), for the real driver
// (runtime::NodeLoop::join) and the simulator alike. The driver sends request() to the leader
// until on_reply() says the join is over, again at once whenever on_reply() says kResend.
//
// Unsecured: request() is the join request from the start. Secured (a join key, which the
// session secret derives): it is the hello until the leader's challenge came, then the
// request sealed with the challenge's cookie; only a sealed accept that opens under the join
// key, with the session's traffic key in it, is taken.
//
// Thread-safety: none.

#include <cstdint>
#include <optional>
#include <string>

#include "proto/types.hpp"
#include "wire/codec.hpp"
#include "wire/crypto.hpp"
#include "wire/join.hpp"

namespace mstream::proto {

class Joiner {
 public:
  struct Outcome {
    // kDoubted: the leader could not authenticate our request (another secret, or damage on
    // the way): go on asking, and report `reason` if the join never succeeds.
    enum class Kind { kNothing, kResend, kAccepted, kRefused, kDoubted };
    Kind kind = Kind::kNothing;
    SiteId site = 0;                       // kAccepted
    std::optional<wire::Key> traffic_key;  // kAccepted, secured
    std::string reason;                    // kRefused, kDoubted: the leader's words
  };

  Joiner(std::uint64_t nonce, wire::JoinMessage::Role role, std::uint64_t pid,
         std::optional<wire::Key> join_key);

  const wire::Bytes& request() const { return request_; }
  // How many kDoubted answers came since the last challenge: several in a row mean another
  // secret rather than damage, and a driver may stop there rather than wait out its timeout.
  std::uint32_t doubts_in_a_row() const { return doubts_; }
  // A join datagram (kind 1 or 3) from the leader's address. Anything not for this join, or
  // not authentic, is kNothing.
  Outcome on_reply(wire::ByteView bytes);

 private:
  void encode();

  wire::JoinMessage m_;
  std::optional<wire::Key> join_key_;
  bool challenged_ = false;
  std::uint32_t doubts_ = 0;
  wire::Bytes request_;
};

}  // namespace mstream::proto
