#include "wire/join.hpp"

#include "wire/crc32c.hpp"
#include "wire/datagram.hpp"

namespace mstream::wire {
namespace {
Status malformed(const char* why) {
  return Status::error(Status::Code::kMalformed, std::string("join: ") + why);
}

bool read_flag(Reader& r, bool* flag) {
  std::uint8_t v = 0;
  if (!r.u8(&v) || v > 1) return false;
  *flag = v == 1;
  return true;
}

template <std::size_t N>
bool read_array(Reader& r, std::array<std::uint8_t, N>* out) {
  for (auto& b : *out)
    if (!r.u8(&b)) return false;
  return true;
}

constexpr std::size_t kSealedJoinAd = 12;  // magic, version, kind, nonce
}  // namespace

int datagram_kind(ByteView bytes) { return bytes.size() < 4 ? -1 : bytes[3]; }

void encode_join(const JoinMessage& m, Bytes* out) {
  out->clear();
  Writer w(out);
  w.u16(kMagic);
  w.u8(kVersion);
  w.u8(kKindJoin);
  w.u32(0);
  w.u8(static_cast<std::uint8_t>(m.op));
  w.varint(m.nonce);
  switch (m.op) {
    case JoinMessage::Op::kRequest:
      w.varint(static_cast<std::uint8_t>(m.role));
      w.varint(m.pid);
      w.u8(m.has_cookie ? 1 : 0);
      if (m.has_cookie) w.bytes(m.cookie);
      w.u8(m.has_public ? 1 : 0);
      if (m.has_public) w.bytes(m.public_key);
      break;
    case JoinMessage::Op::kAccept:
      w.varint(m.site);
      w.u8(m.has_key ? 1 : 0);
      if (m.has_key) w.bytes(m.key);
      break;
    case JoinMessage::Op::kRefuse:
    case JoinMessage::Op::kUnauthentic:
      w.str(m.reason);
      break;
    case JoinMessage::Op::kHello:
      break;
    case JoinMessage::Op::kChallenge:
      w.bytes(m.cookie);
      break;
  }
  std::uint32_t crc = crc32c(ByteView(*out).subspan(kFixedHeaderSize));
  for (int i = 0; i < 4; ++i) (*out)[kCrcOffset + i] = static_cast<std::uint8_t>(crc >> (8 * i));
}

Result<JoinMessage> decode_join(ByteView bytes) {
  if (bytes.size() < kFixedHeaderSize) return malformed("shorter than its header");
  Reader r(bytes);
  std::uint16_t magic = 0;
  std::uint8_t version = 0, kind = 0, op = 0;
  std::uint32_t crc = 0;
  (void)r.u16(&magic);
  (void)r.u8(&version);
  (void)r.u8(&kind);
  (void)r.u32(&crc);
  if (magic != kMagic || version != kVersion || kind != kKindJoin) return malformed("bad header");
  if (crc32c(bytes.subspan(kFixedHeaderSize)) != crc) return malformed("checksum mismatch");
  JoinMessage m;
  if (!r.u8(&op) || !r.varint(&m.nonce)) return malformed("truncated");
  std::uint64_t v = 0;
  switch (op) {
    case 1:
      m.op = JoinMessage::Op::kRequest;
      if (!r.varint_max(1, &v)) return malformed("bad role");
      m.role = static_cast<JoinMessage::Role>(v);
      if (!r.varint(&m.pid) || !read_flag(r, &m.has_cookie)) return malformed("truncated");
      if (m.has_cookie && !read_array(r, &m.cookie)) return malformed("truncated cookie");
      if (!read_flag(r, &m.has_public)) return malformed("truncated");
      if (m.has_public && !read_array(r, &m.public_key)) return malformed("truncated public key");
      break;
    case 2:
      m.op = JoinMessage::Op::kAccept;
      if (!r.varint_max(kMaxSiteId, &v)) return malformed("bad site id");
      m.site = static_cast<std::uint32_t>(v);
      if (!read_flag(r, &m.has_key)) return malformed("truncated");
      if (m.has_key && !read_array(r, &m.key)) return malformed("truncated key");
      break;
    case 3:
    case 6: {
      m.op = op == 3 ? JoinMessage::Op::kRefuse : JoinMessage::Op::kUnauthentic;
      std::string_view s;
      if (!r.str(1024, &s)) return malformed("bad reason");
      m.reason.assign(s);
      break;
    }
    case 4:
      m.op = JoinMessage::Op::kHello;
      break;
    case 5:
      m.op = JoinMessage::Op::kChallenge;
      if (!read_array(r, &m.cookie)) return malformed("truncated cookie");
      break;
    default:
      return malformed("unknown op");
  }
  if (!r.at_end()) return malformed("trailing bytes");
  return m;
}

void encode_sealed_join(const JoinMessage& m, const Key& key, Bytes* out) {
  Bytes plain;
  encode_join(m, &plain);
  out->clear();
  Writer w(out);
  w.u16(kMagic);
  w.u8(kVersion);
  w.u8(kKindSealedJoin);
  w.u64(m.nonce);
  seal_siv(key, kSealedJoinAd, plain, out);
}

Result<std::uint64_t> sealed_join_nonce(ByteView bytes) {
  if (bytes.size() < kSealedJoinAd) return malformed("shorter than its header");
  Reader r(bytes);
  std::uint16_t magic = 0;
  std::uint8_t version = 0, kind = 0;
  std::uint64_t nonce = 0;
  (void)r.u16(&magic);
  (void)r.u8(&version);
  (void)r.u8(&kind);
  (void)r.u64(&nonce);
  if (magic != kMagic || version != kVersion || kind != kKindSealedJoin)
    return malformed("bad header");
  return nonce;
}

Result<JoinMessage> decode_sealed_join(ByteView bytes, const Key& key) {
  Result<std::uint64_t> nonce = sealed_join_nonce(bytes);
  if (!nonce.ok()) return nonce.status();
  Bytes plain;
  if (Status st = open_siv(key, kSealedJoinAd, bytes, &plain); !st.ok()) return st;
  Result<JoinMessage> m = decode_join(plain);
  if (m.ok() && m->nonce != *nonce) return malformed("the sealed nonce differs from the clear one");
  return m;
}

}  // namespace mstream::wire
