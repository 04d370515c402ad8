#pragma once
// Directory: a site's replica of the session's directory (every stream's site and epoch, every
// peer), kept current by the leader's Location and PeerUpdate messages. Handlers read it for
// stream_location, list_streams and the like without waiting for the network; it may lag the
// leader by the time those messages take (documented in COMMANDS.md notes).
//
// Thread-safety: none.

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "wire/control.hpp"

namespace mstream::site {

class Directory {
 public:
  // Applies a record unless an newer epoch of the same stream is known. A destroyed stream
  // (site kNoSite) is forgotten. Returns whether it changed anything.
  bool apply(const wire::StreamRecord& rec);
  void apply(const wire::PeerRecord& peer) { peers_[peer.site] = peer; }

  const wire::StreamRecord* find(const std::string& name) const;
  const wire::StreamRecord* find(std::uint64_t id) const;
  const std::map<std::string, std::uint64_t>& names() const { return by_name_; }
  const std::map<std::uint32_t, wire::PeerRecord>& peers() const { return peers_; }
  const wire::PeerRecord* peer(std::uint32_t site) const;
  // Whether this stream was destroyed. Unknown and not destroyed means the replica has not
  // heard of it yet (it lags the leader): a sender must wait, not discard.
  bool destroyed(std::uint64_t id) const { return destroyed_.contains(id); }

 private:
  std::unordered_map<std::uint64_t, wire::StreamRecord> by_id_;
  std::map<std::string, std::uint64_t> by_name_;  // sorted: list_streams is ordered by name
  std::map<std::uint32_t, wire::PeerRecord> peers_;
  std::unordered_set<std::uint64_t> destroyed_;  // 8 bytes per stream ever destroyed
};

}  // namespace mstream::site
