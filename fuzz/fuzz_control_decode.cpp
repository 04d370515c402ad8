// libFuzzer target for the session's decoders: wire::decode_control (control messages, which
// travel between sites and carry whole moving streams), wire::decode_join (join datagrams,
// which anyone can send to a leader) and the records of a durable leader's state
// (leader/leader_state.hpp, read back from disk after a restart, with wire::decode_fields).
// Any input must decode or be refused as kMalformed without undefined behaviour, and what
// decodes must re-encode to bytes that decode to the same message, in no more bytes than the
// input (the encoders write minimal varints).
#include <cstddef>
#include <cstdint>

#include "fuzz_check.hpp"
#include "leader/leader_state.hpp"
#include "wire/control.hpp"
#include "wire/fields.hpp"
#include "wire/join.hpp"

namespace {

using namespace mstream;
using namespace mstream::wire;
using mstream::fuzz::check;

void fuzz_control(ByteView input) {
  Result<ControlMessage> m = decode_control(input);
  if (!m.ok()) {
    check(m.status().code() == Status::Code::kMalformed, "control: error other than kMalformed");
    return;
  }
  Bytes again;
  encode_control(*m, &again);
  check(again.size() <= input.size(), "control: re-encoding grew");
  Result<ControlMessage> m2 = decode_control(again);
  check(m2.ok(), "control: re-encoded message does not decode");
  Bytes third;
  encode_control(*m2, &third);
  check(third == again, "control: encoding is not stable");
}

void fuzz_join(ByteView input) {
  Result<JoinMessage> m = decode_join(input);
  if (!m.ok()) {
    check(m.status().code() == Status::Code::kMalformed, "join: error other than kMalformed");
    return;
  }
  Bytes again;
  encode_join(*m, &again);
  check(again.size() <= input.size(), "join: re-encoding grew");
  Result<JoinMessage> m2 = decode_join(again);
  check(m2.ok(), "join: re-encoded message does not decode");
  check(m2->op == m->op && m2->nonce == m->nonce && m2->site == m->site && m2->pid == m->pid &&
            m2->reason == m->reason && m2->has_public == m->has_public &&
            m2->public_key == m->public_key,
        "join: round trip changed the message");
}

template <class Record>
void fuzz_record(ByteView input, const char* what) {
  Record r;
  Status st = decode_fields(input, &r);
  if (!st.ok()) {
    check(st.code() == Status::Code::kMalformed, what);
    return;
  }
  Bytes again;
  encode_fields(r, &again);
  check(again.size() <= input.size(), what);
  Record r2;
  check(decode_fields(again, &r2).ok(), what);
  Bytes third;
  encode_fields(r2, &third);
  check(third == again, what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView input(data, size);
  fuzz_control(input);
  fuzz_join(input);
  fuzz_record<leader::SavedMeta>(input, "leader state: meta record");
  fuzz_record<leader::SavedStream>(input, "leader state: stream record");
  fuzz_record<leader::SavedPeer>(input, "leader state: peer record");
  fuzz_record<leader::SavedChannels>(input, "leader state: channel record");
  return 0;
}
