#include "wire/control.hpp"

#include <iterator>
#include <limits>
#include <type_traits>

namespace mstream::wire {
namespace {

class Encoder {
 public:
  explicit Encoder(Bytes* out) : w_(out) {}
  template <class... Ts>
  void operator()(const Ts&... vs) {
    (put(vs), ...);
  }

 private:
  template <class T>
  void put(const T& v) {
    if constexpr (std::is_integral_v<T>) {
      w_.varint(static_cast<std::uint64_t>(v));
    } else if constexpr (std::is_same_v<T, std::string>) {
      w_.str(v);
    } else if constexpr (requires {
                           v.begin();
                           v.size();
                         }) {
      w_.varint(v.size());
      for (const auto& e : v) put(e);
    } else {
      const_cast<T&>(v).fields(*this);  // fields() only reads through an Encoder
    }
  }
  Writer w_;
};

class Decoder {
 public:
  explicit Decoder(ByteView in) : r_(in) {}
  template <class... Ts>
  void operator()(Ts&... vs) {
    (get(vs), ...);
  }
  Reader& reader() { return r_; }

 private:
  template <class T>
  void get(T& v) {
    if (r_.failed()) return;
    if constexpr (std::is_integral_v<T>) {
      std::uint64_t x = 0;
      if (r_.varint_max(static_cast<std::uint64_t>(std::numeric_limits<T>::max()), &x)) {
        v = static_cast<T>(x);
      }
    } else if constexpr (std::is_same_v<T, std::string>) {
      std::string_view s;
      if (r_.str(r_.remaining(), &s)) v.assign(s);
    } else if constexpr (requires {
                           v.begin();
                           v.size();
                           v.emplace_back();
                         }) {
      std::uint64_t n = 0;
      // Every element takes at least one byte, so a count beyond what is left is a lie that
      // must not make us allocate.
      if (!r_.varint_max(r_.remaining(), &n)) return;
      v.clear();
      v.reserve(static_cast<std::size_t>(n));
      for (std::uint64_t i = 0; i < n && !r_.failed(); ++i) get(v.emplace_back());
    } else {
      v.fields(*this);
    }
  }
  Reader r_;
};

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

void encode_control(const ControlMessage& m, Bytes* out) {
  Writer w(out);
  w.u8(kControlVersion);
  w.u8(static_cast<std::uint8_t>(m.index()));
  Encoder e(out);
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
  Decoder d(in.subspan(2));
  std::visit([&](auto& v) { v.fields(d); }, m);
  if (d.reader().failed())
    return Status::error(Status::Code::kMalformed, "control: truncated or malformed fields");
  if (!d.reader().at_end())
    return Status::error(Status::Code::kMalformed, "control: trailing bytes");
  return m;
}

const char* control_name(const ControlMessage& m) {
  static constexpr const char* kNames[] = {
      "CreateReq",   "DestroyReq", "MoveReq",       "AttachReq",  "DetachReq", "QuiesceReq",
      "Reply",       "Welcome",    "PeerUpdate",    "Location",   "Install",   "Code",
      "Attach",      "MoveOut",    "DestroyStream", "Finalize",   "Probe",     "Shutdown",
      "ErrorReport", "SyncResult", "Installed",     "ProbeReply", "Leave",     "Arrive",
      "Watch",       "Recover",    "Settle",        "Settled",    "Checkpoint", "Checkpointed"};
  static_assert(std::size(kNames) == std::variant_size_v<ControlMessage>);
  return kNames[m.index()];
}

}  // namespace mstream::wire
