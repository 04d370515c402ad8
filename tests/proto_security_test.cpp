// Secured transports (Transport::set_master_key, set_pair_key; doc/security.md): sealed traffic
// still keeps every guarantee, and what an attacker sends or replays is counted and never reaches
// a channel.
#include <gtest/gtest.h>

#include <functional>

#include "proto/keyring.hpp"
#include "proto/replay_window.hpp"
#include "proto/transport.hpp"
#include "proto_test_cluster.hpp"
#include "wire/crypto.hpp"
#include "wire/datagram.hpp"
#include "wire/join.hpp"

namespace mstream::proto {
namespace {

using namespace testing;  // Cluster, one_to, pattern, kA, kB, kAB

wire::Key key_of(std::uint8_t b) {
  wire::Key k;
  k.fill(b);
  return k;
}

Cluster secured_pair(const wire::Key& ka, const wire::Key& kb) {
  Cluster c({kA, kB});
  c[kA].set_master_key(ka);
  c[kB].set_master_key(kb);
  EXPECT_TRUE(c[kB].open_stream(200).ok());
  EXPECT_TRUE(c[kA].open_stream(100).ok());
  return c;
}

TEST(SecuredTransport, DeliversOnceInOrderAndEveryDatagramIsSealed) {
  Cluster c = secured_pair(key_of(7), key_of(7));
  c.lose = [n = 0](const OutDatagram&) mutable { return ++n % 5 == 0; };
  for (Seq s = 1; s <= 200; ++s) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(s * 53 % 3000, s)).ok());
  ASSERT_TRUE(c.settle());
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(200));
  for (const Delivery& d : c.delivered[kB]) EXPECT_EQ(d.payload, pattern(d.seq * 53 % 3000, d.seq));
  for (const OutDatagram& d : c.sent) {
    ASSERT_TRUE(wire::is_sealed_kind(static_cast<std::uint8_t>(wire::datagram_kind(d.bytes))));
    wire::DecodedDatagram plain;
    EXPECT_FALSE(wire::decode_datagram(d.bytes, &plain).ok());  // nothing readable travels
  }
  EXPECT_EQ(c[kB].stats().forged_in, 0u);
  EXPECT_EQ(c[kB].stats().replayed_in, 0u);
}

// Both ends open AEGIS-256: after the first exchange (XChaCha20-Poly1305 saying so) they
// seal with it; an end that does not (TransportConfig::aes off, or a CPU without AES
// instructions) is answered in XChaCha20-Poly1305 for as long as it says so.
TEST(SecuredTransport, PeersThatBothOpenAegisSealWithItAndTheOthersDoNot) {
  if (!wire::aegis_available()) GTEST_SKIP() << "this CPU has no AES-NI and AVX for AEGIS-256";
  for (bool b_aes : {true, false}) {
    TransportConfig b_cfg;
    b_cfg.aes = b_aes;
    Cluster c({kA, kB});
    c.restart(kB, 0, b_cfg);
    c[kA].set_master_key(key_of(5));
    c[kB].set_master_key(key_of(5));
    ASSERT_TRUE(c[kB].open_stream(200).ok());
    ASSERT_TRUE(c[kA].open_stream(100).ok());
    c.lose = [n = 0](const OutDatagram&) mutable { return ++n % 7 == 0; };
    for (Seq s = 1; s <= 100; ++s) {
      ASSERT_TRUE(c.append(kA, kAB, kB, pattern(500, s)).ok());
      ASSERT_TRUE(c.append(kB, {200, 100}, kA, pattern(50, s)).ok());
    }
    ASSERT_TRUE(c.settle());
    ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(100));
    ASSERT_EQ(c.delivered_seqs(kA, {200, 100}), one_to(100));
    std::size_t aegis = 0;
    for (const OutDatagram& d : c.sent) {
      const std::uint8_t kind = wire::datagram_kind(d.bytes);
      if (!b_aes) {
        EXPECT_EQ(kind, d.to == kB ? wire::kKindSealedAegisCapable : wire::kKindSealed);
      }
      aegis += kind == wire::kKindSealedAegis;
    }
    if (b_aes) {
      EXPECT_GT(aegis, c.sent.size() / 2);
    }
    EXPECT_EQ(c[kA].stats().forged_in + c[kB].stats().forged_in, 0u);
  }
}

// The seal authenticates every byte, so what it carries has no checksum; a plain datagram
// without one is refused by a secured transport as unsealed, and by an unsecured one as
// damaged.
TEST(SecuredTransport, WhatItSealsCarriesNoChecksum) {
  const wire::Key master = key_of(6);
  TransportConfig cfg;
  cfg.aes = false;  // XChaCha20-Poly1305 under the pair key itself, for the test to open
  Cluster c({kA, kB}, cfg);
  c[kA].set_master_key(master);
  c[kB].set_master_key(master);
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  for (Seq s = 1; s <= 10; ++s) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(700, s)).ok());
  ASSERT_TRUE(c.settle());
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(10));
  std::size_t opened = 0;
  for (const OutDatagram& d : c.sent) {
    if (d.to != kB) continue;
    wire::SealedHeader h;
    wire::Bytes plain;
    ASSERT_TRUE(wire::open_datagram(wire::pair_key(master, kA, kB), d.bytes, &h, &plain).ok());
    EXPECT_EQ(wire::Bytes(plain.begin() + wire::kCrcOffset, plain.begin() + wire::kCrcOffset + 4),
              wire::Bytes(4, 0));
    wire::DecodedDatagram dd;
    EXPECT_TRUE(wire::decode_datagram(plain, &dd, wire::Integrity::kSealed).ok());
    if (++opened > 1) continue;
    const TransportStats before = c[kB].stats();
    EXPECT_FALSE(c[kB].on_datagram(plain, c.now).ok());
    EXPECT_EQ(c[kB].stats().unsealed_in, before.unsealed_in + 1);
    Transport unsecured(kB, {});
    EXPECT_EQ(unsecured.on_datagram(plain, c.now).code(), Status::Code::kMalformed);
    EXPECT_EQ(unsecured.stats().malformed_in, 1u);
  }
  EXPECT_GT(opened, 0u);
}

TEST(SecuredTransport, AnotherSessionsKeyIsForgedAndNothingIsDelivered) {
  Cluster c = secured_pair(key_of(1), key_of(2));
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(10, 1)).ok());
  c.run_for(kSecond);
  EXPECT_TRUE(c.delivered[kB].empty());
  EXPECT_GT(c[kB].stats().forged_in, 0u);
  EXPECT_EQ(c[kB].stats().messages_delivered, 0u);
}

TEST(SecuredTransport, TamperedUnsealedAndReplayedDatagramsAreDroppedAndCounted) {
  Cluster c = secured_pair(key_of(9), key_of(9));
  for (Seq s = 1; s <= 20; ++s) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(100, s)).ok());
  ASSERT_TRUE(c.settle());
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(20));
  const TransportStats before = c[kB].stats();
  std::vector<OutDatagram> to_b;
  for (const OutDatagram& d : c.sent)
    if (d.to == kB) to_b.push_back(d);
  ASSERT_FALSE(to_b.empty());

  // Replayed: every datagram A ever sent B, again.
  for (const OutDatagram& d : to_b) EXPECT_FALSE(c[kB].on_datagram(d.bytes, c.now).ok());
  EXPECT_EQ(c[kB].stats().replayed_in - before.replayed_in, to_b.size());

  // Tampered with: each bit position of one datagram flipped in turn, the header included.
  wire::Bytes bytes = to_b.front().bytes;
  std::uint64_t tampered = 0;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    wire::Bytes t = bytes;
    t[i] ^= static_cast<std::uint8_t>(1u << (i % 8));
    EXPECT_FALSE(c[kB].on_datagram(t, c.now).ok()) << "byte " << i;
    ++tampered;
  }
  const TransportStats after = c[kB].stats();
  EXPECT_EQ(after.forged_in + after.unsealed_in - before.forged_in - before.unsealed_in, tampered);
  EXPECT_GT(after.forged_in, before.forged_in);

  // Unsealed: a well-formed plain datagram, as an unsecured peer (or a forger) would send.
  wire::Bytes plain;
  wire::encode_header({kA, kB, 1000}, &plain);
  wire::encode_data(100, 200, 21, pattern(5, 21), &plain, {0, 0, 20});
  wire::seal(&plain);
  EXPECT_FALSE(c[kB].on_datagram(plain, c.now).ok());
  EXPECT_EQ(c[kB].stats().unsealed_in, after.unsealed_in + 1);

  // None of it reached the channel, which goes on as before.
  c.run_for(kSecond);
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(20));
  EXPECT_EQ(c[kB].stats().messages_delivered, 20u);
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(100, 21)).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(21));
}

TEST(SecuredTransport, ASealAndTheHeaderInsideMustNameTheSameSender) {
  Cluster c({kA, kB, kC});
  for (SiteId s : {kA, kB, kC}) c[s].set_master_key(key_of(3));
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  // C holds its key with B, but claims to be A inside: the sealed header says C.
  wire::Bytes plain;
  wire::encode_header({kA, kB, 1}, &plain);
  wire::encode_data(100, 200, 1, pattern(5, 1), &plain);
  wire::seal(&plain);
  wire::Bytes sealed;
  wire::seal_datagram(wire::pair_key(key_of(3), kC, kB), {kC, 0, 1}, plain, &sealed);
  EXPECT_FALSE(c[kB].on_datagram(sealed, c.now).ok());
  EXPECT_EQ(c[kB].stats().malformed_in, 1u);
  EXPECT_EQ(c[kB].stats().messages_delivered, 0u);
}

// Members keyed as the leader keys them: each holds the keys of its own pairs only.
Cluster keyed_members(const wire::Key& master) {
  TransportConfig cfg;
  cfg.aes = false;  // XChaCha20-Poly1305 under the pair key itself, for the test to open
  Cluster c({kA, kB, kC}, cfg);
  for (SiteId s : {kA, kB, kC})
    for (SiteId p : {kA, kB, kC})
      if (p != s) c[s].set_pair_key(p, wire::pair_key(master, s, p));
  EXPECT_TRUE(c[kC].open_stream(200).ok());
  return c;
}

// A in B's name, to C: the sealed header and the datagram inside both say B.
wire::Bytes as_b_to_c(const wire::Key& seal_key, std::uint64_t counter) {
  wire::Bytes plain;
  wire::encode_header({kB, kC, 1}, &plain);
  wire::encode_data(100, 200, 1, pattern(5, 1), &plain);
  wire::seal(&plain);
  wire::Bytes sealed;
  wire::seal_datagram(seal_key, {kB, 0, counter}, plain, &sealed);
  return sealed;
}

TEST(PairKeys, EachPairSealsUnderItsOwnKeyAndTheOthersCannotOpenIt) {
  const wire::Key master = key_of(4);
  Cluster c = keyed_members(master);
  ASSERT_TRUE(c.append(kA, {100, 200}, kC, pattern(30, 1)).ok());
  ASSERT_TRUE(c.settle());
  ASSERT_EQ(c.delivered_seqs(kC, {100, 200}), one_to(1));
  std::size_t to_c = 0;
  for (const OutDatagram& d : c.sent) {
    if (d.to != kC) continue;
    ++to_c;
    wire::SealedHeader h;
    wire::Bytes plain;
    EXPECT_TRUE(wire::open_datagram(wire::pair_key(master, kA, kC), d.bytes, &h, &plain).ok());
    // Neither B's keys (with A, with C) nor the master itself open what A sends C.
    for (const wire::Key& k :
         {wire::pair_key(master, kA, kB), wire::pair_key(master, kB, kC), master})
      EXPECT_FALSE(wire::open_datagram(k, d.bytes, &h, &plain).ok());
  }
  EXPECT_GT(to_c, 0u);
}

TEST(PairKeys, ADatagramSealedByOneMemberInAnothersNameIsForged) {
  const wire::Key master = key_of(4);
  Cluster c = keyed_members(master);
  // A seals in B's name under each key it has: its own with C, and its own with B.
  std::uint64_t counter = 0;
  for (const wire::Key& k : {wire::pair_key(master, kA, kC), wire::pair_key(master, kA, kB)})
    EXPECT_EQ(c[kC].on_datagram(as_b_to_c(k, ++counter), c.now).code(),
              Status::Code::kPermissionDenied);
  EXPECT_EQ(c[kC].stats().forged_in, 2u);
  c.run_for(kSecond);
  EXPECT_EQ(c[kC].stats().messages_delivered, 0u);
  // B's own, under its key with C, is taken.
  EXPECT_TRUE(c[kC].on_datagram(as_b_to_c(wire::pair_key(master, kB, kC), ++counter), c.now).ok());
  c.run_for(kSecond);
  EXPECT_EQ(c[kC].stats().messages_delivered, 1u);
}

TEST(PairKeys, ASenderWhoseKeyHasNotComeIsUnknownNotForgedAndIsHeardOnceItComes) {
  const wire::Key master = key_of(6);
  Cluster c({kA, kB});
  c[kA].set_pair_key(kB, wire::pair_key(master, kA, kB));
  c[kB].set_pair_key(kC, wire::pair_key(master, kB, kC));  // secured, but no key for A yet
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(10, 1)).ok());
  c.run_for(kSecond);
  EXPECT_TRUE(c.delivered[kB].empty());
  EXPECT_GT(c[kB].stats().unknown_site_in, 0u);
  EXPECT_EQ(c[kB].stats().forged_in, 0u);
  // The leader's PeerUpdate about A arrives: A's retransmissions get through.
  c[kB].set_pair_key(kA, wire::pair_key(master, kA, kB));
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(1));
  // A leaves: its key goes, and what still comes in its name is dropped unopened.
  c[kB].expel_site(kA);
  EXPECT_FALSE(c[kB].pair_key(kA).has_value());
  const std::uint64_t forged = c[kB].stats().forged_in;
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(10, 2)).ok());
  c.run_for(kSecond);
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(1));
  EXPECT_EQ(c[kB].stats().forged_in, forged);
}

// The leader's process derives what each member is given: both ends seal and open alike, a
// third member opens nothing of theirs, and a dropped key opens nothing more.
TEST(Keyring, TheMastersDerivedKeysAndTheGivenOnesAgree) {
  const wire::Key master = key_of(8);
  Keyring leader(0, false), member(kA, false), third(kB, false);
  leader.set_master(master);
  member.set(0, wire::pair_key(master, kA, 0));
  third.set(0, wire::pair_key(master, kB, 0));
  const wire::Bytes plain = pattern(40, 1);
  wire::Bytes sealed, opened;
  wire::SealedHeader h;
  ASSERT_TRUE(leader.seal(kA, 3, 1, false, plain, &sealed));
  ASSERT_TRUE(member.open(sealed, &h, &opened).ok());
  EXPECT_EQ(opened, plain);
  EXPECT_EQ(h.src_site, 0u);
  EXPECT_EQ(third.open(sealed, &h, &opened).code(), Status::Code::kPermissionDenied);
  ASSERT_TRUE(member.seal(0, 0, 1, false, plain, &sealed));
  ASSERT_TRUE(leader.open(sealed, &h, &opened).ok());
  EXPECT_FALSE(member.seal(kB, 0, 2, false, plain, &sealed));  // no key with B: nothing
  member.drop(0);
  ASSERT_TRUE(leader.seal(kA, 3, 2, false, plain, &sealed));
  EXPECT_EQ(member.open(sealed, &h, &opened).code(), Status::Code::kNotFound);
}

// A member lying in its own name (doc/security.md, "Members that lie"): C holds its keys as
// any member does, so only where its frames come from can betray them.
wire::Bytes from_c(std::uint64_t pn, const std::function<void(wire::Bytes*)>& frames) {
  wire::Bytes plain;
  wire::encode_header({kC, kB, pn}, &plain);
  frames(&plain);
  wire::seal(&plain);
  return plain;
}

constexpr StreamId kPinBit = 1ull << 62;
SiteId pin(StreamId from) {
  return (from & kPinBit) ? static_cast<SiteId>(from) : Transport::kNoPin;
}

TEST(MemberLies, DataInTheNameOfASenderPinnedElsewhereIsAnImpostor) {
  Cluster c({kA, kB, kC});
  c[kB].set_sender_pin(pin);
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  const StreamId a_control = kPinBit | kA;
  // C speaks for A's control stream, numbering as A would.
  wire::Bytes lie = from_c(
      1, [&](wire::Bytes* out) { wire::encode_data(a_control, 200, 1, pattern(8, 1), out); });
  ASSERT_TRUE(c[kB].on_datagram(lie, c.now).ok());
  c.run_for(kSecond);
  EXPECT_EQ(c[kB].stats().impostor_frames, 1u);
  EXPECT_TRUE(c.delivered[kB].empty());
  // A's own first message is the first one, as if C had said nothing; a mobile sender's
  // message is taken from any site (what per-site keys would close, doc/security.md).
  ASSERT_TRUE(c.append(kA, {a_control, 200}, kB, pattern(9, 1)).ok());
  ASSERT_TRUE(c.settle());
  ASSERT_EQ(c.delivered_seqs(kB, {a_control, 200}), one_to(1));
  EXPECT_EQ(c.delivered[kB].front().payload, pattern(9, 1));
  ASSERT_TRUE(c[kB]
                  .on_datagram(from_c(2,
                                      [](wire::Bytes* out) {
                                        wire::encode_data(300, 200, 1, pattern(4, 1), out);
                                      }),
                               c.now)
                  .ok());
  c.run_for(kSecond);
  EXPECT_EQ(c.delivered_seqs(kB, {300, 200}), one_to(1));
  EXPECT_EQ(c[kB].stats().impostor_frames, 1u);
}

TEST(MemberLies, AcksAndRefusalsAreTakenOnlyFromTheSiteTheMessagesGoTo) {
  Cluster c({kA, kB, kC});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  c.lose = [](const OutDatagram&) { return true; };  // nothing reaches B for now
  for (Seq s = 1; s <= 5; ++s) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(20, s)).ok());
  c.run_for(100 * kMillisecond);
  // C says B consumed all five, then that B refuses the third: both would lose messages.
  wire::Bytes plain;
  wire::encode_header({kC, kA, 1}, &plain);
  wire::encode_consumed(kAB.from, kAB.to, 5, &plain);
  wire::encode_reject(kAB.from, kAB.to, 3, wire::RejectReason::kTooLarge, &plain);
  wire::seal(&plain);
  ASSERT_TRUE(c[kA].on_datagram(plain, c.now).ok());
  EXPECT_EQ(c[kA].stats().misdirected_acks, 2u);
  EXPECT_EQ(c[kA].stats().messages_released, 0u);
  Rejected r;
  EXPECT_FALSE(c[kA].poll_rejected(&r));
  c.lose = nullptr;
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(5));
  EXPECT_EQ(c[kA].stats().messages_released, 5u);
}

// A repeated datagram must not carry a message its receiver has since consumed, with the
// floor of its first sending: a receiver that lost its state would take it again (found by
// `mstream sim --hostile`, seed 30).
TEST(Repeats, LeaveOutWhatWasReleasedAndCarryTodaysFloor) {
  Cluster c({kA, kB, kC});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  ASSERT_TRUE(c[kC].open_stream(200).ok());
  // The first copy of messages 1..2 goes to B and is lost; the receiver moves to C, where
  // both are consumed and released.
  c.lose = [](const OutDatagram& d) { return d.to == kB; };
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(10, 1)).ok());
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(10, 2)).ok());
  c.transmit();
  c.deliver();
  c[kA].relocate_receiver(kAB.to, kC);
  c.run_for(kSecond);
  ASSERT_EQ(c.delivered_seqs(kC, kAB), one_to(2));
  ASSERT_EQ(c[kA].stats().messages_released, 2u);
  // The path to B goes on repeating its lost datagrams: what they carry now.
  c.sent.clear();
  c.run_for(3 * kSecond);
  std::size_t repeats = 0;
  for (const OutDatagram& d : c.sent) {
    if (d.to != kB) continue;
    wire::DecodedDatagram dd;
    ASSERT_TRUE(wire::decode_datagram(d.bytes, &dd).ok());
    if (dd.header.packet_number == 0) continue;
    ++repeats;
    for (const wire::Frame& f : dd.frames)
      EXPECT_NE(f.type, wire::FrameType::kData) << "a released message was repeated";
  }
  EXPECT_GT(repeats, 0u);
}

TEST(ReplayWindow, AcceptsEachCounterOnceWithinTheWindowAndNothingOlder) {
  ReplayWindow w;
  EXPECT_FALSE(w.accept(0, 0));  // counters start at 1
  EXPECT_TRUE(w.accept(0, 5));
  EXPECT_FALSE(w.accept(0, 5));
  EXPECT_TRUE(w.accept(0, 3));  // late, but within the window
  EXPECT_FALSE(w.accept(0, 3));
  EXPECT_TRUE(w.accept(0, 5 + ReplayWindow::kSize));
  EXPECT_FALSE(w.accept(0, 4));  // fell out of the window: taken for a replay
  EXPECT_TRUE(w.accept(0, 5 + ReplayWindow::kSize - 1));  // within the window, unseen
  EXPECT_TRUE(w.accept(0, 100000));
  EXPECT_FALSE(w.accept(0, 100000));
  EXPECT_TRUE(w.accept(0, 99999));
}

TEST(ReplayWindow, KeepaliveCountersHaveTheirOwnLaneAndANewBootStartsAfresh) {
  ReplayWindow w;
  EXPECT_TRUE(w.accept(0, wire::kKeepaliveCounters + 1));
  EXPECT_TRUE(w.accept(0, 1));  // the node's own counters are not behind the keepalives'
  EXPECT_FALSE(w.accept(0, wire::kKeepaliveCounters + 1));
  EXPECT_TRUE(w.accept(0, wire::kKeepaliveCounters + 2));
  EXPECT_TRUE(w.accept(1, 1));   // a restarted sender counts again from 1
  EXPECT_FALSE(w.accept(0, 2));  // its older boot is gone
  EXPECT_FALSE(w.accept(1, 1));
}

}  // namespace
}  // namespace mstream::proto
