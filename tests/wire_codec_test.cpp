// The byte codec: little-endian integers, LEB128 varints, length-prefixed strings, and the
// Reader's promise never to read past its end and to stay failed once it failed.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "wire/codec.hpp"

namespace mstream::wire {
namespace {

Bytes encode_varint(std::uint64_t v) {
  Bytes out;
  Writer(&out).varint(v);
  return out;
}

TEST(Codec, VarintEncodesKnownByteSequences) {
  EXPECT_EQ(encode_varint(0), (Bytes{0x00}));
  EXPECT_EQ(encode_varint(1), (Bytes{0x01}));
  EXPECT_EQ(encode_varint(127), (Bytes{0x7f}));
  EXPECT_EQ(encode_varint(128), (Bytes{0x80, 0x01}));
  EXPECT_EQ(encode_varint(300), (Bytes{0xac, 0x02}));
  EXPECT_EQ(encode_varint(16383), (Bytes{0xff, 0x7f}));
  EXPECT_EQ(encode_varint(16384), (Bytes{0x80, 0x80, 0x01}));
  Bytes max = encode_varint(UINT64_MAX);
  ASSERT_EQ(max.size(), kMaxVarintLen);
  for (std::size_t i = 0; i + 1 < max.size(); ++i) EXPECT_EQ(max[i], 0xff) << i;
  EXPECT_EQ(max.back(), 0x01);
}

TEST(Codec, VarintRoundTripsEdgeValuesAndSizeMatches) {
  const std::uint64_t values[] = {0,
                                  1,
                                  127,
                                  128,
                                  255,
                                  256,
                                  16383,
                                  16384,
                                  (1ull << 21) - 1,
                                  1ull << 21,
                                  UINT32_MAX,
                                  1ull << 32,
                                  (1ull << 63) - 1,
                                  1ull << 63,
                                  UINT64_MAX - 1,
                                  UINT64_MAX};
  for (std::uint64_t v : values) {
    Bytes b = encode_varint(v);
    EXPECT_EQ(b.size(), varint_size(v)) << v;
    Reader r(b);
    std::uint64_t got = 0;
    ASSERT_TRUE(r.varint(&got)) << v;
    EXPECT_EQ(got, v);
    EXPECT_TRUE(r.at_end());
    EXPECT_FALSE(r.failed());
  }
}

TEST(Codec, VarintSizeGrowsEverySevenBits) {
  for (int bits = 1; bits <= 64; ++bits) {
    std::uint64_t v = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
    EXPECT_EQ(varint_size(v), static_cast<std::size_t>((bits + 6) / 7)) << bits;
  }
  EXPECT_EQ(varint_size(0), 1u);
}

TEST(Codec, VarintRejectsOverlongEncoding) {
  // Eleven bytes, each announcing another: longer than any uint64 needs.
  Bytes eleven(11, 0x80);
  eleven.back() = 0x00;
  Reader r(eleven);
  std::uint64_t v = 0;
  EXPECT_FALSE(r.varint(&v));
  EXPECT_TRUE(r.failed());

  // Ten bytes where the tenth still sets the continuation bit.
  Bytes ten_cont(10, 0x80);
  ten_cont.back() = 0x81;
  ten_cont.push_back(0x00);
  Reader r2(ten_cont);
  EXPECT_FALSE(r2.varint(&v));
  EXPECT_TRUE(r2.failed());
}

TEST(Codec, VarintRejectsTenthByteWithBitsBeyond64) {
  for (std::uint8_t last : {std::uint8_t{0x02}, std::uint8_t{0x7f}, std::uint8_t{0x40}}) {
    Bytes b(9, 0xff);
    b.push_back(last);
    Reader r(b);
    std::uint64_t v = 0;
    EXPECT_FALSE(r.varint(&v)) << int{last};
    EXPECT_TRUE(r.failed());
  }
}

TEST(Codec, VarintRejectsTruncatedInput) {
  std::uint64_t v = 0;
  Reader empty(ByteView{});
  EXPECT_FALSE(empty.varint(&v));
  EXPECT_TRUE(empty.failed());

  Bytes full = encode_varint(UINT64_MAX);
  for (std::size_t n = 0; n < full.size(); ++n) {
    Reader r(ByteView(full).first(n));
    EXPECT_FALSE(r.varint(&v)) << "prefix " << n;
    EXPECT_TRUE(r.failed());
  }
}

TEST(Codec, VarintMaxRejectsValuesAboveTheBound) {
  Bytes b = encode_varint(1000);
  std::uint64_t v = 0;
  Reader ok(b);
  EXPECT_TRUE(ok.varint_max(1000, &v));
  EXPECT_EQ(v, 1000u);
  Reader bad(b);
  EXPECT_FALSE(bad.varint_max(999, &v));
  EXPECT_TRUE(bad.failed());
}

TEST(Codec, FixedWidthIntegersAreLittleEndian) {
  Bytes out;
  Writer w(&out);
  w.u8(0xab);
  w.u16(0x1234);
  w.u32(0xdeadbeef);
  w.u64(0x0102030405060708ull);
  EXPECT_EQ(out, (Bytes{0xab, 0x34, 0x12, 0xef, 0xbe, 0xad, 0xde, 0x08, 0x07, 0x06, 0x05, 0x04,
                        0x03, 0x02, 0x01}));
  EXPECT_EQ(w.size(), out.size());

  Reader r(out);
  std::uint8_t a = 0;
  std::uint16_t b = 0;
  std::uint32_t c = 0;
  std::uint64_t d = 0;
  ASSERT_TRUE(r.u8(&a) && r.u16(&b) && r.u32(&c) && r.u64(&d));
  EXPECT_EQ(a, 0xab);
  EXPECT_EQ(b, 0x1234);
  EXPECT_EQ(c, 0xdeadbeefu);
  EXPECT_EQ(d, 0x0102030405060708ull);
  EXPECT_TRUE(r.at_end());
}

TEST(Codec, FixedWidthReadsRejectTruncatedInput) {
  Bytes three{1, 2, 3};
  std::uint32_t v32 = 0;
  Reader r(three);
  EXPECT_FALSE(r.u32(&v32));
  Bytes seven(7, 0);
  std::uint64_t v64 = 0;
  Reader r2(seven);
  EXPECT_FALSE(r2.u64(&v64));
  Bytes one{1};
  std::uint16_t v16 = 0;
  Reader r3(one);
  EXPECT_FALSE(r3.u16(&v16));
}

TEST(Codec, ReaderStaysFailedAfterAnError) {
  Bytes b{0x05, 0x01, 0x02};
  Reader r(b);
  ByteView v;
  EXPECT_FALSE(r.bytes(10, &v));
  EXPECT_TRUE(r.failed());
  EXPECT_EQ(r.remaining(), 0u);
  // Bytes remain, but a failed reader refuses every further read.
  std::uint8_t x = 0;
  EXPECT_FALSE(r.u8(&x));
  std::uint64_t y = 0;
  EXPECT_FALSE(r.varint(&y));
}

TEST(Codec, BlobAndStringRoundTrip) {
  Bytes out;
  Writer w(&out);
  const Bytes payload{9, 8, 7};
  w.blob(payload);
  w.str("hello");
  w.str("");
  Reader r(out);
  ByteView b;
  std::string_view s1, s2;
  ASSERT_TRUE(r.blob(16, &b));
  EXPECT_EQ(Bytes(b.begin(), b.end()), payload);
  ASSERT_TRUE(r.str(16, &s1));
  EXPECT_EQ(s1, "hello");
  ASSERT_TRUE(r.str(16, &s2));
  EXPECT_EQ(s2, "");
  EXPECT_TRUE(r.at_end());
}

TEST(Codec, BlobRejectsLengthAboveMaximum) {
  Bytes out;
  Writer(&out).str("hello");
  Reader r(out);
  std::string_view s;
  EXPECT_FALSE(r.str(4, &s));
  EXPECT_TRUE(r.failed());
}

TEST(Codec, BlobRejectsLengthBeyondTheInput) {
  Bytes out;
  Writer w(&out);
  w.varint(1000);
  w.u8(1);
  Reader r(out);
  ByteView b;
  EXPECT_FALSE(r.blob(1u << 20, &b));
  EXPECT_TRUE(r.failed());
}

TEST(Codec, BlobRejectsAbsurdLengthWithoutOverflow) {
  Bytes out;
  Writer(&out).varint(UINT64_MAX);
  out.push_back(0);
  Reader r(out);
  ByteView b;
  EXPECT_FALSE(r.blob(std::numeric_limits<std::size_t>::max(), &b));
  EXPECT_TRUE(r.failed());
}

TEST(Codec, BytesReturnsAViewIntoTheInput) {
  Bytes in{1, 2, 3, 4};
  Reader r(in);
  std::uint8_t first = 0;
  ByteView rest;
  ASSERT_TRUE(r.u8(&first));
  ASSERT_TRUE(r.bytes(3, &rest));
  EXPECT_EQ(rest.data(), in.data() + 1);
  EXPECT_EQ(r.position(), 4u);
  EXPECT_TRUE(r.at_end());
}

}  // namespace
}  // namespace mstream::wire
