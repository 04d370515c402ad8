#pragma once
// The generic encoding of structs that list their fields (`template <class A> void fields(A&
// a) { a(x, y, ...); }`): integers as varints, strings and byte vectors length-prefixed,
// vectors as a count and their elements, nested structs in place. Control messages use it
// (wire/control.hpp), and so does the leader's durable state (leader/leader_state.hpp).
// FieldDecoder never reads past its input: on truncated or over-long input its reader fails.

#include <limits>
#include <string>
#include <type_traits>

#include "mstream/status.hpp"
#include "wire/codec.hpp"

namespace mstream::wire {

class FieldEncoder {
 public:
  explicit FieldEncoder(Bytes* out) : w_(out) {}
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
      const_cast<T&>(v).fields(*this);  // fields() only reads through a FieldEncoder
    }
  }
  Writer w_;
};

class FieldDecoder {
 public:
  explicit FieldDecoder(ByteView in) : r_(in) {}
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

// Encodes v's fields, appended to *out.
template <class T>
void encode_fields(const T& v, Bytes* out) {
  FieldEncoder e(out);
  const_cast<T&>(v).fields(e);
}

// Decodes all of `in` into *v. Errors: kMalformed if it is truncated or has bytes left.
template <class T>
Status decode_fields(ByteView in, T* v) {
  FieldDecoder d(in);
  v->fields(d);
  if (d.reader().failed() || !d.reader().at_end())
    return Status::error(Status::Code::kMalformed, "truncated or malformed record");
  return Status::ok_status();
}

}  // namespace mstream::wire
