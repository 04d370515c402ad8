#include "proto/sender_pins.hpp"

#include <algorithm>

namespace mstream::proto {

bool SenderPins::locate(StreamId from, SiteId site, std::uint64_t epoch) {
  Record& r = records_[from];
  if (r.site != kNone && epoch <= r.epoch) {
    // A batched word that came after a newer one (or a repeat): a site the sender was at.
    if (site == kNone || site == r.site || site == r.prev) return false;
    if (epoch < r.epoch && epoch > r.prev_epoch) {
      // The site it was at just before its last word, which this site had not heard of: its
      // copies come from there, not from the older prev. A destroyed sender's channels stay
      // at that site for good, and a site that heard of the destroy first refused them for
      // ever (sim seeds 123003016, 123011346).
      if (r.prev != kNone) add_former(r, r.prev);
      if (auto f = std::find(r.former.begin(), r.former.end(), site); f != r.former.end()) {
        std::move(f + 1, r.former.end(), f);
        r.former.back() = kNone;
      }
      r.prev = site;
      r.prev_epoch = epoch;
      if (cached_from_ == from) cached_from_ = 0;
      return true;
    }
    return add_former(r, site);
  }
  if (site == kNone || site == r.site) {
    r.epoch = epoch;
    return true;
  }
  if (r.prev != kNone) add_former(r, r.prev);
  r.prev = r.site;
  r.prev_epoch = r.site == kNone ? 0 : r.epoch;  // the first word heard may be the destroy
  r.epoch = epoch;
  r.site = site;
  if (cached_from_ == from) cached_from_ = 0;
  return true;
}

bool SenderPins::add_former(Record& r, SiteId site) {
  auto end = std::find(r.former.begin(), r.former.end(), site);
  if (end == r.former.begin()) return false;
  const bool added = end == r.former.end();
  if (added) --end;  // the oldest is forgotten
  std::move_backward(r.former.begin(), end, end + 1);
  r.former[0] = site;
  return added;
}

bool SenderPins::left(StreamId from, SiteId src) const {
  auto it = records_.find(from);
  return it != records_.end() && std::find(it->second.former.begin(), it->second.former.end(),
                                           src) != it->second.former.end();
}

bool SenderPins::hold(SiteId src, const wire::Frame& f, Time until, bool excused, Held* evicted) {
  Held h;
  h.src = src;
  h.frame = f;
  h.frame.payload = {};
  h.payload.assign(f.payload.begin(), f.payload.end());
  h.until = until;
  h.mark = ++marks_;
  h.excused = excused;
  return keep(std::move(h), evicted);
}

bool SenderPins::keep(Held&& h, Held* evicted) {
  const bool full = held_.size() >= kMaxHeld;
  if (full) {
    *evicted = std::move(held_.front());
    held_.pop_front();
  }
  // Never earlier than the one before it, so that the front stays the first to expire.
  if (!held_.empty()) h.until = std::max(h.until, held_.back().until);
  held_.push_back(std::move(h));
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

bool SenderPins::remember(const Held& h, Unjudged* forgotten) {
  const bool full = unjudged_.size() >= kMaxUnjudged;
  if (full) {
    *forgotten = unjudged_.front();
    unjudged_.pop_front();
  }
  unjudged_.push_back(Unjudged{h.frame.from_stream, h.src, h.mark, h.excused});
  return full;
}

void SenderPins::take_unjudged(StreamId from, std::uint64_t up_to, std::vector<Unjudged>* out) {
  auto keep = std::remove_if(unjudged_.begin(), unjudged_.end(), [&](const Unjudged& u) {
    if (u.from != from || u.mark > up_to) return false;
    out->push_back(u);
    return true;
  });
  unjudged_.erase(keep, unjudged_.end());
}

void SenderPins::excuse_all() {
  for (Held& h : held_) h.excused = true;
  for (Unjudged& u : unjudged_) u.excused = true;
}

bool SenderPins::placed(StreamId from, SiteId src) const {
  auto it = records_.find(from);
  if (it == records_.end()) return false;
  const Record& r = it->second;
  return r.site == src || r.prev == src ||
         std::find(r.former.begin(), r.former.end(), src) != r.former.end();
}

std::size_t SenderPins::forget_placed(StreamId from) {
  const std::size_t before = unjudged_.size();
  std::erase_if(unjudged_,
                [&](const Unjudged& u) { return u.from == from && placed(from, u.src); });
  return before - unjudged_.size();
}

bool SenderPins::waits_after(StreamId from, std::uint64_t mark) const {
  const auto after = [&](StreamId f, std::uint64_t m) { return f == from && m > mark; };
  return std::any_of(
             held_.begin(), held_.end(),
             [&](const Held& h) { return !h.going_there && after(h.frame.from_stream, h.mark); }) ||
         std::any_of(unjudged_.begin(), unjudged_.end(),
                     [&](const Unjudged& u) { return after(u.from, u.mark); });
}

}  // namespace mstream::proto
