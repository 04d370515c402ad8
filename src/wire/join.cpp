#include "wire/join.hpp"

#include "wire/crc32c.hpp"
#include "wire/datagram.hpp"

namespace mstream::wire {
namespace {
Status malformed(const char* why) {
  return Status::error(Status::Code::kMalformed, std::string("join: ") + why);
}
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
      break;
    case JoinMessage::Op::kAccept:
      w.varint(m.site);
      break;
    case JoinMessage::Op::kRefuse:
      w.str(m.reason);
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
      if (!r.varint(&m.pid)) return malformed("truncated");
      break;
    case 2:
      m.op = JoinMessage::Op::kAccept;
      if (!r.varint_max(kMaxSiteId, &v)) return malformed("bad site id");
      m.site = static_cast<std::uint32_t>(v);
      break;
    case 3: {
      m.op = JoinMessage::Op::kRefuse;
      std::string_view s;
      if (!r.str(1024, &s)) return malformed("bad reason");
      m.reason.assign(s);
      break;
    }
    default:
      return malformed("unknown op");
  }
  if (!r.at_end()) return malformed("trailing bytes");
  return m;
}

}  // namespace mstream::wire
