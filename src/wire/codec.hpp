#pragma once
// Byte-level encoding shared by every wire format of mstream: little-endian fixed-width
// integers and LEB128 varints. The Reader never reads past its end: every getter returns
// false on truncated or over-long input and leaves the reader failed, so a decoder can chain
// reads and check once. No exception escapes.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace mstream::wire {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// Largest value of a varint that fits 10 bytes (all of uint64).
inline constexpr std::size_t kMaxVarintLen = 10;

// Number of bytes encode_varint writes for v.
constexpr std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

class Writer {
 public:
  // *out must outlive the Writer; bytes are appended to it.
  explicit Writer(Bytes* out) : out_(out) {}

  // Each value grows the buffer once and is written in place: encoding is on every message's
  // path, and per-byte push_back or small-range insert showed up in profiles.
  void u8(std::uint8_t v) { *grow(1) = v; }
  void u16(std::uint16_t v) { fixed(v, 2); }
  void u32(std::uint32_t v) { fixed(v, 4); }
  void u64(std::uint64_t v) { fixed(v, 8); }
  void varint(std::uint64_t v) {
    std::uint8_t* p = grow(varint_size(v));
    while (v >= 0x80) {
      *p++ = static_cast<std::uint8_t>(v | 0x80);
      v >>= 7;
    }
    *p = static_cast<std::uint8_t>(v);
  }
  void bytes(ByteView b) {
    if (!b.empty()) std::memcpy(grow(b.size()), b.data(), b.size());
  }
  // A length-prefixed byte string.
  void blob(ByteView b) {
    varint(b.size());
    bytes(b);
  }
  void str(std::string_view s) {
    blob(ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
  }
  std::size_t size() const { return out_->size(); }

 private:
  std::uint8_t* grow(std::size_t n) {
    std::size_t old = out_->size();
    out_->resize(old + n);
    return out_->data() + old;
  }
  void fixed(std::uint64_t v, std::size_t n) {
    std::uint8_t* p = grow(n);
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
  }
  Bytes* out_;
};

class Reader {
 public:
  explicit Reader(ByteView in) : in_(in) {}

  bool u8(std::uint8_t* v) {
    if (!need(1)) return false;
    *v = in_[pos_++];
    return true;
  }
  bool u16(std::uint16_t* v) {
    if (!need(2)) return false;
    *v = static_cast<std::uint16_t>(in_[pos_] | (in_[pos_ + 1] << 8));
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t* v) {
    if (!need(4)) return false;
    std::uint32_t r = 0;
    for (int i = 0; i < 4; ++i) r |= static_cast<std::uint32_t>(in_[pos_ + i]) << (8 * i);
    pos_ += 4;
    *v = r;
    return true;
  }
  bool u64(std::uint64_t* v) {
    if (!need(8)) return false;
    std::uint64_t r = 0;
    for (int i = 0; i < 8; ++i) r |= static_cast<std::uint64_t>(in_[pos_ + i]) << (8 * i);
    pos_ += 8;
    *v = r;
    return true;
  }
  // Rejects encodings longer than 10 bytes and a 10th byte with bits beyond 64.
  bool varint(std::uint64_t* v) {
    std::uint64_t r = 0;
    for (std::size_t i = 0; i < kMaxVarintLen; ++i) {
      if (!need(1)) return false;
      std::uint8_t b = in_[pos_++];
      if (i == kMaxVarintLen - 1 && b > 1) return fail();
      r |= static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) {
        *v = r;
        return true;
      }
    }
    return fail();
  }
  // A varint that must not exceed max (e.g. a site id, a length).
  bool varint_max(std::uint64_t max, std::uint64_t* v) {
    if (!varint(v)) return false;
    if (*v > max) return fail();
    return true;
  }
  bool bytes(std::size_t n, ByteView* v) {
    if (!need(n)) return false;
    *v = in_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool blob(std::size_t max, ByteView* v) {
    std::uint64_t n = 0;
    if (!varint_max(max, &n)) return false;
    return bytes(static_cast<std::size_t>(n), v);
  }
  bool str(std::size_t max, std::string_view* s) {
    ByteView b;
    if (!blob(max, &b)) return false;
    *s = std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
    return true;
  }

  bool failed() const { return failed_; }
  bool at_end() const { return pos_ == in_.size(); }
  std::size_t remaining() const { return failed_ ? 0 : in_.size() - pos_; }
  std::size_t position() const { return pos_; }

 private:
  bool need(std::size_t n) {
    if (failed_ || in_.size() - pos_ < n) return fail();
    return true;
  }
  bool fail() {
    failed_ = true;
    return false;
  }
  ByteView in_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace mstream::wire
