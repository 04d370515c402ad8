#include "proto/keyring.hpp"

#include <string>

namespace mstream::proto {

void Keyring::set_master(const wire::Key& master) {
  master_ = master;
  keys_.clear();
}

void Keyring::set(SiteId peer, const wire::Key& key) {
  PairKeys& k = keys_[peer];
  if (k.key != key) {  // the AEGIS-256 subkeys were of the old one
    k.key = key;
    k.send_aegis.reset();
    k.recv_aegis.reset();
  }
}

std::optional<wire::Key> Keyring::key(SiteId peer) const {
  auto it = keys_.find(peer);
  if (it != keys_.end()) return it->second.key;
  if (master_) return wire::pair_key(*master_, self_, peer);
  return std::nullopt;
}

Keyring::PairKeys* Keyring::find(SiteId peer, PairKeys* scratch) {
  auto it = keys_.find(peer);
  if (it != keys_.end()) return &it->second;
  if (!master_) return nullptr;
  scratch->key = wire::pair_key(*master_, self_, peer);
  return scratch;
}

Keyring::PairKeys* Keyring::keep(SiteId peer, PairKeys* scratch) {
  if (keys_.size() >= kMaxKept) return scratch;
  return &keys_.emplace(peer, std::move(*scratch)).first->second;
}

Status Keyring::open(wire::ByteView bytes, wire::SealedHeader* h, wire::Bytes* plain) {
  if (Status st = wire::peek_sealed(bytes, h); !st.ok()) return st;
  PairKeys scratch;
  PairKeys* k = find(h->src_site, &scratch);
  if (k == nullptr)
    return Status::error(Status::Code::kNotFound, "sealed datagram from site " +
                                                      std::to_string(h->src_site) +
                                                      ", whose key this site does not have");
  Status st = Status::ok_status();
  if (h->kind == wire::kKindSealedAegis) {
    if (!aegis_)
      return Status::error(Status::Code::kPermissionDenied,
                           "sealed datagram: AEGIS-256, which this transport does not open");
    if (k->recv_aegis && k->recv_aegis->boot() == h->src_boot) {
      st = wire::open_datagram_aegis(*k->recv_aegis, bytes, h, plain);
    } else {
      // Kept only once a datagram authenticated under it: a forger's made-up boots cost a
      // derivation each, and displace nothing.
      const wire::AegisKey sender(k->key, h->src_site, h->src_boot);
      st = wire::open_datagram_aegis(sender, bytes, h, plain);
      if (st.ok()) k->recv_aegis = sender;
    }
  } else {
    st = wire::open_datagram(k->key, bytes, h, plain);
  }
  // A derived key is kept once a datagram authenticated under it.
  if (st.ok() && k == &scratch) (void)keep(h->src_site, &scratch);
  return st;
}

bool Keyring::seal(SiteId peer, std::uint32_t boot, std::uint64_t counter, bool peer_opens_aegis,
                   wire::ByteView plain, wire::Bytes* out) {
  PairKeys scratch;
  PairKeys* k = find(peer, &scratch);
  if (k == nullptr) return false;
  if (k == &scratch) k = keep(peer, &scratch);  // a path goes there (paths are bounded)
  if (aegis_ && peer_opens_aegis) {
    if (!k->send_aegis || k->send_aegis->boot() != boot) k->send_aegis.emplace(k->key, self_, boot);
    wire::seal_datagram_aegis(*k->send_aegis, counter, plain, out);
  } else {
    wire::seal_datagram(
        k->key, {self_, boot, counter, aegis_ ? wire::kKindSealedAegisCapable : wire::kKindSealed},
        plain, out);
  }
  return true;
}

}  // namespace mstream::proto
