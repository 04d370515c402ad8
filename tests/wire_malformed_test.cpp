// Every way a peer can get a datagram wrong yields kMalformed: never a crash, never an
// exception, never a partial success.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "wire/datagram.hpp"

namespace mstream::wire {
namespace {

Bytes header(std::uint64_t pn = 7) {
  Bytes out;
  encode_header(DatagramHeader{1, 2, pn}, &out);
  return out;
}

// A hand-built header whose site ids the encoder could not express.
Bytes raw_header(std::uint64_t src, std::uint64_t dst, std::uint64_t pn, std::uint64_t src_boot = 0,
                 std::uint64_t dst_boot = 0) {
  Bytes out;
  Writer w(&out);
  w.u16(kMagic);
  w.u8(kVersion);
  w.u8(kKindPath);
  w.u32(0);
  w.varint(src);
  w.varint(dst);
  w.varint(src_boot);
  w.varint(dst_boot);
  w.varint(pn);
  return out;
}

bool is_malformed(Bytes bytes, bool reseal = true) {
  if (reseal && bytes.size() >= kFixedHeaderSize) seal(&bytes);
  DecodedDatagram d;
  Status s = decode_datagram(bytes, &d);
  return !s.ok() && s.code() == Status::Code::kMalformed;
}

bool is_valid(Bytes bytes) {
  seal(&bytes);
  DecodedDatagram d;
  return decode_datagram(bytes, &d).ok();
}

TEST(Datagram, RejectsAnIncarnationBeyond32Bits) {
  for (std::uint8_t type : {std::uint8_t{0x02}, std::uint8_t{0x03}}) {
    Bytes b = raw_header(1, 2, 1);
    Writer w(&b);
    w.u8(type);
    w.varint(1);  // from
    w.varint(2);  // to
    w.varint(3);  // seq
    w.varint(kMaxIncarnation + 1);
    if (type == 0x03) {
      w.varint(1);  // total_len
      w.varint(0);  // offset
    }
    w.varint(1);
    w.u8(9);
    EXPECT_TRUE(is_malformed(b)) << int(type);
  }
}

TEST(Datagram, RejectsInputShorterThanTheFixedHeader) {
  Bytes full = header();
  seal(&full);
  for (std::size_t n = 0; n < kFixedHeaderSize; ++n) {
    EXPECT_TRUE(is_malformed(Bytes(full.begin(), full.begin() + n), false)) << n;
  }
}

TEST(Datagram, RejectsHeaderWithoutSiteIdsAndPacketNumber) {
  Bytes b = header();
  b.resize(kFixedHeaderSize);
  EXPECT_TRUE(is_malformed(b));
}

TEST(Datagram, RejectsBadMagic) {
  for (std::size_t i : {0u, 1u}) {
    Bytes b = header();
    b[i] ^= 0x01;
    EXPECT_TRUE(is_malformed(b)) << i;
  }
}

TEST(Datagram, RejectsWrongVersion) {
  // 1 is the format before DATA and FRAGMENT carried the sender's incarnation, 2 the one
  // before they carried the numbering's origin and the sender's floor, 3 the one before the
  // header carried the boots, 4 the one before secured sessions, 5 the one whose sealed
  // datagrams carried a checksum inside.
  for (std::uint8_t v : {std::uint8_t{0}, std::uint8_t{1}, std::uint8_t{2}, std::uint8_t{3},
                         std::uint8_t{4}, std::uint8_t{5}, std::uint8_t{7}, std::uint8_t{255}}) {
    Bytes b = header();
    b[2] = v;
    EXPECT_TRUE(is_malformed(b)) << int{v};
  }
}

TEST(Datagram, RejectsUnknownDatagramKind) {
  Bytes b = header();
  b[3] = 1;
  EXPECT_TRUE(is_malformed(b));
}

TEST(Datagram, RejectsBadChecksum) {
  Bytes b = header();
  encode_data(1, 2, 3, Bytes{4, 5, 6}, &b);
  seal(&b);
  ASSERT_FALSE(is_malformed(b, false));
  // Any flipped bit, in the checksum itself or anywhere after it, is detected.
  for (std::size_t i = kCrcOffset; i < b.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes c = b;
      c[i] ^= static_cast<std::uint8_t>(1 << bit);
      EXPECT_TRUE(is_malformed(c, false)) << i << ":" << bit;
    }
  }
}

TEST(Datagram, RejectsSiteIdsBeyond32Bits) {
  EXPECT_TRUE(is_valid(raw_header(kMaxSiteId, kMaxSiteId, 1)));
  EXPECT_TRUE(is_malformed(raw_header(kMaxSiteId + 1, 1, 1)));
  EXPECT_TRUE(is_malformed(raw_header(1, kMaxSiteId + 1, 1)));
}

TEST(Datagram, RejectsBootsBeyond32BitsAndKeepsThoseWithin) {
  DecodedDatagram d;
  Bytes ok = raw_header(1, 2, 1, kMaxBoot, 7);
  seal(&ok);
  ASSERT_TRUE(decode_datagram(ok, &d).ok());
  EXPECT_EQ(d.header.src_boot, kMaxBoot);
  EXPECT_EQ(d.header.dst_boot, 7u);
  EXPECT_TRUE(is_malformed(raw_header(1, 2, 1, kMaxBoot + 1, 0)));
  EXPECT_TRUE(is_malformed(raw_header(1, 2, 1, 0, kMaxBoot + 1)));
}

// A datagram with one of each frame; truncating it anywhere but at a frame boundary, and
// re-sealing so the checksum passes, must be refused.
TEST(Datagram, RejectsTruncationAnywhereInsideAFrame) {
  const Bytes payload(20, 0x5A);
  Bytes b = header();
  std::vector<std::size_t> boundaries{b.size()};
  encode_ack(AckFrame{100, {{102, 105}, {200, 300}}}, &b);
  boundaries.push_back(b.size());
  encode_data(1000, 2000, 300, payload, &b);
  boundaries.push_back(b.size());
  encode_fragment(1000, 2000, 301, 100000, 50000, payload, &b);
  boundaries.push_back(b.size());
  encode_consumed(2000, 1000, 12345, &b);
  boundaries.push_back(b.size());
  encode_reject(1000, 2000, 302, RejectReason::kTooLarge, &b);
  boundaries.push_back(b.size());

  std::size_t refused = 0;
  for (std::size_t n = kFixedHeaderSize; n < b.size(); ++n) {
    Bytes prefix(b.begin(), b.begin() + n);
    bool boundary = std::find(boundaries.begin(), boundaries.end(), n) != boundaries.end();
    if (boundary) {
      EXPECT_TRUE(is_valid(prefix)) << "prefix " << n << " ends at a frame boundary";
    } else {
      EXPECT_TRUE(is_malformed(prefix)) << "prefix " << n;
      ++refused;
    }
    // Without re-sealing, the checksum alone refuses it.
    EXPECT_TRUE(is_malformed(prefix, false)) << "unsealed prefix " << n;
  }
  EXPECT_GT(refused, 50u);
}

TEST(Datagram, RejectsUnknownFrameType) {
  for (std::uint8_t t :
       {std::uint8_t{0x00}, std::uint8_t{0x06}, std::uint8_t{0x7f}, std::uint8_t{0xff}}) {
    Bytes b = header();
    encode_consumed(1, 2, 3, &b);
    b.push_back(t);
    EXPECT_TRUE(is_malformed(b)) << int{t};
  }
}

TEST(Datagram, RejectsTrailingGarbageAfterTheLastFrame) {
  Bytes b = header();
  encode_data(1, 2, 3, Bytes{1, 2}, &b);
  b.push_back(0);
  b.push_back(0);
  EXPECT_TRUE(is_malformed(b));
}

TEST(Datagram, RejectsSequenceNumberZero) {
  const Bytes p{1};
  Bytes data = header();
  encode_data(1, 2, 0, p, &data);
  EXPECT_TRUE(is_malformed(data));
  Bytes frag = header();
  encode_fragment(1, 2, 0, 10, 0, p, &frag);
  EXPECT_TRUE(is_malformed(frag));
  Bytes rej = header();
  encode_reject(1, 2, 0, RejectReason::kNoSuchStream, &rej);
  EXPECT_TRUE(is_malformed(rej));
}

TEST(Datagram, RejectsTwoAckFrames) {
  Bytes b = header();
  encode_ack(AckFrame{1, {}}, &b);
  encode_data(1, 2, 3, Bytes{1}, &b);
  encode_ack(AckFrame{2, {}}, &b);
  EXPECT_TRUE(is_malformed(b));
}

TEST(Datagram, RejectsUnknownRejectReason) {
  for (std::uint8_t reason : {std::uint8_t{0}, std::uint8_t{5}, std::uint8_t{255}}) {
    Bytes b = header();
    encode_reject(1, 2, 3, static_cast<RejectReason>(reason), &b);
    EXPECT_TRUE(is_malformed(b)) << int{reason};
  }
}

TEST(Datagram, RejectsDataLengthBeyondTheDatagram) {
  Bytes b = header();
  Writer w(&b);
  w.u8(static_cast<std::uint8_t>(FrameType::kData));
  w.varint(1);
  w.varint(2);
  w.varint(3);
  w.varint(1000);  // announces 1000 bytes, carries 4
  w.u32(0);
  EXPECT_TRUE(is_malformed(b));
}

TEST(Datagram, RejectsAbsurdDataLength) {
  for (std::uint64_t len : {kMaxMessageBytes + 1, std::uint64_t{1} << 62, UINT64_MAX}) {
    Bytes b = header();
    Writer w(&b);
    w.u8(static_cast<std::uint8_t>(FrameType::kData));
    w.varint(1);
    w.varint(2);
    w.varint(3);
    w.varint(len);
    w.u32(0);
    EXPECT_TRUE(is_malformed(b)) << len;
  }
}

void write_fragment(Bytes* b, std::uint64_t total, std::uint64_t offset, std::uint64_t len,
                    std::size_t carried) {
  Writer w(b);
  w.u8(static_cast<std::uint8_t>(FrameType::kFragment));
  w.varint(1);
  w.varint(2);
  w.varint(3);
  w.varint(0);  // incarnation
  w.varint(0);  // origin
  w.varint(3);  // floor_gap: floor 0
  w.varint(total);
  w.varint(offset);
  w.varint(len);
  for (std::size_t i = 0; i < carried; ++i) w.u8(0xEE);
}

TEST(Datagram, RejectsFragmentBeyondItsTotalLength) {
  Bytes ok = header();
  write_fragment(&ok, 10, 6, 4, 4);
  EXPECT_TRUE(is_valid(ok));
  Bytes over = header();
  write_fragment(&over, 10, 7, 4, 4);
  EXPECT_TRUE(is_malformed(over));
  Bytes offset_past = header();
  write_fragment(&offset_past, 10, 11, 1, 1);
  EXPECT_TRUE(is_malformed(offset_past));
}

TEST(Datagram, RejectsEmptyFragment) {
  Bytes b = header();
  write_fragment(&b, 10, 0, 0, 0);
  EXPECT_TRUE(is_malformed(b));
}

TEST(Datagram, RejectsAbsurdFragmentLengths) {
  Bytes total = header();
  write_fragment(&total, kMaxMessageBytes + 1, 0, 1, 1);
  EXPECT_TRUE(is_malformed(total));
  Bytes offset = header();
  write_fragment(&offset, kMaxMessageBytes, UINT64_MAX, 1, 1);
  EXPECT_TRUE(is_malformed(offset));
  Bytes len = header();
  write_fragment(&len, kMaxMessageBytes, 0, UINT64_MAX, 1);
  EXPECT_TRUE(is_malformed(len));
  Bytes short_payload = header();
  write_fragment(&short_payload, 100, 0, 50, 10);
  EXPECT_TRUE(is_malformed(short_payload));
}

void write_ack(Bytes* b, std::uint64_t cum, std::uint64_t n,
               const std::vector<std::pair<std::uint64_t, std::uint64_t>>& gap_len) {
  Writer w(b);
  w.u8(static_cast<std::uint8_t>(FrameType::kAck));
  w.varint(cum);
  w.varint(n);
  for (auto [gap, len] : gap_len) {
    w.varint(gap);
    w.varint(len);
  }
}

TEST(Datagram, RejectsAckWithMoreThanTheMaximumRanges) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges(kMaxAckRanges + 1, {0, 1});
  Bytes b = header();
  write_ack(&b, 0, ranges.size(), ranges);
  EXPECT_TRUE(is_malformed(b));
  Bytes huge = header();
  write_ack(&huge, 0, UINT64_MAX, {});
  EXPECT_TRUE(is_malformed(huge));
}

TEST(Datagram, RejectsAckRangeOfLengthZero) {
  Bytes b = header();
  write_ack(&b, 5, 1, {{0, 0}});
  EXPECT_TRUE(is_malformed(b));
}

TEST(Datagram, RejectsAckAnnouncingMoreRangesThanItCarries) {
  Bytes b = header();
  write_ack(&b, 5, 3, {{0, 1}, {0, 1}});
  EXPECT_TRUE(is_malformed(b));
}

TEST(Datagram, RejectsAckRangesThatOverflow64Bits) {
  Bytes wrap = header();
  write_ack(&wrap, UINT64_MAX - 3, 1, {{0, 5}});
  EXPECT_TRUE(is_malformed(wrap));
  Bytes at_max = header();
  write_ack(&at_max, UINT64_MAX, 1, {{0, 1}});
  EXPECT_TRUE(is_malformed(at_max));
  Bytes huge_gap = header();
  write_ack(&huge_gap, 0, 1, {{UINT64_MAX, 1}});
  EXPECT_TRUE(is_malformed(huge_gap));
  Bytes huge_len = header();
  write_ack(&huge_len, 0, 1, {{0, UINT64_MAX}});
  EXPECT_TRUE(is_malformed(huge_len));
  // Many ranges each near the limit must not sum past 64 bits either.
  Bytes sum = header();
  const std::uint64_t q = UINT64_MAX >> 2;
  write_ack(&sum, 0, 5, {{q, q}, {q, q}, {q, q}, {q, q}, {q, q}});
  EXPECT_TRUE(is_malformed(sum));
}

TEST(Datagram, RejectsOverlongVarintInAFrame) {
  Bytes b = header();
  b.push_back(static_cast<std::uint8_t>(FrameType::kConsumed));
  for (int i = 0; i < 11; ++i) b.push_back(0x80);
  b.push_back(0x00);
  b.push_back(0x01);
  b.push_back(0x01);
  EXPECT_TRUE(is_malformed(b));
}

TEST(Datagram, RejectionLeavesNoExceptionAndReportsAReason) {
  Bytes b = header();
  encode_reject(1, 2, 3, static_cast<RejectReason>(9), &b);
  seal(&b);
  DecodedDatagram d;
  Status s = decode_datagram(b, &d);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kMalformed);
  EXPECT_FALSE(s.message().empty());
}

}  // namespace
}  // namespace mstream::wire
