// Transport on a clean network: per-pair order, consumption acknowledgements, back-pressure,
// rejections, local delivery, state export, and hostile datagrams.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "proto/transport.hpp"
#include "proto_test_cluster.hpp"
#include "wire/datagram.hpp"

namespace mstream::proto {
namespace {

using namespace testing;  // Cluster, one_to, pattern, kA, kB, kC, kAB

Cluster pair(TransportConfig cfg = {}) {
  Cluster c({kA, kB}, cfg);
  EXPECT_TRUE(c[kB].open_stream(200).ok());
  EXPECT_TRUE(c[kA].open_stream(100).ok());
  return c;
}

// The consumption ack of a lone message waits for a datagram to ride on (a move's control
// messages); once a quarter of a channel's bound is consumed it goes at once, or a sender
// whose buffer filled would wait max_ack_delay for it with nothing to send.
TEST(Transport, ConsumptionAcksGoAtOnceOnlyPastAQuarterOfTheBound) {
  TransportConfig cfg;
  cfg.channel.max_unconsumed_messages = 8;  // a quarter: 2
  Cluster c = pair(cfg);
  auto sent_by_b = [&c] {
    std::size_t n = 0;
    for (const OutDatagram& o : c.sent) n += o.to == kA;
    return n;
  };
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(0, 1)).ok());
  c.step();  // B consumed #1
  c.transmit();
  EXPECT_EQ(sent_by_b(), 0u) << "the ack of one message waits";
  EXPECT_EQ(c[kB].next_timeout(), c.now + cfg.path.max_ack_delay);
  // The next message comes after the burst gap: its ack is not urgent, but two consumed are.
  c.now += 2 * cfg.path.ack_burst_gap;
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(0, 2)).ok());
  c.step();  // B consumed #2
  c.transmit();
  EXPECT_EQ(sent_by_b(), 1u);
  c.deliver();
  c.drain();
  EXPECT_EQ(c.released_up_to(kA, kAB), 2u);
}

// Datagrams leave in the order their messages were made, whichever path they take (a move's
// order to its source before the leader's word to its target): both orders, so that no order
// of the path table can pass for it.
TEST(Transport, PathsWithNewDataSendInTheOrderTheirDataCame) {
  for (const bool c_first : {true, false}) {
    Cluster c({kA, kB, kC});
    ASSERT_TRUE(c[kB].open_stream(200).ok());
    ASSERT_TRUE(c[kC].open_stream(300).ok());
    const std::vector<SiteId> order =
        c_first ? std::vector<SiteId>{kC, kB} : std::vector<SiteId>{kB, kC};
    for (SiteId to : order)
      ASSERT_TRUE(c.append(kA, ChannelKey{100, to == kB ? 200u : 300u}, to, pattern(0, 1)).ok());
    c.transmit();
    std::vector<SiteId> sent;
    for (const OutDatagram& o : c.sent) sent.push_back(o.to);
    EXPECT_EQ(sent, order) << c_first;
  }
}

TEST(Transport, DeliversMessagesOnceInAppendOrder) {
  Cluster c = pair();
  for (Seq s = 1; s <= 50; ++s) {
    Result<Seq> r = c.append(kA, kAB, kB, pattern(s * 37 % 700, s));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(*r, s);
  }
  ASSERT_TRUE(c.settle());
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(50));
  for (const Delivery& d : c.delivered[kB]) EXPECT_EQ(d.payload, pattern(d.seq * 37 % 700, d.seq));
  EXPECT_EQ(c.released_up_to(kA, kAB), 50u);
  EXPECT_EQ(c[kA].send_channel(kAB)->unconsumed_count(), 0u);
  EXPECT_EQ(c[kB].stats().messages_delivered, 50u);
  EXPECT_EQ(c[kA].stats().messages_released, 50u);
}

TEST(Transport, ConsumedAckOnlyAfterConsume) {
  Cluster c = pair();
  c.auto_consume = false;
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(10, 1)).ok());
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(10, 2)).ok());
  c.run_for(5 * kSecond);
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(2));
  // The path acknowledged the datagram (the transport receipt): nothing is repeated, but the
  // sender keeps both messages, for the receiver has not consumed them.
  EXPECT_EQ(c[kA].path(kB)->outstanding(), 0u);
  std::uint64_t retransmissions = c[kA].stats().retransmissions;
  c.run_for(5 * kSecond);
  EXPECT_EQ(c[kA].stats().retransmissions, retransmissions);
  EXPECT_TRUE(c.released[kA].empty());
  EXPECT_EQ(c[kA].send_channel(kAB)->unconsumed_count(), 2u);
  EXPECT_FALSE(c[kA].idle());

  ASSERT_TRUE(c[kB].consume(kAB, 1, c.now).ok());
  c.run_for(kSecond);
  EXPECT_EQ(c.released_up_to(kA, kAB), 1u);
  EXPECT_EQ(c[kA].send_channel(kAB)->unconsumed_count(), 1u);
  ASSERT_TRUE(c[kB].consume(kAB, 2, c.now).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.released_up_to(kA, kAB), 2u);
}

TEST(Transport, ConsumeMustFollowDelivery) {
  Cluster c = pair();
  c.auto_consume = false;
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(1, 1)).ok());
  c.run_for(kSecond);
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(1));
  EXPECT_EQ(c[kB].consume({7, 200}, 1, c.now).code(), Status::Code::kNotFound);
  EXPECT_EQ(c[kB].consume(kAB, 2, c.now).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(c[kB].consume(kAB, 0, c.now).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(c[kB].consume(kAB, 1, c.now).ok());
  EXPECT_EQ(c[kB].consume(kAB, 1, c.now).code(), Status::Code::kInvalidArgument);
}

TEST(Transport, AppendRefusesInvalidStreamsAndOversizedMessages) {
  TransportConfig cfg;
  cfg.channel.max_message_bytes = 1000;
  Cluster c = pair(cfg);
  EXPECT_EQ(c.append(kA, {0, 200}, kB, pattern(1, 0)).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(c.append(kA, {100, 0}, kB, pattern(1, 0)).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(c.append(kA, kAB, kB, pattern(1001, 0)).status().code(), Status::Code::kTooLarge);
  Result<Seq> ok = c.append(kA, kAB, kB, pattern(1000, 0));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 1u) << "refused appends take no sequence number";
}

TEST(Transport, FullBufferRefusesAppendUntilReleased) {
  TransportConfig cfg;
  cfg.channel.max_unconsumed_messages = 3;
  Cluster c = pair(cfg);
  c.auto_consume = false;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(5, 0)).ok());
  EXPECT_EQ(c.append(kA, kAB, kB, pattern(5, 0)).status().code(), Status::Code::kWouldBlock);
  c.run_for(kSecond);
  // Delivered but not consumed: still full.
  EXPECT_EQ(c.append(kA, kAB, kB, pattern(5, 0)).status().code(), Status::Code::kWouldBlock);
  ASSERT_TRUE(c[kB].consume(kAB, 2, c.now).ok());
  ASSERT_TRUE(c.run_until([&] { return c.released_up_to(kA, kAB) == 2; }));
  Result<Seq> r = c.append(kA, kAB, kB, pattern(5, 0));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 4u);
}

TEST(Transport, ByteBoundRefusesAppend) {
  TransportConfig cfg;
  cfg.channel.max_unconsumed_bytes = 1000;
  Cluster c = pair(cfg);
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(600, 0)).ok());
  EXPECT_EQ(c.append(kA, kAB, kB, pattern(600, 0)).status().code(), Status::Code::kWouldBlock);
  EXPECT_TRUE(c.append(kA, kAB, kB, pattern(400, 0)).ok());
}

TEST(Transport, DataForAStreamNotOpenIsRejectedAndKept) {
  Cluster c = pair();
  const ChannelKey key{100, 300};
  ASSERT_TRUE(c.append(kA, key, kB, pattern(8, 1)).ok());
  ASSERT_TRUE(c.run_until([&] { return !c.rejected[kA].empty(); }));
  const Rejected& r = c.rejected[kA].front();
  EXPECT_EQ(r.key, key);
  EXPECT_EQ(r.seq, 1u);
  EXPECT_EQ(r.site, kB);
  EXPECT_EQ(r.reason, wire::RejectReason::kNoSuchStream);
  EXPECT_TRUE(c.delivered_seqs(kB, key).empty());
  EXPECT_GE(c[kB].stats().rejected_frames, 1u);
  EXPECT_EQ(c[kA].send_channel(key)->unconsumed_count(), 1u) << "a rejection releases nothing";

  // The stream appears at B; the sender re-sends there.
  ASSERT_TRUE(c[kB].open_stream(300).ok());
  c[kA].relocate_receiver(300, kB);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, key), one_to(1));
  EXPECT_EQ(c.released_up_to(kA, key), 1u);
}

TEST(Transport, OpenAndCloseStreams) {
  Cluster c = pair();
  EXPECT_TRUE(c[kB].is_open(200));
  EXPECT_EQ(c[kB].open_stream(200).code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(c[kB].open_stream(0).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(c[kB].close_stream(999).code(), Status::Code::kNotFound);
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(3, 0)).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_NE(c[kB].recv_channel(kAB), nullptr);
  ASSERT_TRUE(c[kB].close_stream(200).ok());
  EXPECT_FALSE(c[kB].is_open(200));
  EXPECT_EQ(c[kB].recv_channel(kAB), nullptr) << "closing forgets the receive channels";
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(3, 0)).ok());
  ASSERT_TRUE(c.run_until([&] { return !c.rejected[kA].empty(); }));
  EXPECT_EQ(c.rejected[kA].front().seq, 2u);
}

TEST(Transport, LocalAppendIsDeliveredWithoutTheNetwork) {
  Cluster c = pair();
  ASSERT_TRUE(c[kA].open_stream(101).ok());
  const ChannelKey local{100, 101};
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(c.append(kA, local, kA, pattern(4, i)).ok());
  c.drain();
  EXPECT_EQ(c.delivered_seqs(kA, local), one_to(3));
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.released_up_to(kA, local), 3u);
  EXPECT_TRUE(c.sent.empty()) << "no datagram for a local append";
}

TEST(Transport, MessagesOfManyChannelsShareADatagram) {
  Cluster c({kA, kB});
  for (StreamId s = 200; s < 205; ++s) ASSERT_TRUE(c[kB].open_stream(s).ok());
  for (StreamId s = 200; s < 205; ++s) ASSERT_TRUE(c.append(kA, {100, s}, kB, pattern(20, s)).ok());
  c.transmit();
  ASSERT_EQ(c.sent.size(), 1u);
  wire::DecodedDatagram d;
  ASSERT_TRUE(wire::decode_datagram(c.sent[0].bytes, &d).ok());
  EXPECT_EQ(d.frames.size(), 5u);
  ASSERT_TRUE(c.settle());
  for (StreamId s = 200; s < 205; ++s) EXPECT_EQ(c.delivered_seqs(kB, {100, s}), one_to(1));
}

TEST(Transport, TrafficBothWaysSettles) {
  Cluster c = pair();
  const ChannelKey back{200, 100};
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(c.append(kA, kAB, kB, pattern(50, i)).ok());
    ASSERT_TRUE(c.append(kB, back, kA, pattern(70, i)).ok());
    (void)c.step();
  }
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(20));
  EXPECT_EQ(c.delivered_seqs(kA, back), one_to(20));
  EXPECT_EQ(c.released_up_to(kA, kAB), 20u);
  EXPECT_EQ(c.released_up_to(kB, back), 20u);
  EXPECT_TRUE(c[kA].idle());
  EXPECT_TRUE(c[kB].idle());
}

TEST(Transport, IdleOnlyWhenEverythingIsConsumed) {
  Cluster c = pair();
  EXPECT_TRUE(c[kA].idle());
  c.auto_consume = false;
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(1, 0)).ok());
  EXPECT_FALSE(c[kA].idle());
  c.run_for(kSecond);
  EXPECT_FALSE(c[kA].idle());
  ASSERT_TRUE(c[kB].consume(kAB, 1, c.now).ok());
  EXPECT_TRUE(c.settle());
}

TEST(Transport, ExportedSendStateTravelsToANewSenderSite) {
  Cluster c({kA, kB, kC});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(9, i)).ok());
  // The sender moves from A to C before A sent anything.
  Result<SendState> s = c[kA].export_send_state(kAB);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->next_seq, 4u);
  EXPECT_EQ(s->unconsumed.size(), 3u);
  EXPECT_EQ(s->dest, kB);
  ASSERT_TRUE(c[kC].import_send_state(kAB, *s).ok());
  EXPECT_FALSE(c[kA].export_send_state({1, 2}).ok());
  // A has no way to forget its copy here, so whatever A sends is lost: only C's copy counts.
  c.lose = [](const OutDatagram& d) {
    wire::DecodedDatagram h;
    return wire::decode_datagram(d.bytes, &h).ok() && h.header.src_site == kA;
  };
  ASSERT_TRUE(c.run_until([&] { return c.released_up_to(kC, kAB) == 3; }));
  std::vector<Seq> got = c.delivered_seqs(kB, kAB);
  EXPECT_EQ(got, one_to(3));
  Result<Seq> next = c.append(kC, kAB, kB, pattern(1, 4));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, 4u);
}

TEST(Transport, RecvStateRoundTripsAsAValue) {
  Cluster c = pair();
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(3, i)).ok());
  ASSERT_TRUE(c.settle());
  Result<RecvState> r = c[kB].export_recv_state(kAB);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->consumed_up_to, 4u);
  EXPECT_EQ(r->reply_site, kA);
  EXPECT_FALSE(c[kB].export_recv_state({5, 6}).ok());
  Cluster other({kC});
  ASSERT_TRUE(other[kC].open_stream(200).ok());
  ASSERT_TRUE(other[kC].import_recv_state(kAB, *r).ok());
  EXPECT_EQ(other[kC].recv_channel(kAB)->consumed_up_to(), 4u);
  EXPECT_EQ(other[kC].recv_channel(kAB)->next_expected(), 5u);
}

TEST(Transport, MalformedDatagramIsCountedAndRefused) {
  Cluster c = pair();
  wire::Bytes garbage{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  Status s = c[kB].on_datagram(garbage, c.now);
  EXPECT_EQ(s.code(), Status::Code::kMalformed);
  EXPECT_EQ(c[kB].stats().malformed_in, 1u);
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(5, 0)).ok());
  c.transmit();
  ASSERT_EQ(c.in_flight().size(), 1u);
  wire::Bytes bad = c.in_flight()[0].bytes;
  bad.back() ^= 0x40;
  EXPECT_EQ(c[kB].on_datagram(bad, c.now).code(), Status::Code::kMalformed);
  EXPECT_EQ(c[kB].stats().malformed_in, 2u);
  EXPECT_TRUE(c[kB].on_datagram({}, c.now).code() == Status::Code::kMalformed);
  // Nothing already accepted is lost.
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(1));
}

TEST(Transport, MisaddressedDatagramIsCountedAndDropped) {
  Cluster c({kA, kB, kC});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(5, 0)).ok());
  c.transmit();
  ASSERT_EQ(c.in_flight().size(), 1u);
  EXPECT_FALSE(c[kC].on_datagram(c.in_flight()[0].bytes, c.now).ok());
  EXPECT_EQ(c[kC].stats().misaddressed_in, 1u);
  EXPECT_EQ(c[kC].recv_channel_count(), 0u);
}

TEST(Transport, DuplicateDatagramIsNotDeliveredTwice) {
  Cluster c = pair();
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(5, 0)).ok());
  c.transmit();
  ASSERT_EQ(c.in_flight().size(), 1u);
  wire::Bytes copy = c.in_flight()[0].bytes;
  c.deliver();
  EXPECT_TRUE(c[kB].on_datagram(copy, c.now).ok());
  EXPECT_EQ(c[kB].stats().duplicate_packets, 1u);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(1));
}

wire::Bytes forged(SiteId src, SiteId dst, PacketNumber pn,
                   const std::function<void(wire::Bytes*)>& frames) {
  wire::Bytes b;
  wire::encode_header({src, dst, pn}, &b);
  frames(&b);
  wire::seal(&b);
  return b;
}

TEST(Transport, DataBeyondTheReceiveWindowIsRejectedOutOfWindow) {
  TransportConfig cfg;
  cfg.channel.max_unconsumed_messages = 8;
  Cluster c({kA, kB}, cfg);
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  wire::Bytes d =
      forged(kA, kB, 1, [](wire::Bytes* b) { wire::encode_data(100, 200, 9, wire::Bytes{1}, b); });
  EXPECT_TRUE(c[kB].on_datagram(d, c.now).ok());
  EXPECT_GE(c[kB].stats().rejected_frames, 1u);
  c.drain();
  EXPECT_TRUE(c.delivered[kB].empty());
  c.transmit();
  bool reject_seen = false;
  for (const OutDatagram& o : c.in_flight()) {
    wire::DecodedDatagram dd;
    ASSERT_TRUE(wire::decode_datagram(o.bytes, &dd).ok());
    for (const wire::Frame& f : dd.frames) {
      if (f.type == wire::FrameType::kReject && f.seq == 9 &&
          f.reason == wire::RejectReason::kOutOfWindow)
        reject_seen = true;
    }
  }
  EXPECT_TRUE(reject_seen);
}

TEST(Transport, OversizedMessageIsRejectedTooLarge) {
  TransportConfig cfg;
  cfg.channel.max_message_bytes = 100;
  Cluster c({kA, kB}, cfg);
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  wire::Bytes d = forged(kA, kB, 1, [](wire::Bytes* b) {
    wire::encode_fragment(100, 200, 1, 5000, 0, wire::Bytes(10, 1), b);
  });
  EXPECT_TRUE(c[kB].on_datagram(d, c.now).ok());
  EXPECT_GE(c[kB].stats().rejected_frames, 1u);
  c.drain();
  EXPECT_TRUE(c.delivered[kB].empty());
}

TEST(Transport, ConsumedAckForAMessageNeverSentIsBogus) {
  Cluster c = pair();
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(1, 0)).ok());
  ASSERT_TRUE(c.run_until([&] { return c[kA].path(kB) && c[kA].path(kB)->outstanding() == 0; }));
  wire::Bytes d = forged(kB, kA, 50, [](wire::Bytes* b) { wire::encode_consumed(100, 200, 7, b); });
  EXPECT_TRUE(c[kA].on_datagram(d, c.now).ok());
  EXPECT_GE(c[kA].stats().bogus_acks, 1u);
  c.drain();
  EXPECT_LE(c.released_up_to(kA, kAB), 1u);
}

TEST(Transport, AckForAPacketNeverSentIsBogus) {
  Cluster c = pair();
  wire::Bytes d = forged(kB, kA, 0, [](wire::Bytes* b) { wire::encode_ack({40, {}}, b); });
  EXPECT_TRUE(c[kA].on_datagram(d, c.now).ok());
  EXPECT_EQ(c[kA].stats().bogus_acks, 1u);
}

TEST(Transport, FramesInAnUnnumberedDatagramAreRefused) {
  Cluster c = pair();
  wire::Bytes d =
      forged(kA, kB, 0, [](wire::Bytes* b) { wire::encode_data(100, 200, 1, wire::Bytes{1}, b); });
  EXPECT_FALSE(c[kB].on_datagram(d, c.now).ok());
  c.drain();
  EXPECT_TRUE(c.delivered[kB].empty());
}

}  // namespace
}  // namespace mstream::proto
