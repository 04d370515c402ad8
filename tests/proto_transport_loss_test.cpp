// Transport on a hostile network and across moves: fragmentation, loss, reordering,
// duplication, both retransmission classes, and re-sends to a relocated receiver.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <vector>

#include "proto/transport.hpp"
#include "proto_test_cluster.hpp"
#include "wire/datagram.hpp"

namespace mstream::proto {
namespace {

using namespace testing;  // Cluster, one_to, pattern, kA, kB, kC, kAB

TransportConfig small_mtu(RetransmissionClass rc = RetransmissionClass::kSelectiveRepeat) {
  TransportConfig cfg;
  cfg.path.mtu = 200;
  cfg.path.retransmission = rc;
  return cfg;
}

Cluster pair(TransportConfig cfg = {}) {
  Cluster c({kA, kB}, cfg);
  EXPECT_TRUE(c[kB].open_stream(200).ok());
  return c;
}

std::vector<wire::DecodedDatagram> decode_all(const std::vector<OutDatagram>& sent) {
  std::vector<wire::DecodedDatagram> out;
  for (const OutDatagram& o : sent) {
    out.emplace_back();
    EXPECT_TRUE(wire::decode_datagram(o.bytes, &out.back()).ok());
  }
  return out;
}

TEST(Transport, FragmentedMessagesRoundTrip) {
  Cluster c = pair(small_mtu());
  const std::vector<std::size_t> sizes{0, 1, 150, 170, 180, 181, 199, 200, 201, 1000, 5000, 65536};
  for (std::size_t i = 0; i < sizes.size(); ++i)
    ASSERT_TRUE(c.append(kA, kAB, kB, pattern(sizes[i], i)).ok());
  ASSERT_TRUE(c.settle());
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(sizes.size()));
  for (const Delivery& d : c.delivered[kB])
    EXPECT_EQ(d.payload, pattern(sizes[d.seq - 1], d.seq - 1));
  bool fragments = false;
  for (const auto& d : decode_all(c.sent)) {
    for (const wire::Frame& f : d.frames) fragments |= f.type == wire::FrameType::kFragment;
  }
  EXPECT_TRUE(fragments);
}

TEST(Transport, MessageThatFitsADatagramIsNeverCut) {
  Cluster c = pair();
  // Each fits an empty 1400-byte datagram whole, though not two at a time.
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(900, i)).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(6));
  for (const auto& d : decode_all(c.sent)) {
    for (const wire::Frame& f : d.frames) EXPECT_NE(f.type, wire::FrameType::kFragment);
  }
}

TEST(Transport, FragmentedMessagesSurviveLossReorderingAndDuplication) {
  for (RetransmissionClass rc :
       {RetransmissionClass::kSelectiveRepeat, RetransmissionClass::kGoBackN}) {
    Cluster c = pair(small_mtu(rc));
    // About one datagram in three, pseudo-randomly: a strict period of three can lock step
    // with a retransmission round of three datagrams and lose the same one forever.
    std::uint64_t n = 0;
    c.lose = [&n](const OutDatagram&) {
      std::uint64_t z = (++n) * 0x9E3779B97F4A7C15ull;
      z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
      return (z >> 33) % 3 == 0;
    };
    c.reverse = true;
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(700 + i, i)).ok());
    ASSERT_TRUE(c.settle(600 * kSecond)) << retransmission_class_name(rc);
    ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(10)) << retransmission_class_name(rc);
    for (const Delivery& d : c.delivered[kB]) EXPECT_EQ(d.payload, pattern(699 + d.seq, d.seq - 1));
    EXPECT_EQ(c.released_up_to(kA, kAB), 10u);
    EXPECT_GT(c[kA].stats().retransmissions, 0u);
  }
}

TEST(Transport, SelectiveRepeatRecoversFromBurstLoss) {
  Cluster c = pair();
  int n = 0;
  // The first 8 transmissions are lost, the rest arrive.
  c.lose = [&n](const OutDatagram&) { return ++n <= 8; };
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(1000, i)).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(40));
  EXPECT_EQ(c.released_up_to(kA, kAB), 40u);
}

TEST(Transport, GoBackNDiscardsOutOfOrderDatagrams) {
  TransportConfig cfg;
  cfg.path.retransmission = RetransmissionClass::kGoBackN;
  Cluster c = pair(cfg);
  c.reverse = true;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(1000, i)).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_GT(c[kB].stats().dropped_out_of_order, 0u);
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(5));
}

TEST(Transport, SelectiveRepeatKeepsOutOfOrderDatagrams) {
  Cluster c = pair();
  c.reverse = true;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(1000, i)).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c[kB].stats().dropped_out_of_order, 0u);
  EXPECT_EQ(c[kA].stats().retransmissions, 0u) << "reordering alone repeats nothing";
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(5));
}

TEST(Transport, LostConsumptionAckIsRepaired) {
  Cluster c = pair();
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(10, 0)).ok());
  // Lose everything B sends for a while: its ACKs and its CONSUMED.
  bool lossy = true;
  c.lose = [&lossy](const OutDatagram& d) { return lossy && d.to == kA; };
  c.run_for(3 * kSecond);
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(1));
  EXPECT_EQ(c.released_up_to(kA, kAB), 0u);
  lossy = false;
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.released_up_to(kA, kAB), 1u);
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(1)) << "repairs never deliver twice";
}

TEST(Transport, RelocatedReceiverGetsEveryUnconsumedMessageInOrder) {
  Cluster c({kA, kB, kC});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  c.auto_consume = false;
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(30, i)).ok());
  c.run_for(kSecond);
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(5));
  ASSERT_TRUE(c[kB].consume(kAB, 2, c.now).ok());
  c.run_for(kSecond);
  ASSERT_EQ(c.released_up_to(kA, kAB), 2u);

  // The receiver moves from B to C with its sequence state; 3..5 were delivered, not consumed.
  Result<RecvState> state = c[kB].export_recv_state(kAB);
  ASSERT_TRUE(state.ok());
  ASSERT_TRUE(c[kB].close_stream(200).ok());
  ASSERT_TRUE(c[kC].open_stream(200).ok());
  ASSERT_TRUE(c[kC].import_recv_state(kAB, *state).ok());
  c[kA].relocate_receiver(200, kC);
  for (int i = 6; i <= 7; ++i) ASSERT_TRUE(c.append(kA, kAB, kC, pattern(30, i)).ok());
  c.auto_consume = true;
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kC, kAB), (std::vector<Seq>{3, 4, 5, 6, 7}));
  for (const Delivery& d : c.delivered[kC]) EXPECT_EQ(d.payload, pattern(30, d.seq));
  EXPECT_EQ(c.released_up_to(kA, kAB), 7u);
}

TEST(Transport, ReceiverAnswersAnAlreadyConsumedMessageWithConsumed) {
  Cluster c = pair();
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(10, 0)).ok());
  c.transmit();
  c.deliver();
  c.drain();  // B delivers and consumes #1; its CONSUMED is not sent yet
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(1));
  c[kA].relocate_receiver(200, kB);  // e.g. a move that came back: A re-sends #1
  c.transmit();
  std::vector<OutDatagram> from_a, from_b;
  for (OutDatagram& o : c.in_flight()) (o.to == kB ? from_a : from_b).push_back(o);
  c.in_flight().clear();
  // A's re-send reaches B before B's CONSUMED reaches A.
  for (const OutDatagram& o : from_a) (void)c[kB].on_datagram(o.bytes, c.now);
  for (const OutDatagram& o : from_b) (void)c[kA].on_datagram(o.bytes, c.now);
  c.drain();
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(1)) << "a consumed message is never redelivered";
  EXPECT_EQ(c.released_up_to(kA, kAB), 1u);
}

// Regression (fuzz_transport, /tmp/core-findings.md F1): a CONSUMED that overtakes a re-send
// released the messages the re-send was about to read.
TEST(Transport, ConsumedAckAfterRelocationDoesNotResendReleasedMessages) {
  Cluster c = pair();
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(0, i)).ok());
  c.transmit();
  c.deliver();
  c.drain();  // B consumed 1..3
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(3));
  c[kA].relocate_receiver(200, kB);  // A will re-send 1..3 ...
  // ... but first only B has something to say, once its delayed CONSUMED is due:
  c.now += c[kB].config().path.max_ack_delay;
  c[kB].on_timeout(c.now);
  c.transmit();
  std::vector<OutDatagram> batch;
  batch.swap(c.in_flight());
  for (const OutDatagram& o : batch) {
    if (o.to == kA) (void)c[kA].on_datagram(o.bytes, c.now);  // CONSUMED up to 3
  }
  c.drain();
  EXPECT_EQ(c.released_up_to(kA, kAB), 3u);
  EXPECT_FALSE(c[kA].send_channel(kAB)->has_unsent()) << "nothing unconsumed is left to send";
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(3));
  for (const auto& d : decode_all(c.sent)) {
    for (const wire::Frame& f : d.frames) {
      if (f.type == wire::FrameType::kData) {
        EXPECT_LE(f.seq, 3u);
      }
    }
  }
}

// The sender moves while the receiver's CONSUMED for everything is lost: the new site re-sends,
// the receiver answers with CONSUMED again, and the new site is released without redelivery.
TEST(Transport, MovedSenderIsReleasedForMessagesConsumedBeforeTheMove) {
  TransportConfig cfg;
  cfg.path.initial_cwnd = 2;  // the re-send takes several round trips
  Cluster c({kA, kB, kC}, cfg);
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  for (int i = 1; i <= 6; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(1000, i)).ok());
  c.auto_consume = false;
  c.run_for(5 * kSecond);
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(6));

  // The sender moves to C; then B consumes everything, and its CONSUMED, sent to A, is lost.
  Result<SendState> s = c[kA].export_send_state(kAB);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->unconsumed.size(), 6u);
  ASSERT_TRUE(c[kC].import_send_state(kAB, *s).ok());
  ASSERT_TRUE(c[kB].consume(kAB, 6, c.now).ok());
  c.lose = [](const OutDatagram& d) {
    wire::DecodedDatagram h;
    return d.to == kA || (wire::decode_datagram(d.bytes, &h).ok() && h.header.src_site == kA);
  };
  ASSERT_TRUE(c.run_until([&] { return c.released_up_to(kC, kAB) == 6; }));
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(6));
  EXPECT_EQ(c[kC].stats().bogus_acks, 0u) << "a CONSUMED for messages the old site sent is genuine";
}

// A sender that moves takes its channel with it: the old site keeps nothing and goes idle,
// and the receiver consumes every message once, in order, whichever site sent it.
TEST(Transport, TakenSendStateLeavesNothingBehind) {
  Cluster c({kA, kB, kC});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  c.auto_consume = false;
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(100, i)).ok());
  c.run_for(kSecond);
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(4));

  Result<SendState> s = c[kA].take_send_state(kAB);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(c[kA].send_channel(kAB), nullptr);
  EXPECT_FALSE(c[kA].take_send_state(kAB).ok());
  ASSERT_TRUE(c[kC].import_send_state(kAB, *std::move(s)).ok());
  ASSERT_TRUE(c.append(kC, kAB, kB, pattern(100, 5)).ok());
  c.auto_consume = true;
  for (const Delivery& d : c.delivered[kB]) ASSERT_TRUE(c[kB].consume(d.key, d.seq, c.now).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(5));
  EXPECT_EQ(c.released_up_to(kC, kAB), 5u);
  EXPECT_TRUE(c[kA].idle());
  EXPECT_EQ(c[kA].send_channel_count(), 0u);
}

TEST(Transport, ManyChannelsUnderLossEachStayInOrder) {
  Cluster c({kA, kB}, small_mtu());
  for (StreamId s = 200; s < 206; ++s) ASSERT_TRUE(c[kB].open_stream(s).ok());
  int n = 0;
  c.lose = [&n](const OutDatagram&) { return (++n * 7) % 10 < 2; };  // 20% loss
  for (int round = 0; round < 8; ++round) {
    for (StreamId s = 200; s < 206; ++s)
      ASSERT_TRUE(c.append(kA, {100 + s % 2, s}, kB, pattern(50 + 90 * (s % 4), round)).ok());
    (void)c.step();
  }
  ASSERT_TRUE(c.settle(600 * kSecond));
  for (StreamId s = 200; s < 206; ++s) {
    ChannelKey key{100 + s % 2, s};
    EXPECT_EQ(c.delivered_seqs(kB, key), one_to(8)) << s;
    EXPECT_EQ(c.released_up_to(kA, key), 8u) << s;
  }
}

TEST(Transport, DuplicatedDatagramsDeliverOnce) {
  Cluster c = pair(small_mtu());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(500, i)).ok());
  for (int i = 0; i < 50 && !c[kA].idle(); ++i) {
    c.transmit();
    std::vector<OutDatagram> copy = c.in_flight();
    c.deliver();
    for (const OutDatagram& o : copy) (void)c[o.to].on_datagram(o.bytes, c.now);
    c.drain();
  }
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(5));
  EXPECT_GT(c[kB].stats().duplicate_packets, 0u);
}

TEST(Transport, SwitchingRetransmissionClassMidFlightStillDeliversEverything) {
  Cluster c = pair();
  int n = 0;
  c.lose = [&n](const OutDatagram&) { return ++n % 4 == 0; };
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(800, i)).ok());
  (void)c.step();
  c[kA].set_retransmission(kB, RetransmissionClass::kGoBackN);
  (void)c.step();
  c[kB].set_retransmission(kA, RetransmissionClass::kGoBackN);
  ASSERT_TRUE(c.settle(600 * kSecond));
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(20));
}

}  // namespace
}  // namespace mstream::proto
