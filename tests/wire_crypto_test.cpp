// The sealed datagram and the sealed join (wire/crypto.hpp, wire/join.hpp).
#include <gtest/gtest.h>

#include <algorithm>

#include "wire/crypto.hpp"
#include "wire/datagram.hpp"
#include "wire/join.hpp"

namespace mstream::wire {
namespace {

Key key_of(std::uint8_t b) {
  Key k;
  k.fill(b);
  return k;
}

Bytes some_datagram() {
  Bytes d;
  encode_header({1, 2, 7}, &d);
  const Bytes payload(300, 0xAB);
  encode_data(10, 20, 3, payload, &d, {0, 0, 2});
  seal(&d);
  return d;
}

TEST(Crypto, ASealedDatagramOpensUnderItsKeyOnly) {
  ASSERT_TRUE(crypto_ready());
  const Bytes plain = some_datagram();
  Bytes sealed;
  seal_datagram(key_of(1), {1, 4, 99}, plain, &sealed);
  EXPECT_EQ(sealed.size(), plain.size() + kSealOverhead);
  EXPECT_EQ(datagram_kind(sealed), kKindSealed);
  SealedHeader h;
  Bytes opened;
  ASSERT_TRUE(open_datagram(key_of(1), sealed, &h, &opened).ok());
  EXPECT_EQ(opened, plain);
  EXPECT_EQ(h.src_site, 1u);
  EXPECT_EQ(h.src_boot, 4u);
  EXPECT_EQ(h.counter, 99u);
  Status other = open_datagram(key_of(2), sealed, &h, &opened);
  EXPECT_EQ(other.code(), Status::Code::kPermissionDenied);
}

TEST(Crypto, EveryTamperedByteIsRefused) {
  Bytes sealed;
  seal_datagram(key_of(1), {1, 0, 5}, some_datagram(), &sealed);
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    Bytes t = sealed;
    t[i] ^= 0x40;
    SealedHeader h;
    Bytes opened;
    EXPECT_FALSE(open_datagram(key_of(1), t, &h, &opened).ok()) << "byte " << i;
  }
  for (std::size_t n = 0; n < kSealOverhead + 4; ++n) {
    SealedHeader h;
    Bytes opened;
    EXPECT_FALSE(open_datagram(key_of(1), ByteView(sealed).first(n), &h, &opened).ok());
  }
}

TEST(Crypto, AnAegisSealedDatagramOpensUnderItsSendersKeyOnly) {
  if (!aegis_available()) GTEST_SKIP() << "this CPU has no AES-NI and AVX for AEGIS-256";
  const Bytes plain = some_datagram();
  const AegisKey sender(key_of(1), 1, 4);
  Bytes sealed;
  seal_datagram_aegis(sender, 99, plain, &sealed);
  EXPECT_EQ(sealed.size(), plain.size() + kSealOverhead);
  EXPECT_EQ(datagram_kind(sealed), kKindSealedAegis);
  SealedHeader h;
  Bytes opened;
  ASSERT_TRUE(open_datagram_aegis(AegisKey(key_of(1), 1, 4), sealed, &h, &opened).ok());
  EXPECT_EQ(opened, plain);
  EXPECT_EQ(h.src_site, 1u);
  EXPECT_EQ(h.src_boot, 4u);
  EXPECT_EQ(h.counter, 99u);
  EXPECT_EQ(h.kind, kKindSealedAegis);
  // Another session's key, another sender's (or boot's) subkey, the other cipher: refused.
  EXPECT_EQ(open_datagram_aegis(AegisKey(key_of(2), 1, 4), sealed, &h, &opened).code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(open_datagram_aegis(AegisKey(key_of(1), 1, 5), sealed, &h, &opened).code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(open_datagram(key_of(1), sealed, &h, &opened).code(), Status::Code::kMalformed);
  // The subkey is the sender's alone: the pair key itself does not open it either.
  EXPECT_NE(AegisKey(key_of(1), 1, 4).key(), key_of(1));
  EXPECT_NE(AegisKey(key_of(1), 1, 4).key(), AegisKey(key_of(1), 2, 4).key());
  // Every bit of header, ciphertext and tag is authenticated.
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes t = sealed;
      t[i] ^= static_cast<std::uint8_t>(1u << bit);
      EXPECT_FALSE(open_datagram_aegis(sender, t, &h, &opened).ok()) << i << ":" << bit;
    }
  }
  for (std::size_t n = 0; n < sealed.size(); ++n)
    EXPECT_FALSE(open_datagram_aegis(sender, ByteView(sealed).first(n), &h, &opened).ok()) << n;
  Bytes longer = sealed;
  longer.push_back(0);
  EXPECT_FALSE(open_datagram_aegis(sender, longer, &h, &opened).ok());
}

// The nonce is the header's (site, boot, counter): one plaintext under two counters seals to
// unrelated bytes, and each opens only under its own header.
TEST(Crypto, AegisSealsDifferUnderEachCounter) {
  if (!aegis_available()) GTEST_SKIP() << "this CPU has no AES-NI and AVX for AEGIS-256";
  const AegisKey sender(key_of(3), 7, 0);
  Bytes a, b;
  seal_datagram_aegis(sender, 1, some_datagram(), &a);
  seal_datagram_aegis(sender, 2, some_datagram(), &b);
  ASSERT_EQ(a.size(), b.size());
  std::size_t same = 0;
  for (std::size_t i = kSealedHeaderSize; i < a.size(); ++i) same += a[i] == b[i];
  EXPECT_LT(same, (a.size() - kSealedHeaderSize) / 16);
  // b's body under a's header (its counter): refused.
  std::copy(a.begin(), a.begin() + kSealedHeaderSize, b.begin());
  SealedHeader h;
  Bytes opened;
  EXPECT_FALSE(open_datagram_aegis(sender, b, &h, &opened).ok());
  // An empty plaintext seals to a header and a tag, and opens.
  seal_datagram_aegis(sender, 3, {}, &a);
  ASSERT_EQ(a.size(), kSealOverhead);
  EXPECT_TRUE(open_datagram_aegis(sender, a, &h, &opened).ok());
  EXPECT_TRUE(opened.empty());
}

TEST(Crypto, TheXChaChaKindSaysWhetherItsSenderOpensAegis) {
  Bytes sealed;
  seal_datagram(key_of(1), {1, 0, 5, kKindSealedAegisCapable}, some_datagram(), &sealed);
  EXPECT_EQ(datagram_kind(sealed), kKindSealedAegisCapable);
  SealedHeader h;
  Bytes opened;
  ASSERT_TRUE(open_datagram(key_of(1), sealed, &h, &opened).ok());
  EXPECT_EQ(h.kind, kKindSealedAegisCapable);
  EXPECT_EQ(opened, some_datagram());
}

TEST(Crypto, KeysDeriveAndPrintAsHex) {
  const Key secret = random_key();
  EXPECT_NE(secret, random_key());
  EXPECT_NE(join_key_of(secret), secret);
  EXPECT_EQ(join_key_of(secret), join_key_of(secret));
  auto back = key_from_hex(key_to_hex(secret));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, secret);
  EXPECT_FALSE(key_from_hex("abc").ok());
  EXPECT_FALSE(key_from_hex(std::string(64, 'z')).ok());
}

TEST(Crypto, EachPairHasItsOwnKeyWhicheverEndDerivesIt) {
  const Key master = key_of(0x42);
  EXPECT_EQ(pair_key(master, 1, 2), pair_key(master, 2, 1));
  EXPECT_NE(pair_key(master, 1, 2), pair_key(master, 1, 3));
  EXPECT_NE(pair_key(master, 1, 2), pair_key(master, 0, 2));
  EXPECT_NE(pair_key(master, 1, 2), master);
  // The same pair of another session's master: another key.
  EXPECT_NE(pair_key(master, 1, 2), pair_key(key_of(0x43), 1, 2));
  // A shell's (ids from 2^24) with the leader, and two ids that share their low bits.
  EXPECT_NE(pair_key(master, 0, 1u << 24), pair_key(master, 0, 1));
  EXPECT_NE(pair_key(master, 0, 0xFFFFFFFFu), pair_key(master, 1, 0xFFFFFFFFu));
}

// The join's key exchange: the leader and the joiner compute one key, and only they: another
// joiner's pair, or another leader pair pinned, computes another.
TEST(Crypto, TheKeyExchangeAgreesOnlyBetweenItsTwoPairs) {
  const KxKeyPair leader = kx_seed_keypair(key_of(1));
  const KxKeyPair joiner = kx_seed_keypair(key_of(2));
  const KxKeyPair other = kx_seed_keypair(key_of(3));
  EXPECT_EQ(kx_seed_keypair(key_of(1)).public_key, leader.public_key);  // deterministic
  EXPECT_NE(kx_keypair().public_key, kx_keypair().public_key);
  auto seal = kx_leader_seal_key(leader, joiner.public_key);
  auto open = kx_joiner_open_key(joiner, leader.public_key);
  ASSERT_TRUE(seal.ok() && open.ok());
  EXPECT_EQ(*seal, *open);
  EXPECT_NE(*kx_joiner_open_key(other, leader.public_key), *seal);
  EXPECT_NE(*kx_joiner_open_key(joiner, other.public_key), *seal);
  // A public key no exchange can be made with (the identity point) is refused.
  EXPECT_FALSE(kx_leader_seal_key(leader, KxPublicKey{}).ok());
}

TEST(SealedJoin, ARequestCarriesTheJoinersPublicKey) {
  JoinMessage req;
  req.op = JoinMessage::Op::kRequest;
  req.nonce = 9;
  req.has_cookie = true;
  req.cookie.fill(1);
  req.has_public = true;
  req.public_key = kx_seed_keypair(key_of(7)).public_key;
  Bytes b;
  encode_sealed_join(req, key_of(5), &b);
  auto r = decode_sealed_join(b, key_of(5));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->has_public);
  EXPECT_EQ(r->public_key, req.public_key);
  Bytes plain;
  encode_join(req, &plain);
  for (std::size_t n = 0; n < plain.size(); ++n)
    EXPECT_FALSE(decode_join(ByteView(plain).first(n)).ok()) << n;
  plain.push_back(0);
  EXPECT_FALSE(decode_join(plain).ok());  // trailing bytes (and the checksum) refused
}

TEST(SealedJoin, RoundTripsUnderTheJoinKeyAndNotAnother) {
  JoinMessage m;
  m.op = JoinMessage::Op::kAccept;
  m.nonce = 0x1234567890ull;
  m.site = 42;
  m.has_key = true;
  m.key = key_of(9);
  Bytes b;
  encode_sealed_join(m, key_of(5), &b);
  EXPECT_TRUE(is_join(b));
  auto nonce = sealed_join_nonce(b);
  ASSERT_TRUE(nonce.ok());
  EXPECT_EQ(*nonce, m.nonce);
  auto d = decode_sealed_join(b, key_of(5));
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->site, 42u);
  EXPECT_TRUE(d->has_key);
  EXPECT_EQ(d->key, key_of(9));
  EXPECT_EQ(decode_sealed_join(b, key_of(6)).status().code(), Status::Code::kPermissionDenied);
  // The clear nonce is authenticated: changing it breaks the seal.
  Bytes t = b;
  t[5] ^= 1;
  EXPECT_FALSE(decode_sealed_join(t, key_of(5)).ok());
  // The same message seals to the same bytes (synthetic nonce); another to others.
  Bytes again;
  encode_sealed_join(m, key_of(5), &again);
  EXPECT_EQ(again, b);
  m.site = 43;
  encode_sealed_join(m, key_of(5), &again);
  EXPECT_FALSE(std::equal(again.begin() + 12, again.begin() + 36, b.begin() + 12));
}

TEST(SealedJoin, HelloChallengeAndCookieRequestRoundTrip) {
  JoinMessage hello;
  hello.op = JoinMessage::Op::kHello;
  hello.nonce = 77;
  Bytes b;
  encode_join(hello, &b);
  auto h = decode_join(b);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->op, JoinMessage::Op::kHello);
  JoinMessage ch;
  ch.op = JoinMessage::Op::kChallenge;
  ch.nonce = 77;
  ch.cookie.fill(3);
  encode_join(ch, &b);
  auto c = decode_join(b);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->cookie, ch.cookie);
  JoinMessage req;
  req.op = JoinMessage::Op::kRequest;
  req.nonce = 77;
  req.pid = 5;
  req.has_cookie = true;
  req.cookie.fill(3);
  encode_join(req, &b);
  auto r = decode_join(b);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->has_cookie);
  EXPECT_EQ(r->cookie, req.cookie);
  for (std::size_t n = 0; n < b.size(); ++n) EXPECT_FALSE(decode_join(ByteView(b).first(n)).ok());
}

}  // namespace
}  // namespace mstream::wire
