#pragma once
// The join datagram (kind 1): how a site or shell that has no site id yet asks the leader for
// one. It travels outside the path protocol, because a path needs both ends' ids; the joiner
// repeats its request until answered, and the leader answers a repeated request (same nonce)
// with the same id, so loss and duplication are harmless.
//
//   u16 magic 0x534D   u8 version (kVersion)   u8 kind (1)   u32 crc32c of the rest
//   u8 op   varint nonce
//   op 1 request:   varint role (0 site, 1 shell), varint pid, u8 has_cookie, [16-byte cookie],
//                   u8 has_public, [32-byte X25519 public key of the joiner]
//   op 2 accept:    varint site id, u8 has_key, [32-byte key of the pair (leader, joiner)]
//   op 3 refuse:    string reason
//   op 4 hello:     (nothing more)
//   op 5 challenge: 16-byte cookie
//   op 6 unauthentic: string reason (a sealed request did not open: the joiner's secret is
//                   another, or the request was damaged on its way; the joiner goes on trying
//                   and reports the reason if it never gets in)
//
// A secured session (doc/security.md) joins in two round trips: hello, then the leader's
// challenge (a cookie: a MAC of the nonce under a key of this leader process), then the
// request with the cookie, sealed under the join key that the session secret derives
// (kind 3, below) with a fresh X25519 public key of the joiner's, then the accept with the
// joiner's id and its key with the leader, sealed under the key the exchange of that public key
// with the leader's long-term pair gives (wire::kx_leader_seal_key): only that joiner can open
// it, and it opens only if the leader holds the secret key of the public key the joiner pinned
// (the second line of the secret file). The cookie makes a recorded request useless to any
// later leader process, and the leader answers a repeated request of its own with the same id,
// for the same public key only, so a replayed one gains an attacker nothing. Without the
// secret a request cannot be sealed; without the joiner's secret key, an accept not opened.
//
//   kind 3 (sealed join): u16 magic   u8 version   u8 kind (3)   u64 join nonce
//                         24-byte AEAD nonce   ciphertext of a kind 1 join datagram
//                         16-byte tag
//   (XChaCha20-Poly1305, wire::seal_siv; the first 12 bytes are associated data, so that a
//   request that does not open can still be refused by its nonce)
//
// The decoders check everything and fail with kMalformed (or kPermissionDenied: a sealed one
// that does not open under the key), never throw.

#include <cstdint>
#include <string>

#include "mstream/status.hpp"
#include "wire/codec.hpp"
#include "wire/crypto.hpp"

namespace mstream::wire {

inline constexpr std::uint8_t kKindJoin = 1;
inline constexpr std::uint8_t kKindSealedJoin = 3;
using Cookie = std::array<std::uint8_t, 16>;

struct JoinMessage {
  enum class Op : std::uint8_t {
    kRequest = 1,
    kAccept = 2,
    kRefuse = 3,
    kHello = 4,
    kChallenge = 5,
    kUnauthentic = 6
  };
  enum class Role : std::uint8_t { kSite = 0, kShell = 1 };
  Op op = Op::kRequest;
  std::uint64_t nonce = 0;
  Role role = Role::kSite;
  std::uint64_t pid = 0;
  std::uint32_t site = 0;
  std::string reason;
  bool has_cookie = false;  // request
  Cookie cookie{};          // request, challenge
  bool has_public = false;  // request (secured)
  KxPublicKey public_key{};  // request: the joiner's, fresh for this join
  bool has_key = false;     // accept
  Key key{};                // accept: the key of the pair (leader, joiner)
};

// The datagram's kind byte, or -1 when it is too short to have one.
int datagram_kind(ByteView bytes);
void encode_join(const JoinMessage& m, Bytes* out);
Result<JoinMessage> decode_join(ByteView bytes);
// Kind 3, under `key` (the join key; an accept's: its key exchange's).
void encode_sealed_join(const JoinMessage& m, const Key& key, Bytes* out);
Result<JoinMessage> decode_sealed_join(ByteView bytes, const Key& key);
// The clear nonce of a sealed join, not authenticated.
Result<std::uint64_t> sealed_join_nonce(ByteView bytes);
// Whether `bytes` is a join datagram, sealed or not.
inline bool is_join(ByteView bytes) {
  const int kind = datagram_kind(bytes);
  return kind == kKindJoin || kind == kKindSealedJoin;
}

}  // namespace mstream::wire
