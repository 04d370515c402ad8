#pragma once
// Joiner: the sans-IO client side of joining a session (wire/join.hpp), for the real driver
// (runtime::NodeLoop::join) and the simulator alike. The driver sends request() to the leader
// until on_reply() says the join is over, again at once whenever on_reply() says kResend.
//
// Unsecured: request() is the join request from the start. Secured (JoinSecrets): it is the
// hello until the leader's challenge came, then the request sealed under the join key with
// the challenge's cookie and the joiner's fresh public key; only an accept sealed under the
// key its exchange with the leader's pinned public key gives (wire::kx_joiner_open_key), with
// the joiner's key with the leader in it, is taken: nobody else, a member holding the
// secret included, can read it, and nobody but the holder of the leader's secret key can
// have sealed it.
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

// What a joiner of a secured session holds (doc/security.md).
struct JoinSecrets {
  wire::Key join_key{};               // wire::join_key_of(the session secret)
  wire::KxPublicKey leader_public{};  // pinned: the secret file's second line
  wire::KxKeyPair own{};              // fresh for this join (wire::kx_keypair)
};

class Joiner {
 public:
  struct Outcome {
    // kDoubted: the leader could not authenticate our request (another secret, or damage on
    // the way): go on asking, and report `reason` if the join never succeeds.
    enum class Kind { kNothing, kResend, kAccepted, kRefused, kDoubted };
    Kind kind = Kind::kNothing;
    SiteId site = 0;                      // kAccepted
    std::optional<wire::Key> leader_key;  // kAccepted, secured: the pair (leader, joiner)'s
    std::string reason;  // kRefused, kDoubted: the leader's words (or why its answer is doubted)
  };

  Joiner(std::uint64_t nonce, wire::JoinMessage::Role role, std::uint64_t pid,
         std::optional<JoinSecrets> secrets);

  const wire::Bytes& request() const { return request_; }
  // How many kDoubted answers came since the last challenge: several in a row mean another
  // secret (or another leader key pair) rather than damage, and a driver may stop there
  // rather than wait out its timeout.
  std::uint32_t doubts_in_a_row() const { return doubts_; }
  // A join datagram (kind 1 or 3) from the leader's address. Anything not for this join, or
  // not authentic, is kNothing.
  Outcome on_reply(wire::ByteView bytes);

 private:
  void encode();

  wire::JoinMessage m_;
  std::optional<JoinSecrets> secrets_;
  std::optional<wire::Key> open_key_;  // the accept's, from the exchange (secured)
  bool challenged_ = false;
  std::uint32_t doubts_ = 0;
  wire::Bytes request_;
};

}  // namespace mstream::proto
