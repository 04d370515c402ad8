#include "proto/sender_pins.hpp"

#include <algorithm>

namespace mstream::proto {

bool SenderPins::locate(StreamId from, SiteId site, std::uint64_t epoch) {
  Record& r = records_[from];
  if (r.site != kNone && epoch <= r.epoch) return false;
  r.epoch = epoch;
  if (site == kNone || site == r.site) return true;
  for (std::size_t i = kOlderSites - 1; i > 0; --i) r.older[i] = r.older[i - 1];
  r.older[0] = r.prev;
  r.prev = r.site;
  r.site = site;
  if (cached_from_ == from) cached_from_ = 0;
  return true;
}

bool SenderPins::left(StreamId from, SiteId src) const {
  auto it = records_.find(from);
  return it != records_.end() &&
         std::find(it->second.older.begin(), it->second.older.end(), src) != it->second.older.end();
}

bool SenderPins::hold(SiteId src, const wire::Frame& f, Time until, Held* evicted) {
  bool full = held_.size() >= kMaxHeld;
  if (full) {
    *evicted = std::move(held_.front());
    held_.pop_front();
  }
  Held& h = held_.emplace_back();
  h.src = src;
  h.frame = f;
  h.frame.payload = {};
  h.payload.assign(f.payload.begin(), f.payload.end());
  // Never earlier than the one before it, so that the front stays the first to expire.
  h.until = held_.size() > 1 ? std::max(until, held_[held_.size() - 2].until) : until;
  h.known = known(f.from_stream);
  return full;
}

void SenderPins::take(StreamId from, std::vector<Held>* out) {
  if (held_.empty()) return;
  auto keep = held_.begin();
  for (auto it = held_.begin(); it != held_.end(); ++it) {
    if (it->frame.from_stream == from) {
      out->push_back(std::move(*it));
    } else {
      if (keep != it) *keep = std::move(*it);
      ++keep;
    }
  }
  held_.erase(keep, held_.end());
}

void SenderPins::expire(Time now, std::vector<Held>* out) {
  while (!held_.empty() && held_.front().until <= now) {
    out->push_back(std::move(held_.front()));
    held_.pop_front();
  }
}

}  // namespace mstream::proto
