#include "wire/crypto.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "wire/datagram.hpp"

#if defined(MSTREAM_AEGIS256_AESNI)
// libsodium's AEGIS-256 for AES-NI, vendored (third_party/aegis256/README.md).
extern "C" {
#include "aegis256_aesni.h"
}
#endif

namespace mstream::wire {
namespace {

constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
static_assert(kNonceBytes == 24);
static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == kSealTagSize);
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == kKeyBytes);

void put_u32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put_u64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint64_t get(const std::uint8_t* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= std::uint64_t{p[i]} << (8 * i);
  return v;
}

}  // namespace

bool crypto_ready() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

Key random_key() {
  (void)crypto_ready();
  Key k;
  randombytes_buf(k.data(), k.size());
  return k;
}

Key derive_key(const Key& secret, std::uint64_t id, const char* context) {
  static_assert(crypto_kdf_KEYBYTES == kKeyBytes);
  Key k;
  crypto_kdf_derive_from_key(k.data(), k.size(), id, context, secret.data());
  return k;
}

Key pair_key(const Key& master, std::uint32_t a, std::uint32_t b) {
  // Ordered, so that both ends derive the same key.
  const std::uint32_t lo = std::min(a, b), hi = std::max(a, b);
  return derive_key(master, std::uint64_t{lo} | (std::uint64_t{hi} << 32), "mspair__");
}

static_assert(crypto_kx_PUBLICKEYBYTES == kKxKeyBytes && crypto_kx_SECRETKEYBYTES == kKxKeyBytes);
static_assert(crypto_kx_SEEDBYTES == kKeyBytes && crypto_kx_SESSIONKEYBYTES == kKeyBytes);

KxKeyPair kx_keypair() {
  (void)crypto_ready();
  KxKeyPair p;
  crypto_kx_keypair(p.public_key.data(), p.secret_key.data());
  return p;
}

KxKeyPair kx_seed_keypair(const Key& seed) {
  (void)crypto_ready();
  KxKeyPair p;
  crypto_kx_seed_keypair(p.public_key.data(), p.secret_key.data(), seed.data());
  return p;
}

// The leader is crypto_kx's server, the joiner its client: the server's tx key is the
// client's rx key.
Result<Key> kx_leader_seal_key(const KxKeyPair& leader, const KxPublicKey& joiner) {
  Key rx, tx;
  if (crypto_kx_server_session_keys(rx.data(), tx.data(), leader.public_key.data(),
                                    leader.secret_key.data(), joiner.data()) != 0)
    return Status::error(Status::Code::kInvalidArgument, "the joiner's public key is unusable");
  return tx;
}

Result<Key> kx_joiner_open_key(const KxKeyPair& joiner, const KxPublicKey& leader) {
  Key rx, tx;
  if (crypto_kx_client_session_keys(rx.data(), tx.data(), joiner.public_key.data(),
                                    joiner.secret_key.data(), leader.data()) != 0)
    return Status::error(Status::Code::kInvalidArgument, "the leader's public key is unusable");
  return rx;
}

std::string key_to_hex(const Key& key) {
  std::string hex(2 * key.size() + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), key.data(), key.size());
  hex.pop_back();
  return hex;
}

Result<Key> key_from_hex(std::string_view hex) {
  Key k;
  std::size_t len = 0;
  const char* end = nullptr;
  if (hex.size() != 2 * k.size() ||
      sodium_hex2bin(k.data(), k.size(), hex.data(), hex.size(), nullptr, &len, &end) != 0 ||
      len != k.size())
    return Status::error(Status::Code::kInvalidArgument,
                         "a key is 64 hexadecimal digits (32 bytes)");
  return k;
}

std::array<std::uint8_t, 16> short_mac(const Key& key, ByteView data) {
  static_assert(crypto_auth_KEYBYTES == kKeyBytes);
  std::uint8_t full[crypto_auth_BYTES];
  crypto_auth(full, data.data(), data.size(), key.data());
  std::array<std::uint8_t, 16> out;
  std::memcpy(out.data(), full, out.size());
  return out;
}

namespace {

// Sizes *out for the sealed datagram and writes its header; returns where it starts.
std::uint8_t* start_sealed(std::uint8_t kind, std::uint32_t site, std::uint32_t boot,
                           std::uint64_t counter, std::size_t plain_size, Bytes* out) {
  out->resize(kSealOverhead + plain_size);
  std::uint8_t* p = out->data();
  p[0] = static_cast<std::uint8_t>(kMagic);
  p[1] = static_cast<std::uint8_t>(kMagic >> 8);
  p[2] = kVersion;
  p[3] = kind;
  put_u32(p + 4, site);
  put_u32(p + 8, boot);
  put_u64(p + 12, counter);
  return p;
}

constexpr const char* kNotAuthentic =
    "sealed datagram: authentication failed (forged, tampered with, or another session's)";

}  // namespace

void seal_datagram(const Key& key, const SealedHeader& h, ByteView plain, Bytes* out) {
  std::uint8_t* p =
      start_sealed(h.kind == kKindSealedAegisCapable ? kKindSealedAegisCapable : kKindSealed,
                   h.src_site, h.src_boot, h.counter, plain.size(), out);
  std::uint8_t nonce[kNonceBytes] = {};
  std::memcpy(nonce, p + 4, 16);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(p + kSealedHeaderSize, &clen, plain.data(),
                                             plain.size(), p, kSealedHeaderSize, nullptr, nonce,
                                             key.data());
}

Status peek_sealed(ByteView bytes, SealedHeader* h) {
  if (bytes.size() < kSealOverhead)
    return Status::error(Status::Code::kMalformed, "sealed datagram: shorter than its header");
  const std::uint8_t* p = bytes.data();
  if (get(p, 2) != kMagic || p[2] != kVersion || !is_sealed_kind(p[3]))
    return Status::error(Status::Code::kMalformed, "sealed datagram: bad header");
  h->src_site = static_cast<std::uint32_t>(get(p + 4, 4));
  h->src_boot = static_cast<std::uint32_t>(get(p + 8, 4));
  h->counter = get(p + 12, 8);
  h->kind = p[3];
  return Status::ok_status();
}

Status open_datagram(const Key& key, ByteView bytes, SealedHeader* h, Bytes* plain) {
  if (Status st = peek_sealed(bytes, h); !st.ok()) return st;
  if (h->kind == kKindSealedAegis)
    return Status::error(Status::Code::kMalformed, "sealed datagram: AEGIS-256 (kind 7)");
  std::uint8_t nonce[kNonceBytes] = {};
  std::memcpy(nonce, bytes.data() + 4, 16);
  plain->resize(bytes.size() - kSealOverhead);
  unsigned long long mlen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain->data(), &mlen, nullptr,
                                                 bytes.data() + kSealedHeaderSize,
                                                 bytes.size() - kSealedHeaderSize, bytes.data(),
                                                 kSealedHeaderSize, nonce, key.data()) != 0)
    return Status::error(Status::Code::kPermissionDenied, kNotAuthentic);
  return Status::ok_status();
}

#if defined(MSTREAM_AEGIS256_AESNI)
bool aegis_available() {
  // The test libsodium makes before it takes this implementation (its CPU checks run in
  // sodium_init, which crypto_ready calls first).
  static const bool available =
      crypto_ready() && sodium_runtime_has_aesni() == 1 && sodium_runtime_has_avx() == 1;
  return available;
}
#else
bool aegis_available() { return false; }
#endif

AegisKey::AegisKey(const Key& pair_key, std::uint32_t site, std::uint32_t boot)
    : key_(derive_key(pair_key, std::uint64_t{site} | (std::uint64_t{boot} << 32), "msaegis_")),
      site_(site),
      boot_(boot) {}

namespace {

// The draft's AEGIS-256 nonce is 32 bytes: the sealed header's (site, boot, counter), then
// zeros.
constexpr std::size_t kAegisNonceBytes = 32;

void aegis_nonce(const std::uint8_t* header, std::uint8_t (&nonce)[kAegisNonceBytes]) {
  std::memset(nonce, 0, sizeof nonce);
  std::memcpy(nonce, header + 4, 16);
}

}  // namespace

void seal_datagram_aegis(const AegisKey& sender, std::uint64_t counter, ByteView plain,
                         Bytes* out) {
  std::uint8_t* p =
      start_sealed(kKindSealedAegis, sender.site(), sender.boot(), counter, plain.size(), out);
#if defined(MSTREAM_AEGIS256_AESNI)
  std::uint8_t nonce[kAegisNonceBytes];
  aegis_nonce(p, nonce);
  (void)mstream_aegis256_aesni_implementation.encrypt_detached(
      p + kSealedHeaderSize, p + kSealedHeaderSize + plain.size(), kSealTagSize, plain.data(),
      plain.size(), p, kSealedHeaderSize, nonce, sender.key().data());
#else
  (void)p;
  std::abort();  // REQUIRES: aegis_available()
#endif
}

Status open_datagram_aegis(const AegisKey& sender, ByteView bytes, SealedHeader* h, Bytes* plain) {
  if (Status st = peek_sealed(bytes, h); !st.ok()) return st;
  if (h->kind != kKindSealedAegis)
    return Status::error(Status::Code::kMalformed, "sealed datagram: not AEGIS-256 (kind 7)");
  if (h->src_site != sender.site() || h->src_boot != sender.boot())
    return Status::error(Status::Code::kPermissionDenied, "sealed datagram: another sender's");
  const std::size_t size = bytes.size() - kSealOverhead;
  plain->resize(size);
#if defined(MSTREAM_AEGIS256_AESNI)
  std::uint8_t nonce[kAegisNonceBytes];
  aegis_nonce(bytes.data(), nonce);
  if (mstream_aegis256_aesni_implementation.decrypt_detached(
          plain->data(), bytes.data() + kSealedHeaderSize, size,
          bytes.data() + kSealedHeaderSize + size, kSealTagSize, bytes.data(), kSealedHeaderSize,
          nonce, sender.key().data()) != 0)
    return Status::error(Status::Code::kPermissionDenied, kNotAuthentic);
  return Status::ok_status();
#else
  std::abort();  // REQUIRES: aegis_available()
#endif
}

void seal_siv(const Key& key, std::size_t ad_size, ByteView plain, Bytes* out) {
  out->resize(ad_size + kNonceBytes + plain.size() + kSealTagSize);
  std::uint8_t* nonce = out->data() + ad_size;
  // The hash's key is derived, so that it is never the cipher's own key.
  const Key nonce_key = derive_key(key, 1, "msnonce_");
  crypto_generichash(nonce, kNonceBytes, plain.data(), plain.size(), nonce_key.data(),
                     nonce_key.size());
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + kNonceBytes, &clen, plain.data(), plain.size(),
                                             out->data(), ad_size, nullptr, nonce, key.data());
}

Status open_siv(const Key& key, std::size_t ad_size, ByteView bytes, Bytes* plain) {
  if (bytes.size() < ad_size + kNonceBytes + kSealTagSize)
    return Status::error(Status::Code::kMalformed, "sealed message: too short");
  const std::uint8_t* nonce = bytes.data() + ad_size;
  plain->resize(bytes.size() - ad_size - kNonceBytes - kSealTagSize);
  unsigned long long mlen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain->data(), &mlen, nullptr, nonce + kNonceBytes,
                                                 bytes.size() - ad_size - kNonceBytes, bytes.data(),
                                                 ad_size, nonce, key.data()) != 0)
    return Status::error(Status::Code::kPermissionDenied,
                         "sealed message: authentication failed (another session's secret?)");
  return Status::ok_status();
}

}  // namespace mstream::wire
