#pragma once
// The join datagram (kind 1): how a site or shell that has no site id yet asks the leader for
// one. It travels outside the path protocol, because a path needs both ends' ids; the joiner
// repeats its request until answered, and the leader answers a repeated request (same nonce)
// with the same id, so loss and duplication are harmless.
//
//   u16 magic 0x534D   u8 version (kVersion, 2)   u8 kind (1)   u32 crc32c of the rest
//   u8 op   varint nonce
//   op 1 request: varint role (0 site, 1 shell), varint pid
//   op 2 accept:  varint site id
//   op 3 refuse:  string reason
//
// decode_join() checks everything and fails with kMalformed, never throws.

#include <cstdint>
#include <string>

#include "mstream/status.hpp"
#include "wire/codec.hpp"

namespace mstream::wire {

inline constexpr std::uint8_t kKindJoin = 1;

struct JoinMessage {
  enum class Op : std::uint8_t { kRequest = 1, kAccept = 2, kRefuse = 3 };
  enum class Role : std::uint8_t { kSite = 0, kShell = 1 };
  Op op = Op::kRequest;
  std::uint64_t nonce = 0;
  Role role = Role::kSite;
  std::uint64_t pid = 0;
  std::uint32_t site = 0;
  std::string reason;
};

// The datagram's kind byte, or -1 when it is too short to have one.
int datagram_kind(ByteView bytes);
void encode_join(const JoinMessage& m, Bytes* out);
Result<JoinMessage> decode_join(ByteView bytes);

}  // namespace mstream::wire
