#pragma once
// The data-plane datagram. Layout (all varints are LEB128):
//
//   u16 magic 0x534D ("MS")   u8 version (kVersion)   u8 kind (0: path datagram)
//   u32 crc32c of every byte after this field (0 in a datagram sealed whole: below)
//   varint src_site   varint dst_site   varint src_boot   varint dst_boot
//   varint packet_number (0: not ack-eliciting)
//   src_boot (< 2^32): which process of its site the sender is. Site ids are never reused,
//   except the leader's site 0, whose process restarts under a higher boot when its state is
//   durable (`mstream leader --state`). dst_boot: the receiver's boot as the sender knows it.
//   A receiver drops a datagram for another boot of itself, or from an older boot of its
//   sender (its packet numbers belong to a path that is gone), and starts its path afresh
//   at a newer one (doc/protocol.md "Restarts").
//   frame*            (to the end of the datagram)
//
// Frames, each introduced by a one-byte type:
//   0x01 ACK       varint cumulative, varint n (<= kMaxAckRanges), n x (varint gap, varint len)
//                  Every packet number <= cumulative was received. Range i covers
//                  [start, start + len - 1], start = prev_end + 2 + gap, prev_end of the first
//                  range = cumulative; len >= 1.
//   0x02 DATA      varint from_stream, varint to_stream, varint seq, varint incarnation,
//                  varint origin, varint floor_gap, varint len, len bytes
//   0x03 FRAGMENT  varint from_stream, varint to_stream, varint seq, varint incarnation,
//                  varint origin, varint floor_gap, varint total_len, varint offset,
//                  varint len, len bytes (offset + len <= total_len)
//                  incarnation (< 2^32): how many times the sender's side of the channel moved
//                  since its numbering began; the receiver sends consumption acks only to the
//                  site of the newest incarnation it has seen (doc/protocol.md).
//                  origin (< 2^32): which numbering of the channel this is. A stream recovered
//                  after its site failed, without its state, numbers its channels afresh from
//                  1 under a higher origin; the receiver starts over and drops what older
//                  numberings still send.
//                  floor_gap (1 <= floor_gap <= seq): floor = seq - floor_gap is how far the
//                  sender knows the receiver consumed. A receiver whose state was lost (its
//                  site failed) takes it as its starting point: the senders' side of the
//                  paper's resynchronisation (seed 004 2.4), without a round trip.
//   0x04 CONSUMED  varint from_stream, varint to_stream, varint up_to, varint origin
//                  (the receiver to_stream consumed every message of from_stream <= up_to,
//                  of the numbering `origin`)
//   0x05 REJECT    varint from_stream, varint to_stream, varint seq, u8 reason
//
// A datagram with packet number 0 and no frames (an ACK at most) is a keepalive: it asks for
// nothing, and tells the failure detector that its sender is alive.
//
// decode_datagram() checks everything a peer controls: magic, version, checksum, lengths,
// ranges, and that the frames fill the datagram exactly. Malformed input yields an error,
// never undefined behaviour and never an exception.
//
// A secured transport seals every datagram whole (wire/crypto.hpp) and refuses any that is not
// sealed; the AEAD's tag fails on every change the checksum would find (and on any other), so
// inside a seal the checksum is redundant: it is written as 0 and not checked
// (Integrity::kSealed). Computing and checking it took about 4% of the CPU of a secured
// `mstream bench throughput`.

#include <cstdint>
#include <string>
#include <vector>

#include "mstream/status.hpp"
#include "wire/codec.hpp"

namespace mstream::wire {

inline constexpr std::uint16_t kMagic = 0x534D;
// 2: DATA and FRAGMENT carry the sender's incarnation (1 had none). 3: they carry the
// numbering's origin and the sender's floor, CONSUMED the origin. 4: the header carries
// both ends' boots. 5: secured sessions (the join's cookie and key, sealed kinds 2 and 3).
// 6: a path datagram sealed whole carries no checksum (0).
inline constexpr std::uint8_t kVersion = 6;
inline constexpr std::uint8_t kKindPath = 0;
inline constexpr std::size_t kCrcOffset = 4;
inline constexpr std::size_t kFixedHeaderSize = 8;  // magic, version, kind, crc
inline constexpr std::size_t kMaxAckRanges = 32;
// The largest message any peer may announce; the configured limit is usually lower.
inline constexpr std::uint64_t kMaxMessageBytes = 64ull << 20;
inline constexpr std::uint64_t kMaxSiteId = 0xFFFFFFFFull;
inline constexpr std::uint64_t kMaxIncarnation = 0xFFFFFFFFull;
inline constexpr std::uint64_t kMaxBoot = 0xFFFFFFFFull;

enum class FrameType : std::uint8_t {
  kAck = 0x01,
  kData = 0x02,
  kFragment = 0x03,
  kConsumed = 0x04,
  kReject = 0x05,
};

enum class RejectReason : std::uint8_t {
  kNoSuchStream = 1,  // the receiver stream does not live at this site
  kOutOfWindow = 2,   // the sequence number is beyond what the receiver accepts
  kTooLarge = 3,      // the message exceeds the receiver's configured maximum
  kNotOpened = 4,     // the sender has not opened the receiver (COMMANDS.md: stream_open)
};

struct AckRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
};

struct AckFrame {
  std::uint64_t cumulative = 0;
  std::vector<AckRange> ranges;  // ascending, disjoint, all > cumulative + 1
};

// A view into the decoded datagram: payload points into the datagram's bytes and is valid
// only while they are.
struct Frame {
  FrameType type{};
  std::uint64_t from_stream = 0;
  std::uint64_t to_stream = 0;
  std::uint64_t seq = 0;        // DATA, FRAGMENT, REJECT; up_to for CONSUMED
  std::uint64_t total_len = 0;  // FRAGMENT
  std::uint64_t offset = 0;     // FRAGMENT
  std::uint32_t incarnation = 0;  // DATA, FRAGMENT: the sender channel's move count
  std::uint32_t origin = 0;       // DATA, FRAGMENT, CONSUMED: the channel's numbering
  std::uint64_t floor = 0;        // DATA, FRAGMENT: consumed as far as the sender knows
  ByteView payload;             // DATA, FRAGMENT
  RejectReason reason{};        // REJECT
};

struct DatagramHeader {
  std::uint32_t src_site = 0;
  std::uint32_t dst_site = 0;
  std::uint64_t packet_number = 0;
  // Last, so that {src, dst, pn} still means boot 0 at both ends (on the wire they come
  // before the packet number).
  std::uint32_t src_boot = 0;
  std::uint32_t dst_boot = 0;
};

struct DecodedDatagram {
  DatagramHeader header;
  bool has_ack = false;
  AckFrame ack;  // at most one ACK frame per datagram
  std::vector<Frame> frames;  // every frame but the ACK, in wire order
};

// What protects a path datagram from damage on its way.
enum class Integrity : std::uint8_t {
  kChecksum,  // its own CRC-32C: an unsecured transport's
  kSealed,    // the seal it travels in, opened (authenticated) before it is decoded: no checksum
};

// Decodes one datagram. *out is overwritten; on error its content is unspecified.
// kSealed: only for bytes that a seal authenticated (the checksum field is ignored).
Status decode_datagram(ByteView bytes, DecodedDatagram* out,
                       Integrity integrity = Integrity::kChecksum);

// Encoding: the header first, then frames, then seal() writes the checksum (or 0).
// Encoded size of the header for these values.
std::size_t header_size(const DatagramHeader& h);
void encode_header(const DatagramHeader& h, Bytes* out);
void encode_ack(const AckFrame& ack, Bytes* out);
std::size_t ack_size(const AckFrame& ack);
// What a DATA or FRAGMENT says of its sender besides the message. The default (a sender that
// never moved, first numbering, nothing known consumed) lets tools and tests that do not
// model moves or failures leave it out. REQUIRES: floor < seq.
struct SenderTag {
  std::uint32_t incarnation = 0;
  std::uint32_t origin = 0;
  std::uint64_t floor = 0;
};
void encode_data(std::uint64_t from, std::uint64_t to, std::uint64_t seq, ByteView payload,
                 Bytes* out, const SenderTag& tag = {});
std::size_t data_size(std::uint64_t from, std::uint64_t to, std::uint64_t seq, std::size_t len,
                      const SenderTag& tag = {});
void encode_fragment(std::uint64_t from, std::uint64_t to, std::uint64_t seq,
                     std::uint64_t total_len, std::uint64_t offset, ByteView payload, Bytes* out,
                     const SenderTag& tag = {});
std::size_t fragment_size(std::uint64_t from, std::uint64_t to, std::uint64_t seq,
                          std::uint64_t total_len, std::uint64_t offset, std::size_t len,
                          const SenderTag& tag = {});
void encode_consumed(std::uint64_t from, std::uint64_t to, std::uint64_t up_to, Bytes* out,
                     std::uint32_t origin = 0);
std::size_t consumed_size(std::uint64_t from, std::uint64_t to, std::uint64_t up_to,
                          std::uint32_t origin = 0);

void encode_reject(std::uint64_t from, std::uint64_t to, std::uint64_t seq, RejectReason reason,
                   Bytes* out);
// Writes the checksum over out[kFixedHeaderSize..], or 0 for a datagram that goes sealed.
// REQUIRES: out starts with a header.
void seal(Bytes* out, Integrity integrity = Integrity::kChecksum);

// Human-readable one-line rendering, for logs and the simulator's traces.
std::string describe(const DecodedDatagram& d);

}  // namespace mstream::wire
