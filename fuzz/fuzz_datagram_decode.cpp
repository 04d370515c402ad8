// libFuzzer target for wire::decode_datagram. Any input must decode or be refused as
// kMalformed without undefined behaviour. What decodes must satisfy the format's invariants,
// and re-encoding it with the encoders must decode to the same datagram, in no more bytes
// (the encoders write minimal varints). Both ways: with its checksum, and as opened from a
// seal (Integrity::kSealed: the checksum field ignored).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "fuzz_check.hpp"
#include "wire/datagram.hpp"

namespace {

using namespace mstream;
using namespace mstream::wire;

using mstream::fuzz::check;

void check_invariants(const DecodedDatagram& d, ByteView input) {
  if (d.has_ack) {
    check(d.ack.ranges.size() <= kMaxAckRanges, "too many ACK ranges");
    std::uint64_t prev_end = d.ack.cumulative;
    for (const AckRange& r : d.ack.ranges) {
      check(r.first <= r.last, "ACK range inverted");
      check(r.first > prev_end + 1, "ACK ranges not ascending and disjoint with a gap");
      prev_end = r.last;
    }
  }
  for (const Frame& f : d.frames) {
    check(f.type != FrameType::kAck, "ACK among the frames");
    switch (f.type) {
      case FrameType::kData:
        check(f.seq != 0, "DATA seq 0");
        check(f.floor < f.seq, "DATA floor not below its seq");
        check(f.payload.size() <= kMaxMessageBytes, "DATA too large");
        break;
      case FrameType::kFragment:
        check(f.seq != 0, "FRAGMENT seq 0");
        check(f.floor < f.seq, "FRAGMENT floor not below its seq");
        check(!f.payload.empty(), "empty FRAGMENT");
        check(f.total_len <= kMaxMessageBytes, "FRAGMENT total too large");
        check(f.offset + f.payload.size() <= f.total_len, "FRAGMENT beyond its total");
        break;
      case FrameType::kReject:
        check(f.seq != 0, "REJECT seq 0");
        check(f.reason == RejectReason::kNoSuchStream || f.reason == RejectReason::kOutOfWindow ||
                  f.reason == RejectReason::kTooLarge || f.reason == RejectReason::kNotOpened,
              "unknown REJECT reason");
        break;
      case FrameType::kConsumed:
        break;
      default:
        check(false, "unknown frame type decoded");
    }
    if (!f.payload.empty()) {
      check(f.payload.data() >= input.data() &&
                f.payload.data() + f.payload.size() <= input.data() + input.size(),
            "payload outside the input");
    }
  }
}

std::size_t reencode(const DecodedDatagram& d, Integrity integrity, Bytes* out) {
  out->clear();
  encode_header(d.header, out);
  std::size_t expect = header_size(d.header);
  if (d.has_ack) {
    encode_ack(d.ack, out);
    expect += ack_size(d.ack);
  }
  for (const Frame& f : d.frames) {
    switch (f.type) {
      case FrameType::kData:
        encode_data(f.from_stream, f.to_stream, f.seq, f.payload, out,
                    {f.incarnation, f.origin, f.floor});
        expect += data_size(f.from_stream, f.to_stream, f.seq, f.payload.size(),
                            {f.incarnation, f.origin, f.floor});
        break;
      case FrameType::kFragment:
        encode_fragment(f.from_stream, f.to_stream, f.seq, f.total_len, f.offset, f.payload, out,
                        {f.incarnation, f.origin, f.floor});
        expect += fragment_size(f.from_stream, f.to_stream, f.seq, f.total_len, f.offset,
                                f.payload.size(), {f.incarnation, f.origin, f.floor});
        break;
      case FrameType::kConsumed:
        encode_consumed(f.from_stream, f.to_stream, f.seq, out, f.origin);
        expect += consumed_size(f.from_stream, f.to_stream, f.seq, f.origin);
        break;
      case FrameType::kReject:
        encode_reject(f.from_stream, f.to_stream, f.seq, f.reason, out);
        expect +=
            1 + varint_size(f.from_stream) + varint_size(f.to_stream) + varint_size(f.seq) + 1;
        break;
      case FrameType::kAck:
        break;
    }
  }
  seal(out, integrity);
  return expect;
}

bool same_frame(const Frame& a, const Frame& b) {
  return a.type == b.type && a.from_stream == b.from_stream && a.to_stream == b.to_stream &&
         a.seq == b.seq && a.offset == b.offset && a.incarnation == b.incarnation &&
         a.origin == b.origin && a.floor == b.floor &&
         (a.type != FrameType::kFragment || a.total_len == b.total_len) &&
         (a.type != FrameType::kReject || a.reason == b.reason) &&
         a.payload.size() == b.payload.size() &&
         std::equal(a.payload.begin(), a.payload.end(), b.payload.begin());
}

void check_datagram(ByteView input, Integrity integrity) {
  DecodedDatagram d;
  Status s = decode_datagram(input, &d, integrity);
  if (!s.ok()) {
    check(s.code() == Status::Code::kMalformed, "error other than kMalformed");
    return;
  }
  check_invariants(d, input);

  Bytes again;
  std::size_t expect = reencode(d, integrity, &again);
  check(again.size() == expect, "size functions disagree with the encoders");
  check(again.size() <= input.size(), "re-encoding is longer than the input");
  DecodedDatagram e;
  check(decode_datagram(again, &e, integrity).ok(), "re-encoded datagram does not decode");
  check(e.header.src_site == d.header.src_site && e.header.dst_site == d.header.dst_site &&
            e.header.packet_number == d.header.packet_number,
        "header changed in the round trip");
  check(e.has_ack == d.has_ack, "ACK presence changed");
  if (d.has_ack) {
    check(e.ack.cumulative == d.ack.cumulative && e.ack.ranges.size() == d.ack.ranges.size(),
          "ACK changed");
    for (std::size_t i = 0; i < d.ack.ranges.size(); ++i) {
      check(e.ack.ranges[i].first == d.ack.ranges[i].first &&
                e.ack.ranges[i].last == d.ack.ranges[i].last,
            "ACK range changed");
    }
  }
  check(e.frames.size() == d.frames.size(), "frame count changed");
  for (std::size_t i = 0; i < d.frames.size(); ++i) {
    check(same_frame(d.frames[i], e.frames[i]), "frame changed in the round trip");
  }
  (void)describe(d);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView input(data, size);
  check_datagram(input, Integrity::kChecksum);
  // The same bytes as a secured transport decodes them once opened: the checksum is not
  // looked at, so the fuzzer reaches the frame decoders without solving CRC-32C first.
  check_datagram(input, Integrity::kSealed);
  // And with a valid checksum, as an unsecured transport decodes them.
  if (size >= kFixedHeaderSize) {
    Bytes sealed(input.begin(), input.end());
    seal(&sealed);
    check_datagram(sealed, Integrity::kChecksum);
  }
  return 0;
}
