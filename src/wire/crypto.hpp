#pragma once
// The cryptography of secured sessions (doc/security.md), on libsodium: keys, their derivation
// from the session secret, and the sealed datagram (kinds 2, 6 and 7) that carries a path
// datagram between the members of a secured session.
//
//   u16 magic  u8 version  u8 kind  u32 src_site  u32 src_boot  u64 counter
//   ciphertext of the whole path datagram (kind 0)   16-byte tag
//
// The first 20 bytes are the AEAD's associated data, so nobody can move a sealed datagram to
// another sender, boot or counter. The kind names the cipher:
//   2  XChaCha20-Poly1305 under the key of the pair (sender, receiver) (pair_key); the nonce
//      is the 16 bytes from src_site on, then 8 zero bytes. Only the two ends of the pair open
//      it, so a member cannot read what other pairs exchange, nor seal in another's name.
//   6  the same, from a sender that also opens kind 7: a receiver that can, answers in kind 7.
//   7  AEGIS-256 (draft-irtf-cfrg-aegis-aead; on AES instructions, three to four times as
//      fast as AES-256-GCM at 1400 bytes) with its 128-bit tag, under the sender's own subkey
//      of the pair key, derived for its (site, boot), so that no key serves two ciphers; the
//      nonce is the 16 bytes from src_site on, then 16 zero bytes. Sent only to a peer whose
//      latest datagram was kind 6 or 7.
// (Kinds 4 and 5, AES-256-GCM in its place, were datagram version 5's.)
// Either nonce is unique under its key as long as each sender (site id, boot) never repeats a
// counter, whichever peer it sends to (one counter for all its pairs): site ids are never
// reused, a restarted leader runs under a higher boot, and a Transport counts from 1 (its
// keepalive thread, kKeepaliveCounters upwards). The two ends of a pair differ in src_site,
// so their nonces never meet. The counter is also what the receiver's replay window
// (proto::ReplayWindow) checks.
//
// Everything here fails with a Status, never throws; the openers check every length first.

#include <array>
#include <cstdint>
#include <string>

#include "mstream/status.hpp"
#include "wire/codec.hpp"

namespace mstream::wire {

inline constexpr std::size_t kKeyBytes = 32;
using Key = std::array<std::uint8_t, kKeyBytes>;

inline constexpr std::uint8_t kKindSealed = 2;
inline constexpr std::uint8_t kKindSealedAegisCapable = 6;
inline constexpr std::uint8_t kKindSealedAegis = 7;
inline constexpr bool is_sealed_kind(std::uint8_t kind) {
  return kind == kKindSealed || kind == kKindSealedAegisCapable || kind == kKindSealedAegis;
}
inline constexpr std::size_t kSealedHeaderSize = 20;
inline constexpr std::size_t kSealTagSize = 16;
inline constexpr std::size_t kSealOverhead = kSealedHeaderSize + kSealTagSize;
// Counters from here up belong to a node's keepalive thread (runtime/keepalive_thread), so
// that it never repeats one of its node's own.
inline constexpr std::uint64_t kKeepaliveCounters = 1ull << 63;

// libsodium's initialisation, once per process; false if it failed (no entropy source).
bool crypto_ready();
// A fresh random key. REQUIRES: crypto_ready().
Key random_key();
// The subkey `id` of `secret` for `context` (exactly 8 characters): the session secret
// yields the join key and nothing else uses it directly.
Key derive_key(const Key& secret, std::uint64_t id, const char* context);
// The join key of a session secret (wire/join.hpp).
inline Key join_key_of(const Key& secret) { return derive_key(secret, 1, "msjoin__"); }
// The key of the pair of members {a, b} (site ids; the order does not matter), derived from
// the session's master key, which only the leader holds: it needs no storage, and a
// restarted leader derives the same keys again.
Key pair_key(const Key& master, std::uint32_t a, std::uint32_t b);

// X25519 key exchange (libsodium crypto_kx), for the join (wire/join.hpp): the leader's
// long-term key pair, whose public key every member pins, and each joiner's fresh one.
inline constexpr std::size_t kKxKeyBytes = 32;
using KxPublicKey = std::array<std::uint8_t, kKxKeyBytes>;
struct KxKeyPair {
  KxPublicKey public_key{};
  std::array<std::uint8_t, kKxKeyBytes> secret_key{};
};
// A fresh random pair. REQUIRES: crypto_ready().
KxKeyPair kx_keypair();
// The pair a 32-byte seed determines (the simulator's, so that its runs replay).
KxKeyPair kx_seed_keypair(const Key& seed);
// The key the leader seals its join accept under, for the joiner whose public key is
// `joiner`, and the same key as the joiner computes it with the leader's pinned public key.
// Only the holders of the two secret keys can compute it. kInvalidArgument: a public key no
// exchange can be made with (a small-order point).
Result<Key> kx_leader_seal_key(const KxKeyPair& leader, const KxPublicKey& joiner);
Result<Key> kx_joiner_open_key(const KxKeyPair& joiner, const KxPublicKey& leader);
// The key in hex (64 characters) and back; parse fails with kInvalidArgument.
std::string key_to_hex(const Key& key);
Result<Key> key_from_hex(std::string_view hex);
// A keyed MAC of `data`, cut to 16 bytes (HMAC-SHA-512-256): the leader's join cookies.
std::array<std::uint8_t, 16> short_mac(const Key& key, ByteView data);

struct SealedHeader {
  std::uint32_t src_site = 0;
  std::uint32_t src_boot = 0;
  std::uint64_t counter = 0;
  std::uint8_t kind = kKindSealed;
};

// Seals the path datagram `plain` into *out (overwritten), as kind h.kind: kKindSealed or
// kKindSealedAegisCapable (XChaCha20-Poly1305 under `key`, the pair's with the receiver).
void seal_datagram(const Key& key, const SealedHeader& h, ByteView plain, Bytes* out);
// The header of a sealed datagram of any kind, not yet authenticated: kMalformed if `bytes`
// is not one.
Status peek_sealed(ByteView bytes, SealedHeader* h);
// Authenticates and opens a sealed datagram of kind 2 or 6 into *plain (overwritten). Errors:
// kMalformed (not one), kPermissionDenied (forged, tampered with, or sealed under another
// key: another session's).
Status open_datagram(const Key& key, ByteView bytes, SealedHeader* h, Bytes* plain);

// Kind 7. Whether this machine seals and opens AEGIS-256: its CPU has AES-NI and AVX (the
// vendored implementation's, third_party/aegis256; there is no portable one here, a machine
// without them seals with XChaCha20-Poly1305).
bool aegis_available();
// One sender's AEGIS-256 key: the subkey of a pair key for that sender's (site, boot). A key
// derivation each, so kept per peer, not made per datagram. REQUIRES: aegis_available() to
// seal or open with it.
class AegisKey {
 public:
  AegisKey(const Key& pair_key, std::uint32_t site, std::uint32_t boot);
  std::uint32_t site() const { return site_; }
  std::uint32_t boot() const { return boot_; }
  const Key& key() const { return key_; }

 private:
  Key key_;
  std::uint32_t site_;
  std::uint32_t boot_;
};
// Seals as kind 7 under the sender's key (whose site and boot go in the header).
void seal_datagram_aegis(const AegisKey& sender, std::uint64_t counter, ByteView plain, Bytes* out);
// Opens a kind 7 datagram of sender (its site and boot must be the header's, else
// kPermissionDenied). Errors as open_datagram().
Status open_datagram_aegis(const AegisKey& sender, ByteView bytes, SealedHeader* h, Bytes* plain);

// Sealing for the join exchange (wire/join.hpp), whose messages have no counter: the nonce
// is a keyed hash of the plaintext (a synthetic IV, as in RFC 5297), so it repeats only for
// the same plaintext, which then seals to the same bytes and reveals nothing new; and the
// simulator's runs stay deterministic. The nonce travels in front of the ciphertext; the
// first ad_size bytes of *out, which the caller wrote, are authenticated with it.
void seal_siv(const Key& key, std::size_t ad_size, ByteView plain, Bytes* out);
Status open_siv(const Key& key, std::size_t ad_size, ByteView bytes, Bytes* plain);

}  // namespace mstream::wire
