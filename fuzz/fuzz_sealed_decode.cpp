// libFuzzer target for the secured session's decoders (wire/crypto.hpp, wire/join.hpp): the
// sealed datagram, the join datagram in both kinds (the accept under the key exchange's key),
// a secured Transport's on_datagram (with the master key, and with one pair key) and the
// Joiner's on_reply. Any input must be opened and decoded or refused with a Status, never
// undefined behaviour; what opens under the fuzz keys must seal again to the same bytes, and
// a secured transport must count everything it refuses.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fuzz_check.hpp"
#include "proto/joiner.hpp"
#include "proto/transport.hpp"
#include "wire/crypto.hpp"
#include "wire/datagram.hpp"
#include "wire/join.hpp"

namespace {

using namespace mstream;
using namespace mstream::wire;
using mstream::fuzz::check;

// The key the corpus (make_corpus.cpp) seals under.
Key fuzz_key() {
  Key k;
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i * 7 + 1);
  return k;
}

// The leader's and the joiner's key pairs of the corpus's join accept.
KxKeyPair fuzz_pair(std::uint8_t salt) {
  Key seed = fuzz_key();
  seed[0] ^= salt;
  return kx_seed_keypair(seed);
}

void check_refusals_counted(proto::Transport& t, ByteView in) {
  const Status st = t.on_datagram(in, 1);
  const proto::TransportStats& s = t.stats();
  if (!st.ok()) {
    const std::uint64_t refused = s.forged_in + s.unsealed_in + s.replayed_in + s.malformed_in +
                                  s.misaddressed_in + s.unknown_site_in + s.paths_refused;
    check(refused == 1, "a refused datagram was not counted once");
  }
  check(s.messages_delivered == 0 || s.forged_in + s.unsealed_in == 0,
        "a forged datagram delivered a message");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Key key = fuzz_key();
  static const bool ready = crypto_ready();
  check(ready, "libsodium did not initialise");
  const ByteView in(data, size);

  SealedHeader h;
  Bytes plain;
  if (open_datagram(key, in, &h, &plain).ok()) {
    Bytes again;
    seal_datagram(key, h, plain, &again);
    check(again.size() == in.size() && std::equal(again.begin(), again.end(), in.begin()),
          "an opened datagram seals to other bytes");
    DecodedDatagram d;
    (void)decode_datagram(plain, &d, Integrity::kSealed);
  }

  // Kind 7, under the key of the sender the header names (a forger's chosen sender).
  if (aegis_available() && peek_sealed(in, &h).ok() && h.kind == kKindSealedAegis) {
    const AegisKey sender(key, h.src_site, h.src_boot);
    if (open_datagram_aegis(sender, in, &h, &plain).ok()) {
      Bytes again;
      seal_datagram_aegis(sender, h.counter, plain, &again);
      check(again.size() == in.size() && std::equal(again.begin(), again.end(), in.begin()),
            "an opened AEGIS-256 datagram seals to other bytes");
      DecodedDatagram d;
      (void)decode_datagram(plain, &d, Integrity::kSealed);
    }
  }

  if (auto m = decode_join(in); m.ok()) {
    Bytes again;
    encode_join(*m, &again);
    auto back = decode_join(again);
    check(back.ok() && back->op == m->op && back->nonce == m->nonce,
          "a decoded join does not survive re-encoding");
  }
  if (auto m = decode_sealed_join(in, key); m.ok()) {
    Bytes again;
    encode_sealed_join(*m, key, &again);
    check(again.size() == in.size() && std::equal(again.begin(), again.end(), in.begin()),
          "an opened sealed join seals to other bytes");
  }

  static const KxKeyPair leader = fuzz_pair(1), own = fuzz_pair(2);
  static const Key accept_key = *kx_joiner_open_key(own, leader.public_key);
  if (auto m = decode_sealed_join(in, accept_key); m.ok()) {
    Bytes again;
    encode_sealed_join(*m, accept_key, &again);
    check(again.size() == in.size() && std::equal(again.begin(), again.end(), in.begin()),
          "an opened sealed accept seals to other bytes");
  }
  proto::Joiner joiner(42, JoinMessage::Role::kSite, 1,
                       proto::JoinSecrets{key, leader.public_key, own});
  (void)joiner.on_reply(in);

  // Site 2 as the leader's process (deriving every pair key), and as a member holding only
  // its key with site 1 (whatever claims another sender is unknown, not opened).
  proto::Transport t(2, {});
  t.set_master_key(key);
  (void)t.open_stream(200);
  check_refusals_counted(t, in);
  proto::Transport member(2, {});
  member.set_pair_key(1, pair_key(key, 1, 2));
  (void)member.open_stream(200);
  check_refusals_counted(member, in);
  return 0;
}
