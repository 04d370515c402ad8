#include "wire/datagram.hpp"

#include <cstring>

#include "wire/crc32c.hpp"

namespace mstream::wire {
namespace {

Status malformed(const char* what) { return Status::error(Status::Code::kMalformed, what); }

bool read_ack(Reader& r, AckFrame* ack) {
  std::uint64_t n = 0;
  if (!r.varint(&ack->cumulative) || !r.varint_max(kMaxAckRanges, &n)) return false;
  ack->ranges.clear();
  std::uint64_t prev_end = ack->cumulative;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint64_t gap = 0, len = 0;
    if (!r.varint(&gap) || !r.varint(&len)) return false;
    // Reject wrap-around: a peer must not make a range overflow 64 bits.
    if (len == 0 || gap > (UINT64_MAX >> 2) || len > (UINT64_MAX >> 2) ||
        prev_end > UINT64_MAX - 2 - gap - len)
      return false;
    AckRange range{prev_end + 2 + gap, prev_end + 1 + gap + len};
    ack->ranges.push_back(range);
    prev_end = range.last;
  }
  return true;
}

bool read_streams(Reader& r, Frame* f) {
  return r.varint(&f->from_stream) && r.varint(&f->to_stream);
}

bool read_u32(Reader& r, std::uint32_t* out) {
  std::uint64_t v = 0;
  if (!r.varint_max(kMaxIncarnation, &v)) return false;
  *out = static_cast<std::uint32_t>(v);
  return true;
}

// After seq: incarnation, origin, floor_gap.
bool read_sender(Reader& r, Frame* f) {
  std::uint64_t gap = 0;
  if (!r.varint(&f->seq) || !read_u32(r, &f->incarnation) || !read_u32(r, &f->origin) ||
      !r.varint(&gap))
    return false;
  if (gap == 0 || gap > f->seq) return false;
  f->floor = f->seq - gap;
  return true;
}

void write_sender(Writer& w, std::uint64_t seq, const SenderTag& tag) {
  w.varint(seq);
  w.varint(tag.incarnation);
  w.varint(tag.origin);
  w.varint(seq - tag.floor);
}

std::size_t sender_size(std::uint64_t seq, const SenderTag& tag) {
  return varint_size(seq) + varint_size(tag.incarnation) + varint_size(tag.origin) +
         varint_size(seq - tag.floor);
}

}  // namespace

Status decode_datagram(ByteView bytes, DecodedDatagram* out, Integrity integrity) {
  if (bytes.size() < kFixedHeaderSize) return malformed("datagram shorter than its header");
  Reader r(bytes);
  std::uint16_t magic = 0;
  std::uint8_t version = 0, kind = 0;
  std::uint32_t crc = 0;
  (void)r.u16(&magic);
  (void)r.u8(&version);
  (void)r.u8(&kind);
  (void)r.u32(&crc);
  if (magic != kMagic) return malformed("bad magic");
  if (version != kVersion) return malformed("unsupported version");
  if (kind != kKindPath) return malformed("unknown datagram kind");
  if (integrity == Integrity::kChecksum && crc32c(bytes.subspan(kFixedHeaderSize)) != crc)
    return malformed("checksum mismatch");

  std::uint64_t src = 0, dst = 0, src_boot = 0, dst_boot = 0;
  if (!r.varint_max(kMaxSiteId, &src) || !r.varint_max(kMaxSiteId, &dst) ||
      !r.varint_max(kMaxBoot, &src_boot) || !r.varint_max(kMaxBoot, &dst_boot) ||
      !r.varint(&out->header.packet_number))
    return malformed("truncated header");
  out->header.src_site = static_cast<std::uint32_t>(src);
  out->header.dst_site = static_cast<std::uint32_t>(dst);
  out->header.src_boot = static_cast<std::uint32_t>(src_boot);
  out->header.dst_boot = static_cast<std::uint32_t>(dst_boot);
  out->has_ack = false;
  out->frames.clear();

  while (!r.at_end()) {
    std::uint8_t type = 0;
    (void)r.u8(&type);
    Frame f;
    f.type = static_cast<FrameType>(type);
    switch (f.type) {
      case FrameType::kAck:
        if (out->has_ack) return malformed("two ACK frames");
        if (!read_ack(r, &out->ack)) return malformed("bad ACK frame");
        out->has_ack = true;
        continue;
      case FrameType::kData: {
        std::uint64_t len = 0;
        if (!read_streams(r, &f) || !read_sender(r, &f) || !r.varint_max(kMaxMessageBytes, &len) ||
            !r.bytes(static_cast<std::size_t>(len), &f.payload))
          return malformed("bad DATA frame");
        f.total_len = len;
        break;
      }
      case FrameType::kFragment: {
        std::uint64_t len = 0;
        if (!read_streams(r, &f) || !read_sender(r, &f) ||
            !r.varint_max(kMaxMessageBytes, &f.total_len) ||
            !r.varint_max(kMaxMessageBytes, &f.offset) || !r.varint_max(kMaxMessageBytes, &len) ||
            !r.bytes(static_cast<std::size_t>(len), &f.payload))
          return malformed("bad FRAGMENT frame");
        if (len == 0 || f.offset + len > f.total_len) return malformed("fragment out of range");
        break;
      }
      case FrameType::kConsumed:
        if (!read_streams(r, &f) || !r.varint(&f.seq) || !read_u32(r, &f.origin))
          return malformed("bad CONSUMED frame");
        break;
      case FrameType::kReject: {
        std::uint8_t reason = 0;
        if (!read_streams(r, &f) || !r.varint(&f.seq) || !r.u8(&reason))
          return malformed("bad REJECT frame");
        if (reason < 1 || reason > 4) return malformed("unknown REJECT reason");
        f.reason = static_cast<RejectReason>(reason);
        break;
      }
      default:
        return malformed("unknown frame type");
    }
    if (f.seq == 0 && f.type != FrameType::kConsumed)
      return malformed("sequence number 0 is reserved");
    out->frames.push_back(f);
  }
  return Status::ok_status();
}

std::size_t header_size(const DatagramHeader& h) {
  return kFixedHeaderSize + varint_size(h.src_site) + varint_size(h.dst_site) +
         varint_size(h.src_boot) + varint_size(h.dst_boot) + varint_size(h.packet_number);
}

void encode_header(const DatagramHeader& h, Bytes* out) {
  Writer w(out);
  w.u16(kMagic);
  w.u8(kVersion);
  w.u8(kKindPath);
  w.u32(0);  // checksum, written by seal()
  w.varint(h.src_site);
  w.varint(h.dst_site);
  w.varint(h.src_boot);
  w.varint(h.dst_boot);
  w.varint(h.packet_number);
}

void encode_ack(const AckFrame& ack, Bytes* out) {
  Writer w(out);
  w.u8(static_cast<std::uint8_t>(FrameType::kAck));
  w.varint(ack.cumulative);
  w.varint(ack.ranges.size());
  std::uint64_t prev_end = ack.cumulative;
  for (const AckRange& r : ack.ranges) {
    w.varint(r.first - prev_end - 2);
    w.varint(r.last - r.first + 1);
    prev_end = r.last;
  }
}

std::size_t ack_size(const AckFrame& ack) {
  std::size_t n = 1 + varint_size(ack.cumulative) + varint_size(ack.ranges.size());
  std::uint64_t prev_end = ack.cumulative;
  for (const AckRange& r : ack.ranges) {
    n += varint_size(r.first - prev_end - 2) + varint_size(r.last - r.first + 1);
    prev_end = r.last;
  }
  return n;
}

void encode_data(std::uint64_t from, std::uint64_t to, std::uint64_t seq, ByteView payload,
                 Bytes* out, const SenderTag& tag) {
  Writer w(out);
  w.u8(static_cast<std::uint8_t>(FrameType::kData));
  w.varint(from);
  w.varint(to);
  write_sender(w, seq, tag);
  w.blob(payload);
}

std::size_t data_size(std::uint64_t from, std::uint64_t to, std::uint64_t seq, std::size_t len,
                      const SenderTag& tag) {
  return 1 + varint_size(from) + varint_size(to) + sender_size(seq, tag) + varint_size(len) + len;
}

void encode_fragment(std::uint64_t from, std::uint64_t to, std::uint64_t seq,
                     std::uint64_t total_len, std::uint64_t offset, ByteView payload, Bytes* out,
                     const SenderTag& tag) {
  Writer w(out);
  w.u8(static_cast<std::uint8_t>(FrameType::kFragment));
  w.varint(from);
  w.varint(to);
  write_sender(w, seq, tag);
  w.varint(total_len);
  w.varint(offset);
  w.blob(payload);
}

std::size_t fragment_size(std::uint64_t from, std::uint64_t to, std::uint64_t seq,
                          std::uint64_t total_len, std::uint64_t offset, std::size_t len,
                          const SenderTag& tag) {
  return 1 + varint_size(from) + varint_size(to) + sender_size(seq, tag) + varint_size(total_len) + varint_size(offset) + varint_size(len) + len;
}

void encode_consumed(std::uint64_t from, std::uint64_t to, std::uint64_t up_to, Bytes* out,
                     std::uint32_t origin) {
  Writer w(out);
  w.u8(static_cast<std::uint8_t>(FrameType::kConsumed));
  w.varint(from);
  w.varint(to);
  w.varint(up_to);
  w.varint(origin);
}

std::size_t consumed_size(std::uint64_t from, std::uint64_t to, std::uint64_t up_to,
                          std::uint32_t origin) {
  return 1 + varint_size(from) + varint_size(to) + varint_size(up_to) + varint_size(origin);
}

void encode_reject(std::uint64_t from, std::uint64_t to, std::uint64_t seq, RejectReason reason,
                   Bytes* out) {
  Writer w(out);
  w.u8(static_cast<std::uint8_t>(FrameType::kReject));
  w.varint(from);
  w.varint(to);
  w.varint(seq);
  w.u8(static_cast<std::uint8_t>(reason));
}

void seal(Bytes* out, Integrity integrity) {
  const std::uint32_t crc =
      integrity == Integrity::kChecksum ? crc32c(ByteView(*out).subspan(kFixedHeaderSize)) : 0;
  for (int i = 0; i < 4; ++i) (*out)[kCrcOffset + i] = static_cast<std::uint8_t>(crc >> (8 * i));
}

std::string describe(const DecodedDatagram& d) {
  std::string s = "site " + std::to_string(d.header.src_site) + "->" +
                  std::to_string(d.header.dst_site) + " pn " +
                  std::to_string(d.header.packet_number);
  if (d.header.src_boot || d.header.dst_boot)
    s += " boot " + std::to_string(d.header.src_boot) + "->" + std::to_string(d.header.dst_boot);
  if (d.has_ack) {
    s += " ACK<=" + std::to_string(d.ack.cumulative);
    for (const AckRange& r : d.ack.ranges)
      s += " [" + std::to_string(r.first) + "," + std::to_string(r.last) + "]";
  }
  for (const Frame& f : d.frames) {
    s += " ";
    switch (f.type) {
      case FrameType::kData: s += "DATA"; break;
      case FrameType::kFragment: s += "FRAG@" + std::to_string(f.offset); break;
      case FrameType::kConsumed: s += "CONSUMED"; break;
      case FrameType::kReject: s += "REJECT"; break;
      case FrameType::kAck: break;
    }
    s += " " + std::to_string(f.from_stream) + ">" + std::to_string(f.to_stream) + "#" +
         std::to_string(f.seq);
    // A moved sender's copies name their incarnation, so traces show stale ones apart.
    bool carries_data = f.type == FrameType::kData || f.type == FrameType::kFragment;
    if (carries_data && f.incarnation != 0) s += "/i" + std::to_string(f.incarnation);
    if (f.origin != 0) s += "/o" + std::to_string(f.origin);
    if (carries_data && f.floor != 0) s += "/f" + std::to_string(f.floor);
    if (f.type == FrameType::kReject) s += "/r" + std::to_string(static_cast<int>(f.reason));
  }
  return s;
}

}  // namespace mstream::wire
