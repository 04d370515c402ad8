// CRC-32C against published check values (RFC 3720 B.4) and against a bitwise reference, at
// every length around the hardware path's 8-byte steps.
#include <gtest/gtest.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "wire/crc32c.hpp"

namespace mstream::wire {
namespace {

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::uint32_t reference_crc32c(std::span<const std::uint8_t> data) {
  std::uint32_t crc = 0xffffffffu;
  for (std::uint8_t b : data) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

TEST(Crc32c, MatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32c(as_bytes("123456789")), 0xE3069283u);
  EXPECT_EQ(crc32c({}), 0u);
}

TEST(Crc32c, MatchesRfc3720TestVectors) {
  std::vector<std::uint8_t> zeros(32, 0x00), ones(32, 0xff), up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[i] = static_cast<std::uint8_t>(i);
    down[i] = static_cast<std::uint8_t>(31 - i);
  }
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones), 0x62A8AB43u);
  EXPECT_EQ(crc32c(up), 0x46DD794Eu);
  EXPECT_EQ(crc32c(down), 0x113FDB5Cu);
}

TEST(Crc32c, AgreesWithBitwiseReferenceAtEveryLengthAndAlignment) {
  std::vector<std::uint8_t> data(200);
  std::uint32_t x = 12345;
  for (auto& b : data) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::uint8_t>(x >> 16);
  }
  for (std::size_t start = 0; start < 8; ++start) {
    for (std::size_t len = 0; start + len <= 80; ++len) {
      auto s = std::span<const std::uint8_t>(data).subspan(start, len);
      ASSERT_EQ(crc32c(s), reference_crc32c(s)) << "start " << start << " len " << len;
    }
  }
}

TEST(Crc32c, SeedChainsPartialComputations) {
  std::string_view text = "the quick brown fox jumps over the lazy dog";
  auto all = as_bytes(text);
  for (std::size_t split = 0; split <= all.size(); ++split) {
    std::uint32_t first = crc32c(all.first(split));
    EXPECT_EQ(crc32c(all.subspan(split), first), crc32c(all)) << split;
  }
}

TEST(Crc32c, DetectsEverySingleBitFlip) {
  std::vector<std::uint8_t> data(64);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 7);
  const std::uint32_t good = crc32c(data);
  for (std::size_t i = 0; i < data.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      data[i] ^= static_cast<std::uint8_t>(1 << bit);
      EXPECT_NE(crc32c(data), good) << i << ":" << bit;
      data[i] ^= static_cast<std::uint8_t>(1 << bit);
    }
  }
}

}  // namespace
}  // namespace mstream::wire
