#include "wire/control.hpp"

#include <iterator>
#include <limits>
#include <type_traits>

#include "wire/fields.hpp"

namespace mstream::wire {
namespace {

template <std::size_t I = 0>
bool emplace_by_index(std::size_t index, ControlMessage* m) {
  if constexpr (I < std::variant_size_v<ControlMessage>) {
    if (index == I) {
      m->emplace<I>();
      return true;
    }
    return emplace_by_index<I + 1>(index, m);
  } else {
    return false;
  }
}

}  // namespace

ControlMessage control_of_type(std::size_t index) {
  ControlMessage m;
  (void)emplace_by_index(index, &m);
  return m;
}

void encode_control(const ControlMessage& m, Bytes* out) {
  Writer w(out);
  w.u8(kControlVersion);
  w.u8(static_cast<std::uint8_t>(m.index()));
  FieldEncoder e(out);
  std::visit([&](const auto& v) { const_cast<std::decay_t<decltype(v)>&>(v).fields(e); }, m);
}

Result<ControlMessage> decode_control(ByteView in) {
  Reader head(in);
  std::uint8_t version = 0, type = 0;
  if (!head.u8(&version) || !head.u8(&type))
    return Status::error(Status::Code::kMalformed, "control: truncated header");
  if (version != kControlVersion)
    return Status::error(Status::Code::kMalformed, "control: unknown version");
  ControlMessage m;
  if (!emplace_by_index(type, &m))
    return Status::error(Status::Code::kMalformed, "control: unknown type");
  FieldDecoder d(in.subspan(2));
  std::visit([&](auto& v) { v.fields(d); }, m);
  if (d.reader().failed())
    return Status::error(Status::Code::kMalformed, "control: truncated or malformed fields");
  if (!d.reader().at_end())
    return Status::error(Status::Code::kMalformed, "control: trailing bytes");
  return m;
}

const char* control_name(const ControlMessage& m) {
  static constexpr const char* kNames[] = {
      "CreateReq",   "DestroyReq",  "MoveReq",       "AttachReq",  "DetachReq",  "QuiesceReq",
      "Reply",       "Welcome",     "PeerUpdate",    "Location",   "Install",    "Code",
      "Attach",      "MoveOut",     "DestroyStream", "Finalize",   "Probe",      "Shutdown",
      "ErrorReport", "SyncResult",  "Installed",     "ProbeReply", "Leave",      "Arrive",
      "Watch",       "Recover",     "Settle",        "Settled",    "Checkpoint", "Checkpointed",
      "OpenReq",     "PolicyCheck", "PolicyVerdict", "Controls",   "Expect",     "Opened",
      "Placed"};
  static_assert(std::size(kNames) == std::variant_size_v<ControlMessage>);
  return kNames[m.index()];
}

}  // namespace mstream::wire
