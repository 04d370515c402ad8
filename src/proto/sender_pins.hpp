#pragma once
// SenderPins: where a receiver takes DATA and FRAGMENT in the name of a user stream from
// (doc/security.md, "Members that lie"). Every datagram is sealed under its pair's key, so the
// site a frame comes from is proven; what a member may say in its own name is narrowed by
// where the leader says the sender is. User streams move, so a frame is taken from the site
// the receiver's directory names for its sender, or from the one it was at just before its
// last move (the copies that site had in flight when it let go).
//
// The leader's word reaches a site a little after a move (at once to watchers, else in
// batches), so a frame from any other site may be from the sender's new site, not yet heard
// of, as much as a lie. Such a frame is held (a copy, bounded) until the word comes: the word
// naming its site replays it; a word naming another one may be followed by one naming it (two
// quick moves), so it waits out its hold time, and then, the receiver knowing the sender
// elsewhere, it is a forgery (counted by the Transport). From a site the sender was at before
// the last two words it is a stale copy (refused, not counted). A frame dropped for any
// reason is refused to its site (REJECT), so an honest sender misjudged re-sends it; a liar
// gains nothing by that.
//
// Thread-safety: none; owned by one Transport.

#include <array>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "proto/types.hpp"
#include "wire/datagram.hpp"

namespace mstream::proto {

class SenderPins {
 public:
  // Held frames, at most: a liar's frames for streams that never come here wait this many at
  // once, then the oldest is judged as if its time was up.
  static constexpr std::size_t kMaxHeld = 256;

  struct Held {
    SiteId src = 0;
    wire::Frame frame;  // its payload points nowhere while held: see bind()
    wire::Bytes payload;
    Time until = 0;
    bool known = false;  // the receiver knew a site for the sender when it came
    // REQUIRES: called after the Held was last moved.
    const wire::Frame& bind() {
      frame.payload = payload;
      return frame;
    }
  };

  // The leader's word: `from` is at `site` since `epoch`. A word of an epoch not newer than the
  // one known changes nothing (false). kNoSite (destroyed) keeps the last site: its last
  // copies may still arrive.
  bool locate(StreamId from, SiteId site, std::uint64_t epoch);

  // Whether a frame in the name of `from` is taken from `src`. The last answer that said yes is
  // remembered, so that the frames of one channel in a datagram cost one lookup.
  bool allows(StreamId from, SiteId src) {
    if (from == cached_from_ && src == cached_src_) return true;
    auto it = records_.find(from);
    if (it == records_.end() || (it->second.site != src && it->second.prev != src)) return false;
    cached_from_ = from;
    cached_src_ = src;
    return true;
  }
  bool known(StreamId from) const { return records_.contains(from); }
  // Whether `src` is a site `from` was at before the last two words (kOlderSites of them): a
  // copy that waited through two moves of its sender, not taken (its sender re-sends from
  // where it is) but no lie either.
  bool left(StreamId from, SiteId src) const;

  // Keeps a copy of `f` from `src` until `until`. When kMaxHeld are held already, the oldest
  // one goes to *evicted first (true).
  bool hold(SiteId src, const wire::Frame& f, Time until, Held* evicted);
  // Moves the frames held for `from` to *out, in the order they came.
  void take(StreamId from, std::vector<Held>* out);
  // Moves the frames whose time is up (until <= now) to *out.
  void expire(Time now, std::vector<Held>* out);
  Time next_expiry() const { return held_.empty() ? kNever : held_.front().until; }
  std::size_t held() const { return held_.size(); }

 private:
  static constexpr SiteId kNone = 0xFFFFFFFFu;
  static constexpr std::size_t kOlderSites = 2;
  struct Record {
    SiteId site = kNone;
    SiteId prev = kNone;
    std::uint64_t epoch = 0;
    std::array<SiteId, kOlderSites> older{kNone, kNone};  // before prev, the latest first
  };
  std::unordered_map<StreamId, Record> records_;
  // In arrival order; all share one hold time, so the front expires first.
  std::deque<Held> held_;
  StreamId cached_from_ = 0;  // 0: none (stream id 0 is reserved)
  SiteId cached_src_ = 0;
};

}  // namespace mstream::proto
