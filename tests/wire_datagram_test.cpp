// Round trips of the data-plane datagram: every frame type, ACK ranges, the encoders' size
// functions, and the decoder's promises about its output.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "wire/datagram.hpp"

namespace mstream::wire {
namespace {

Bytes header(std::uint32_t src = 1, std::uint32_t dst = 2, std::uint64_t pn = 7) {
  Bytes out;
  encode_header(DatagramHeader{src, dst, pn}, &out);
  return out;
}

DecodedDatagram decode_ok(Bytes* bytes) {
  seal(bytes);
  DecodedDatagram d;
  Status s = decode_datagram(*bytes, &d);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return d;
}

TEST(Datagram, HeaderOnlyRoundTrips) {
  for (auto [src, dst, pn] : {std::tuple<std::uint32_t, std::uint32_t, std::uint64_t>{0, 0, 0},
                              {1, 2, 1},
                              {127, 128, 16384},
                              {UINT32_MAX, UINT32_MAX, UINT64_MAX}}) {
    Bytes b = header(src, dst, pn);
    EXPECT_EQ(b.size(), header_size(DatagramHeader{src, dst, pn}));
    DecodedDatagram d = decode_ok(&b);
    EXPECT_EQ(d.header.src_site, src);
    EXPECT_EQ(d.header.dst_site, dst);
    EXPECT_EQ(d.header.packet_number, pn);
    EXPECT_FALSE(d.has_ack);
    EXPECT_TRUE(d.frames.empty());
  }
}

TEST(Datagram, FixedHeaderLayoutIsMagicVersionKindChecksum) {
  Bytes b = header();
  seal(&b);
  ASSERT_GE(b.size(), kFixedHeaderSize);
  EXPECT_EQ(b[0], 0x4D);  // "MS" little-endian
  EXPECT_EQ(b[1], 0x53);
  EXPECT_EQ(b[2], kVersion);
  EXPECT_EQ(b[3], kKindPath);
}

TEST(Datagram, DataFrameRoundTrips) {
  const Bytes payload{1, 2, 3, 4, 5};
  Bytes b = header();
  encode_data(11, 22, 33, payload, &b);
  EXPECT_EQ(b.size(), header_size({1, 2, 7}) + data_size(11, 22, 33, payload.size()));
  DecodedDatagram d = decode_ok(&b);
  ASSERT_EQ(d.frames.size(), 1u);
  const Frame& f = d.frames[0];
  EXPECT_EQ(f.type, FrameType::kData);
  EXPECT_EQ(f.from_stream, 11u);
  EXPECT_EQ(f.to_stream, 22u);
  EXPECT_EQ(f.seq, 33u);
  EXPECT_EQ(Bytes(f.payload.begin(), f.payload.end()), payload);
}

TEST(Datagram, DataAndFragmentCarryTheSendersIncarnation) {
  const Bytes payload{1, 2, 3};
  Bytes b = header();
  encode_data(11, 22, 33, payload, &b, {0xFFFFFFFFu});
  encode_fragment(11, 22, 34, 10, 4, payload, &b, {7});
  encode_data(11, 22, 35, payload, &b);  // a sender that never moved: incarnation 0
  EXPECT_EQ(b.size(), header_size({1, 2, 7}) + data_size(11, 22, 33, 3, {0xFFFFFFFFu}) +
                          fragment_size(11, 22, 34, 10, 4, 3, {7}) + data_size(11, 22, 35, 3));
  DecodedDatagram d = decode_ok(&b);
  ASSERT_EQ(d.frames.size(), 3u);
  EXPECT_EQ(d.frames[0].incarnation, 0xFFFFFFFFu);
  EXPECT_EQ(d.frames[1].incarnation, 7u);
  EXPECT_EQ(d.frames[1].offset, 4u);
  EXPECT_EQ(d.frames[2].incarnation, 0u);
  EXPECT_EQ(Bytes(d.frames[0].payload.begin(), d.frames[0].payload.end()), payload);
  EXPECT_NE(describe(d).find("DATA 11>22#33/i4294967295"), std::string::npos);
}

TEST(Datagram, DataAndFragmentCarryTheNumberingsOriginAndTheSendersFloor) {
  const Bytes payload{1, 2, 3};
  Bytes b = header();
  encode_data(11, 22, 900, payload, &b, {2, 0xFFFFFFFFu, 899});
  encode_fragment(11, 22, 34, 10, 4, payload, &b, {0, 5, 0});
  encode_consumed(22, 11, 12, &b, 9);
  EXPECT_EQ(b.size(), header_size({1, 2, 7}) + data_size(11, 22, 900, 3, {2, 0xFFFFFFFFu, 899}) +
                          fragment_size(11, 22, 34, 10, 4, 3, {0, 5, 0}) +
                          consumed_size(22, 11, 12, 9));
  DecodedDatagram d = decode_ok(&b);
  ASSERT_EQ(d.frames.size(), 3u);
  EXPECT_EQ(d.frames[0].origin, 0xFFFFFFFFu);
  EXPECT_EQ(d.frames[0].floor, 899u);
  EXPECT_EQ(d.frames[0].incarnation, 2u);
  EXPECT_EQ(d.frames[1].origin, 5u);
  EXPECT_EQ(d.frames[1].floor, 0u);
  EXPECT_EQ(d.frames[2].origin, 9u);
  EXPECT_NE(describe(d).find("DATA 11>22#900/i2/o4294967295/f899"), std::string::npos);
}

TEST(Datagram, AFloorAtOrBeyondTheSequenceNumberIsMalformed) {
  // floor_gap 0 (floor == seq) and floor_gap > seq (a floor below 0) cannot come from a sender.
  for (std::uint64_t gap : {std::uint64_t{0}, std::uint64_t{34}}) {
    Bytes b = header();
    Writer w(&b);
    w.u8(static_cast<std::uint8_t>(FrameType::kData));
    for (std::uint64_t v : {std::uint64_t{11}, std::uint64_t{22}, std::uint64_t{33}, std::uint64_t{0}, std::uint64_t{0}, gap})
      w.varint(v);
    w.blob(Bytes{1});
    seal(&b);
    DecodedDatagram d;
    EXPECT_FALSE(decode_datagram(b, &d).ok()) << "gap " << gap;
  }
}

TEST(Datagram, DataPayloadIsAViewIntoTheDatagram) {
  const Bytes payload{9, 9, 9};
  Bytes b = header();
  encode_data(1, 2, 3, payload, &b);
  DecodedDatagram d = decode_ok(&b);
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_GE(d.frames[0].payload.data(), b.data());
  EXPECT_EQ(d.frames[0].payload.data() + 3, b.data() + b.size());
}

TEST(Datagram, EmptyDataFrameRoundTrips) {
  Bytes b = header();
  encode_data(1, 2, 1, {}, &b);
  EXPECT_EQ(b.size(), header_size({1, 2, 7}) + data_size(1, 2, 1, 0));
  DecodedDatagram d = decode_ok(&b);
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_TRUE(d.frames[0].payload.empty());
}

TEST(Datagram, FragmentFrameRoundTrips) {
  const Bytes payload(300, 0xAB);
  Bytes b = header();
  encode_fragment(5, 6, 7, 100000, 4000, payload, &b);
  EXPECT_EQ(b.size(), header_size({1, 2, 7}) + fragment_size(5, 6, 7, 100000, 4000, 300));
  DecodedDatagram d = decode_ok(&b);
  ASSERT_EQ(d.frames.size(), 1u);
  const Frame& f = d.frames[0];
  EXPECT_EQ(f.type, FrameType::kFragment);
  EXPECT_EQ(f.from_stream, 5u);
  EXPECT_EQ(f.to_stream, 6u);
  EXPECT_EQ(f.seq, 7u);
  EXPECT_EQ(f.total_len, 100000u);
  EXPECT_EQ(f.offset, 4000u);
  EXPECT_EQ(Bytes(f.payload.begin(), f.payload.end()), payload);
}

TEST(Datagram, FragmentEndingExactlyAtTotalLengthIsAccepted) {
  const Bytes payload(10, 1);
  Bytes b = header();
  encode_fragment(1, 2, 3, 30, 20, payload, &b);
  DecodedDatagram d = decode_ok(&b);
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_EQ(d.frames[0].offset + d.frames[0].payload.size(), d.frames[0].total_len);
}

TEST(Datagram, FragmentOfTheLargestAnnouncedMessageIsAccepted) {
  const Bytes payload(4, 1);
  Bytes b = header();
  encode_fragment(1, 2, 3, kMaxMessageBytes, kMaxMessageBytes - 4, payload, &b);
  DecodedDatagram d = decode_ok(&b);
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_EQ(d.frames[0].total_len, kMaxMessageBytes);
}

TEST(Datagram, ConsumedFrameRoundTripsIncludingUpToZero) {
  for (std::uint64_t up_to : {std::uint64_t{0}, std::uint64_t{1}, UINT64_MAX}) {
    Bytes b = header();
    encode_consumed(3, 4, up_to, &b);
    EXPECT_EQ(b.size(), header_size({1, 2, 7}) + consumed_size(3, 4, up_to));
    DecodedDatagram d = decode_ok(&b);
    ASSERT_EQ(d.frames.size(), 1u);
    EXPECT_EQ(d.frames[0].type, FrameType::kConsumed);
    EXPECT_EQ(d.frames[0].from_stream, 3u);
    EXPECT_EQ(d.frames[0].to_stream, 4u);
    EXPECT_EQ(d.frames[0].seq, up_to);
  }
}

TEST(Datagram, RejectFrameRoundTripsEveryReason) {
  for (RejectReason reason :
       {RejectReason::kNoSuchStream, RejectReason::kOutOfWindow, RejectReason::kTooLarge}) {
    Bytes b = header();
    encode_reject(8, 9, 10, reason, &b);
    DecodedDatagram d = decode_ok(&b);
    ASSERT_EQ(d.frames.size(), 1u);
    EXPECT_EQ(d.frames[0].type, FrameType::kReject);
    EXPECT_EQ(d.frames[0].from_stream, 8u);
    EXPECT_EQ(d.frames[0].to_stream, 9u);
    EXPECT_EQ(d.frames[0].seq, 10u);
    EXPECT_EQ(d.frames[0].reason, reason);
  }
}

TEST(Datagram, AckWithoutRangesRoundTrips) {
  for (std::uint64_t cum : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{1} << 40}) {
    AckFrame ack{cum, {}};
    Bytes b = header();
    encode_ack(ack, &b);
    EXPECT_EQ(b.size(), header_size({1, 2, 7}) + ack_size(ack));
    DecodedDatagram d = decode_ok(&b);
    ASSERT_TRUE(d.has_ack);
    EXPECT_EQ(d.ack.cumulative, cum);
    EXPECT_TRUE(d.ack.ranges.empty());
    EXPECT_TRUE(d.frames.empty());
  }
}

TEST(Datagram, AckRangesRoundTrip) {
  // The smallest gap (one missing packet between ranges) and single-packet ranges included.
  AckFrame ack{10, {{12, 12}, {14, 20}, {1000, 1000}, {1002, 5000}}};
  Bytes b = header();
  encode_ack(ack, &b);
  EXPECT_EQ(b.size(), header_size({1, 2, 7}) + ack_size(ack));
  DecodedDatagram d = decode_ok(&b);
  ASSERT_TRUE(d.has_ack);
  EXPECT_EQ(d.ack.cumulative, 10u);
  ASSERT_EQ(d.ack.ranges.size(), ack.ranges.size());
  for (std::size_t i = 0; i < ack.ranges.size(); ++i) {
    EXPECT_EQ(d.ack.ranges[i].first, ack.ranges[i].first) << i;
    EXPECT_EQ(d.ack.ranges[i].last, ack.ranges[i].last) << i;
  }
}

TEST(Datagram, AckRangesAreEncodedAsGapAndLength) {
  // cumulative 10; range [12,12]: gap 0, len 1; range [14,20]: gap 0, len 7.
  Bytes b;
  encode_ack(AckFrame{10, {{12, 12}, {14, 20}}}, &b);
  EXPECT_EQ(b, (Bytes{0x01, 10, 2, 0, 1, 0, 7}));
}

TEST(Datagram, AckWithTheMaximumNumberOfRangesRoundTrips) {
  AckFrame ack{0, {}};
  for (std::uint64_t i = 0; i < kMaxAckRanges; ++i) ack.ranges.push_back({2 + 3 * i, 3 + 3 * i});
  Bytes b = header();
  encode_ack(ack, &b);
  DecodedDatagram d = decode_ok(&b);
  ASSERT_TRUE(d.has_ack);
  ASSERT_EQ(d.ack.ranges.size(), kMaxAckRanges);
  EXPECT_EQ(d.ack.ranges.back().last, ack.ranges.back().last);
}

TEST(Datagram, AckNearTheTopOfThePacketNumberSpaceRoundTrips) {
  AckFrame ack{UINT64_MAX - 10, {{UINT64_MAX - 8, UINT64_MAX - 1}}};
  Bytes b = header();
  encode_ack(ack, &b);
  DecodedDatagram d = decode_ok(&b);
  ASSERT_TRUE(d.has_ack);
  ASSERT_EQ(d.ack.ranges.size(), 1u);
  EXPECT_EQ(d.ack.ranges[0].first, UINT64_MAX - 8);
  EXPECT_EQ(d.ack.ranges[0].last, UINT64_MAX - 1);
}

TEST(Datagram, MixedFramesKeepWireOrderAndTheAckIsSeparated) {
  const Bytes p1{1}, p2{2, 2};
  Bytes b = header();
  encode_data(1, 2, 1, p1, &b);
  encode_ack(AckFrame{5, {{7, 8}}}, &b);
  encode_consumed(2, 1, 4, &b);
  encode_fragment(1, 3, 2, 10, 0, p2, &b);
  encode_reject(4, 5, 6, RejectReason::kOutOfWindow, &b);
  DecodedDatagram d = decode_ok(&b);
  ASSERT_TRUE(d.has_ack);
  EXPECT_EQ(d.ack.cumulative, 5u);
  ASSERT_EQ(d.frames.size(), 4u);
  EXPECT_EQ(d.frames[0].type, FrameType::kData);
  EXPECT_EQ(d.frames[1].type, FrameType::kConsumed);
  EXPECT_EQ(d.frames[2].type, FrameType::kFragment);
  EXPECT_EQ(d.frames[3].type, FrameType::kReject);
}

TEST(Datagram, DecodeOverwritesEarlierOutput) {
  Bytes with_ack = header();
  encode_ack(AckFrame{3, {}}, &with_ack);
  encode_consumed(1, 2, 3, &with_ack);
  Bytes plain = header(4, 5, 6);
  DecodedDatagram d = decode_ok(&with_ack);
  seal(&plain);
  ASSERT_TRUE(decode_datagram(plain, &d).ok());
  EXPECT_FALSE(d.has_ack);
  EXPECT_TRUE(d.frames.empty());
  EXPECT_EQ(d.header.src_site, 4u);
  EXPECT_EQ(d.header.packet_number, 6u);
}

TEST(Datagram, SealMakesAnyBodyVerify) {
  Bytes b = header();
  encode_data(1, 2, 3, Bytes{1, 2, 3}, &b);
  seal(&b);
  DecodedDatagram d;
  ASSERT_TRUE(decode_datagram(b, &d).ok());
  // Changing a payload byte breaks the checksum; sealing again repairs it.
  b.back() ^= 0xff;
  EXPECT_FALSE(decode_datagram(b, &d).ok());
  seal(&b);
  EXPECT_TRUE(decode_datagram(b, &d).ok());
}

// Inside a seal the AEAD's tag guards every byte: the checksum is written as 0 and not
// checked, while an unsecured receiver still refuses a datagram without a valid one.
TEST(Datagram, UnderASealTheChecksumIsZeroAndNotChecked) {
  Bytes b = header();
  encode_data(1, 2, 3, Bytes{1, 2, 3}, &b);
  seal(&b, Integrity::kSealed);
  EXPECT_EQ(Bytes(b.begin() + kCrcOffset, b.begin() + kCrcOffset + 4), Bytes(4, 0));
  DecodedDatagram d;
  ASSERT_TRUE(decode_datagram(b, &d, Integrity::kSealed).ok());
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_EQ(d.frames[0].seq, 3u);
  EXPECT_EQ(decode_datagram(b, &d).code(), Status::Code::kMalformed);
  // Whatever the field holds (a peer's CRC, or anything), the seal decides.
  seal(&b);
  EXPECT_TRUE(decode_datagram(b, &d, Integrity::kSealed).ok());
  b[kCrcOffset] ^= 1;
  EXPECT_TRUE(decode_datagram(b, &d, Integrity::kSealed).ok());
  // Everything else is checked as before.
  b.push_back(0xff);
  EXPECT_EQ(decode_datagram(b, &d, Integrity::kSealed).code(), Status::Code::kMalformed);
}

TEST(Datagram, DescribeNamesTheFrames) {
  Bytes b = header(1, 2, 9);
  encode_ack(AckFrame{4, {{6, 7}}}, &b);
  encode_data(3, 4, 5, Bytes{1}, &b);
  DecodedDatagram d = decode_ok(&b);
  std::string s = describe(d);
  EXPECT_NE(s.find("1->2"), std::string::npos) << s;
  EXPECT_NE(s.find("ACK<=4"), std::string::npos) << s;
  EXPECT_NE(s.find("DATA"), std::string::npos) << s;
}

}  // namespace
}  // namespace mstream::wire
