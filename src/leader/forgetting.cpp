// What the leader forgets of the streams and shells that are gone, and when (doc/session.md
// "What is forgotten"): a session that runs for months with temporary streams and shells that
// come and go must not grow with them, in memory or in its durable state.
#include "leader/leader_core.hpp"
#include "leader/leader_internal.hpp"

namespace mstream::leader {

StreamId LeaderCore::settled_below() const {
  StreamId below = next_stream_;
  for (const auto& [id, op] : in_flight_)
    if (id < below && std::holds_alternative<wire::CreateReq>(op.request)) below = id;
  return below;
}

// A shell that left or failed: every member heard of it (the PeerUpdate went out first, on
// every channel), so nothing needs its record any more. Its id is never given again, and its
// datagrams are dropped by every transport that fenced it. Sites are kept: a failed site's
// record says its failure manager's streams are elsewhere, and sites are few.
void LeaderCore::forget_shell(SiteId shell) {
  auto it = peers_.find(shell);
  if (it == peers_.end() || it->second.live || !it->second.shell) return;
  peers_.erase(it);
  std::erase_if(join_nonces_, [shell](const auto& n) { return n.second == shell; });
  admitted_at_.erase(shell);
  wave_replies_.erase(shell);
  touch_peer(shell);  // its stored record goes too (take_changes)
}

// A destroyed stream's messages not yet consumed are still sent from the site it was destroyed
// at. A receiver's site that never had the word of that site (it joined, or restarted, after
// the destroy) asks (wire::Watch); the answer names it (wire::Placed::destroyed_at), for the
// last kRetiredKept destroyed streams, across a restart of the leader too.
void LeaderCore::retire(StreamId id, SiteId site, std::uint64_t epoch) {
  if (auto old = retired_.find(id); old != retired_.end()) retired_order_.erase(old->second.order);
  const std::uint64_t order = ++retired_count_;
  retired_[id] = {site, epoch, order};
  retired_order_[order] = id;
  touch_retired(id);
  while (retired_.size() > kRetiredKept) {
    const StreamId oldest = retired_order_.begin()->second;
    retired_order_.erase(retired_order_.begin());
    retired_.erase(oldest);
    touch_retired(oldest);  // its record goes too (take_changes)
  }
}

LeaderCore::Sizes LeaderCore::sizes() const {
  Sizes s;
  s.peers = peers_.size();
  s.join_nonces = join_nonces_.size();
  s.streams = streams_.size();
  s.stream_states = state_.size();
  s.agents = agents_.size();
  s.requests_done_by = requests_done_by_.size();
  std::size_t delegated = 0;
  for (const auto& [site, d] : delegated_) delegated += d.size() + 1;
  s.delegated = delegated;
  s.admitted_at = admitted_at_.size();
  s.controls = controls_.size();
  s.dirty_streams = dirty_streams_.size();
  s.batched_locations = batched_locations_.size();
  s.retired = retired_.size();
  return s;
}

}  // namespace mstream::leader
