#pragma once
// Directory: a site's replica of the session's directory (every stream's site and epoch, every
// peer), kept current by the leader's Location and PeerUpdate messages. Handlers read it for
// stream_location, list_streams and the like without waiting for the network; it may lag the
// leader by the time those messages take (documented in COMMANDS.md notes).
//
// Thread-safety: none.

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "mstream/status.hpp"
#include "tcl/script_api.hpp"
#include "wire/control.hpp"

namespace mstream::site {

class Directory {
 public:
  // Applies a record unless an newer epoch of the same stream is known. A destroyed stream
  // (site kNoSite) is forgotten. Returns whether it changed anything.
  bool apply(const wire::StreamRecord& rec, const std::vector<wire::InChannel>& final_in = {});
  // The leader's word that every stream id below `below` that this replica lacks was destroyed
  // (wire::Location::settled_below), given after every word before it was applied.
  void settle(std::uint64_t below);
  // A shell that left or failed is forgotten (sites are kept: see gone()).
  void apply(const wire::PeerRecord& peer);

  const wire::StreamRecord* find(const std::string& name) const;
  const wire::StreamRecord* find(std::uint64_t id) const;
  const std::map<std::string, std::uint64_t>& names() const { return by_name_; }
  const std::map<std::uint32_t, wire::PeerRecord>& peers() const { return peers_; }
  const wire::PeerRecord* peer(std::uint32_t site) const;
  // The live site whose system stream NAME is, if it is one.
  std::optional<tcl::SiteNumber> system_site(const std::string& name) const;
  // Whether a member that was in the session left or failed: its record says so, or it was
  // a shell, now forgotten. A member not yet heard of is not gone.
  bool gone(std::uint32_t site) const;
  // Whether this stream was destroyed. Unknown and not destroyed means the replica has not
  // heard of it yet (it lags the leader): a sender must wait, not discard. Stream ids are
  // never reused, so the leader's watermark (settle()) answers for every id below it, and only
  // the last kKeptDestroyed destroyed streams above it, or with their channels' ends, are kept.
  bool destroyed(std::uint64_t id) const {
    if (destroyed_.contains(id)) return true;
    if (id == 0 || id >= settled_below_ || by_id_.contains(id)) return false;
    ++forgotten_answered_;
    return true;
  }
  // How many times destroyed() answered for a stream it keeps nothing of (the watermark).
  std::uint64_t forgotten_answered() const { return forgotten_answered_; }
  // For a destroyed stream: how far the channel from `from` was consumed (0 if it had none, or
  // if it was destroyed before the last kKeptDestroyed: its senders at this site learnt it then).
  std::uint64_t final_consumed(std::uint64_t id, std::uint64_t from) const;
  static constexpr std::size_t kKeptDestroyed = 1024;
  // Fewer (the simulator keeps 1, so that its stale messages meet forgotten streams).
  void set_kept_destroyed(std::size_t n) { kept_destroyed_ = n; }
  std::size_t destroyed_record_count() const { return destroyed_.size(); }
  std::size_t peer_record_count() const { return peers_.size(); }

  // System streams: /system/site/N for every live site N (COMMANDS.md list_streams), the site's
  // own control stream. They are listed and located like other streams, but no script may
  // create, open, append to, move, destroy or attach to one (their controller agents come with
  // policy handlers): kPermissionDenied for a name under /system/, ok otherwise.
  static Status check_user_stream(const std::string& name);
  // kNotFound `no such stream "NAME"`: the one wording of a missing stream, everywhere.
  static Status no_such_stream(const std::string& name);
  // Whether NAME is a stream, a system stream included.
  bool exists(const std::string& name) const;

  // The queries of the script commands (COMMANDS.md), as a shell or handler gets them.
  // kNotFound: `no such stream "NAME"`.
  Result<tcl::SiteNumber> location_of(const std::string& name) const;
  Result<tcl::SiteNumber> creator_of(const std::string& name) const;
  std::vector<tcl::StreamInfo> stream_list() const;  // ordered by name
  std::vector<tcl::SiteNumber> live_sites() const;   // ascending
  std::vector<tcl::PeerInfo> peer_list() const;      // sites, not shells

 private:
  void trim_destroyed();

  std::unordered_map<std::uint64_t, wire::StreamRecord> by_id_;
  std::map<std::string, std::uint64_t> by_name_;  // sorted: list_streams is ordered by name
  std::map<std::uint32_t, wire::PeerRecord> peers_;
  // The latest destroyed streams, with how far each channel into them was consumed, in the
  // order they were destroyed; see destroyed().
  std::unordered_map<std::uint64_t, std::vector<wire::InChannel>> destroyed_;
  std::deque<std::uint64_t> destroyed_order_;
  std::uint64_t settled_below_ = 0;
  std::size_t kept_destroyed_ = kKeptDestroyed;
  mutable std::uint64_t forgotten_answered_ = 0;
  std::uint32_t shells_below_ = 0;  // above every shell id heard of
};

}  // namespace mstream::site
