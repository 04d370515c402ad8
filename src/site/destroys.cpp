// A destroy follows its caller's appends (doc/model.md, "Destroying a stream"): a shell
// script and a handler run top to bottom, so a stream_destroy takes effect only after the
// stream consumed every message its caller appended to it before. A shell waits for that
// itself (ShellApi::stream_destroy); a handler cannot wait, so its site holds the request
// here until the caller's messages to the stream are consumed, then sends it to the leader.
// Messages from other senders that reach the destroyed stream are refused back to their
// senders (SiteCore::count_discarded says so to a shell).

#include <algorithm>
#include <set>

#include "site/site_core.hpp"

namespace mstream::site {

// Everything `from` appended to `to` that the stream has not consumed yet: sent and
// unacknowledged, held in the overflow for room, or waiting for the open's verdict.
bool SiteCore::has_unconsumed(StreamId from, StreamId to) const {
  const proto::ChannelKey key{from, to};
  if (const proto::SendChannel* ch = transport_.send_channel(key); ch && ch->unconsumed_count())
    return true;
  if (auto ov = overflow_.find(key); ov != overflow_.end() && !ov->second.empty()) return true;
  auto w = opening_.find(key);
  return w != opening_.end() && !w->second.messages.empty();
}

void SiteCore::request_destroy(std::uint64_t req, wire::DestroyReq m, StreamId caller) {
  const wire::StreamRecord* rec = view_->directory.find(m.name);
  if (rec && caller != 0 && caller != rec->id && has_unconsumed(caller, rec->id)) {
    destroys_waiting_.push_back({req, std::move(m), proto::ChannelKey{caller, rec->id}});
    return;
  }
  send_numbered_request(req, std::move(m));
}

// After releases and refusals: the destroys whose callers' messages are all consumed (or
// gone: the caller's channel left with it, or the stream went another way) go now.
void SiteCore::send_waiting_destroys() {
  if (destroys_waiting_.empty()) return;
  std::vector<WaitingDestroy> ready;
  std::erase_if(destroys_waiting_, [&](WaitingDestroy& w) {
    if (has_unconsumed(w.after.from, w.after.to) && !view_->directory.destroyed(w.after.to))
      return false;
    ready.push_back(std::move(w));
    return true;
  });
  for (WaitingDestroy& w : ready) send_numbered_request(w.req, std::move(w.request));
}

}  // namespace mstream::site

namespace mstream::site {

// A destroyed stream's outgoing channels stay at its last site until their receivers consumed
// what it appended (nothing it accepted is lost); then they go, or every stream ever destroyed
// here would leave its channels behind (doc/session.md "What is forgotten").
void SiteCore::retire_sender(StreamId from, const std::unordered_set<StreamId>& to) {
  for (StreamId t : to)
    if (!drop_if_drained({from, t})) retired_senders_[from].insert(t);
}

std::vector<StreamId> SiteCore::destroyed_senders_holding() const {
  std::set<StreamId> out;
  for (const auto& [from, to] : retired_senders_)
    if (!to.empty()) out.insert(from);
  for (const auto& [key, w] : opening_)
    if (!w.messages.empty() && !is_control(key.from) && !hosted_.contains(key.from))
      out.insert(key.from);
  return {out.begin(), out.end()};
}

bool SiteCore::drop_if_drained(proto::ChannelKey key) {
  const proto::SendChannel* ch = transport_.send_channel(key);
  if (ch && ch->unconsumed_count() > 0) return false;
  if (auto ov = overflow_.find(key); ov != overflow_.end() && !ov->second.empty()) return false;
  (void)transport_.take_send_state(key);
  drop_overflow(key);
  if (auto s = senders_to_.find(key.to); s != senders_to_.end()) {
    s->second.erase(key.from);
    if (s->second.empty()) senders_to_.erase(s);
  }
  return true;
}

// After each step: the channels of destroyed streams that drained since go.
void SiteCore::drop_drained_retired() {
  for (auto it = retired_senders_.begin(); it != retired_senders_.end();) {
    std::erase_if(it->second, [&](StreamId to) {
      const bool dropped = drop_if_drained({it->first, to});
      counters_.channels_retired += dropped;
      return dropped;
    });
    it = it->second.empty() ? retired_senders_.erase(it) : std::next(it);
  }
}

}  // namespace mstream::site
