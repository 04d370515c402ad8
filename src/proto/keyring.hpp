#pragma once
// Keyring: the keys of one member's pairs in a secured session (doc/security.md), and the
// sealing and opening of its datagrams under them (wire/crypto.hpp). A member is given the
// key of each pair it is in (set()); the leader's process derives them from the session's
// master key (set_master()). A datagram to a peer is sealed under the key of the pair (self,
// peer); one that says it is from X is opened only under the key of the pair (self, X), so a
// member cannot seal in another's name.
//
// Thread-safety: none; the Transport that owns it drives it.

#include <cstdint>
#include <optional>
#include <unordered_map>

#include "mstream/status.hpp"
#include "proto/types.hpp"
#include "wire/codec.hpp"
#include "wire/crypto.hpp"

namespace mstream::proto {

class Keyring {
 public:
  // Keys derived from the master are kept for at most this many peers (a forger's made-up
  // senders must not make us allocate without bound).
  static constexpr std::size_t kMaxKept = 4096;

  // `aegis`: whether it seals and opens kind 7, AEGIS-256 (TransportConfig::aes, on a CPU
  // that does it).
  Keyring(SiteId self, bool aegis) : self_(self), aegis_(aegis) {}

  void set_master(const wire::Key& master);
  void set(SiteId peer, const wire::Key& key);
  void drop(SiteId peer) { keys_.erase(peer); }
  // The key of the pair (self, peer), if it has or derives it.
  std::optional<wire::Key> key(SiteId peer) const;
  bool aegis() const { return aegis_; }

  // Opens a sealed datagram of any kind into *plain, under the key of the sender its header
  // names (*h). Errors: kNotFound (no key for that sender: not yet, or never), kMalformed (not
  // a sealed datagram), kPermissionDenied (it does not authenticate under that key: sealed by
  // another in the sender's name, tampered with, or another session's).
  Status open(wire::ByteView bytes, wire::SealedHeader* h, wire::Bytes* plain);
  // Seals the path datagram `plain` to `peer` into *out, as (self, boot, counter): kind 7 when
  // `peer_opens_aegis` and this keyring does AEGIS-256, else kind 6 or 2. False (nothing
  // written) when there is no key for `peer`.
  bool seal(SiteId peer, std::uint32_t boot, std::uint64_t counter, bool peer_opens_aegis,
            wire::ByteView plain, wire::Bytes* out);

 private:
  struct PairKeys {
    wire::Key key{};
    std::optional<wire::AegisKey> send_aegis;  // ours, for the boot we seal under
    std::optional<wire::AegisKey> recv_aegis;  // the peer's, for its latest boot that opened
  };
  // The keys of the pair with `peer`: kept, or derived from the master into *scratch; null
  // when there are none.
  PairKeys* find(SiteId peer, PairKeys* scratch);
  // Keeps *scratch (derived) as the keys of `peer`, if there is room; returns what to use.
  PairKeys* keep(SiteId peer, PairKeys* scratch);

  SiteId self_;
  bool aegis_;
  std::optional<wire::Key> master_;
  std::unordered_map<SiteId, PairKeys> keys_;
};

}  // namespace mstream::proto
