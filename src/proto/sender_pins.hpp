#pragma once
// SenderPins: where a receiver takes DATA and FRAGMENT in the name of a user stream from
// (doc/security.md, "Members that lie"). Every datagram is sealed under its pair's key, so the
// site a frame comes from is proven; what a member may say in its own name is narrowed by
// where the leader says the sender is. User streams move, so a frame is taken from the site
// the receiver's directory names for its sender, or from the one it was at just before its
// last move (the copies that site had in flight when it let go).
//
// A frame from any other site may be honest: from the sender's new site, whose word has not
// come yet (the leader tells a move at once to watchers, in batches to the others, and not
// before the new site installed the stream), or a late copy from a site it was at before.
// Only the leader can tell that from a lie, so the receiver's site asks it (wire::Watch with
// an ask, answered by wire::Placed once every word it owed the site has gone out on the same
// FIFO channel): a frame that came before the ask and whose site neither the receiver's words
// nor the answer place (the stream's site, a site it was at, or where a move in flight takes
// it) is a forgery, counted by the Transport. Nothing else is: no timing is assumed.
//
// Meanwhile the frame is held (a copy, bounded, for TransportConfig::pin_hold): a word naming
// its site replays it. When its hold time is up it is refused to its site (REJECT, so that an
// honest sender re-sends) and remembered without its payload until the answer judges it.
// Every site the sender was at that a word named (older words included: batched words may
// come after newer ones) is kept, up to kFormerSites of them: a frame from one is a stale copy,
// refused, not counted.
//
// Thread-safety: none; owned by one Transport.

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <span>
#include <unordered_map>
#include <vector>

#include "proto/types.hpp"
#include "wire/datagram.hpp"

namespace mstream::proto {

class SenderPins {
 public:
  // Held frames, at most: a liar's frames for streams that never come here wait this many at
  // once, then the oldest is refused early (and waits for its verdict like the others).
  static constexpr std::size_t kMaxHeld = 256;
  // Refused frames waiting for the leader's answer, at most: beyond it the oldest is forgotten
  // (refused, never counted).
  static constexpr std::size_t kMaxUnjudged = 1024;
  // Sites a sender was at before the last move that are remembered for it, the latest first.
  static constexpr std::size_t kFormerSites = 8;

  // The site of a destroyed sender's word (wire::kNoSite).
  static constexpr SiteId kDestroyed = 0xFFFFFFFFu;

  struct Held {
    SiteId src = 0;
    wire::Frame frame;  // its payload points nowhere while held: see bind()
    wire::Bytes payload;
    Time until = 0;
    // Its place among the frames held (1, 2, ...): the answer to an ask made after it came,
    // which carries a mark at least this, judges it.
    std::uint64_t mark = 0;
    // An answer said the sender may be going to its site: it waits for that move's word, and
    // if its hold runs out first it is refused uncounted.
    bool going_there = false;
    // It came when the receiver's words may lack a site the sender was at (the leader
    // restarted): never counted.
    bool excused = false;
    // REQUIRES: called after the Held was last moved.
    const wire::Frame& bind() {
      frame.payload = payload;
      return frame;
    }
  };
  // A held frame refused before its verdict.
  struct Unjudged {
    StreamId from = 0;
    SiteId src = 0;
    std::uint64_t mark = 0;
    bool excused = false;  // see Held
  };

  enum class Verdict {
    kTake,      // from the site a word names for the sender, or the one before
    kStale,     // from a site a word named for it before: a late copy
    kGoing,     // from a site the leader's answer says the sender may be going to
    kUnplaced,  // none of these: a lie once the leader's answer is in
  };

  // The leader's word: `from` is at `site` since `epoch`. A word of a newer epoch moves the
  // sender; an older one (batched words come late) teaches a site it was at. kNoSite
  // (destroyed) keeps the last site: its last copies may still arrive. Returns whether the
  // frames held for `from` should be judged again.
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
  // Whether a word named `src` for `from` before the site it was at before its last move (one
  // of the last kFormerSites such sites): a copy from there is stale.
  bool left(StreamId from, SiteId src) const;
  // What the words, and `going` (the sites the leader's answer says the sender may be going
  // to), say of a frame from `src` in the name of `from`.
  Verdict judge(StreamId from, SiteId src, std::span<const SiteId> going) {
    if (allows(from, src)) return Verdict::kTake;
    if (left(from, src)) return Verdict::kStale;
    return std::find(going.begin(), going.end(), src) != going.end() ? Verdict::kGoing
                                                                     : Verdict::kUnplaced;
  }

  // Keeps a copy of `f` from `src` until `until`, marked with the next mark. When kMaxHeld
  // are held already, the oldest one goes to *evicted first (true).
  bool hold(SiteId src, const wire::Frame& f, Time until, bool excused, Held* evicted);
  // Keeps `h` again (after take()), with its mark and hold time.
  bool keep(Held&& h, Held* evicted);
  // Moves the frames held for `from` to *out, in the order they came.
  void take(StreamId from, std::vector<Held>* out);
  // Moves the frames whose time is up (until <= now) to *out.
  void expire(Time now, std::vector<Held>* out);
  Time next_expiry() const { return held_.empty() ? kNever : held_.front().until; }
  std::size_t held() const { return held_.size(); }
  // The mark of the last frame held: an ask made now covers every frame held so far.
  std::uint64_t last_mark() const { return marks_; }

  // Remembers a refused frame until its verdict. When kMaxUnjudged wait already, the oldest
  // goes to *forgotten first (true).
  bool remember(const Held& h, Unjudged* forgotten);
  // Moves the frames waiting for a verdict on `from` with a mark up to `up_to` to *out.
  void take_unjudged(StreamId from, std::uint64_t up_to, std::vector<Unjudged>* out);
  // Excuses every frame held or waiting for a verdict now (the leader restarted).
  void excuse_all();
  // Forgets the frames waiting for a verdict on `from` whose site a word names now (for it, or
  // as a site it was at): they were honest. Returns how many.
  std::size_t forget_placed(StreamId from);
  // Whether a frame in the name of `from` marked after `mark` waits for a verdict.
  bool waits_after(StreamId from, std::uint64_t mark) const;
  std::size_t unjudged() const { return unjudged_.size(); }
  std::size_t record_count() const { return records_.size(); }
  // Whether a word named `site` for `from` as where it is or was before its last move.
  bool names(StreamId from, SiteId site) const {
    auto it = records_.find(from);
    return it != records_.end() && (it->second.site == site || it->second.prev == site);
  }
  // Forgets the sender's words (it was destroyed long ago; Transport::retire_sender).
  void forget(StreamId from) {
    records_.erase(from);
    if (cached_from_ == from) cached_from_ = 0;
  }

 private:
  static constexpr SiteId kNone = 0xFFFFFFFFu;
  struct Record {
    SiteId site = kNone;
    SiteId prev = kNone;
    std::uint64_t epoch = 0;
    std::uint64_t prev_epoch = 0;             // of the word that named prev
    std::array<SiteId, kFormerSites> former;  // before prev, the latest first; kNone: empty
    Record() { former.fill(kNone); }
  };
  static bool add_former(Record& r, SiteId site);
  // allows() or left(), without touching the cache.
  bool placed(StreamId from, SiteId src) const;
  std::unordered_map<StreamId, Record> records_;
  // In arrival order; all share one hold time, so the front expires first.
  std::deque<Held> held_;
  std::deque<Unjudged> unjudged_;  // in arrival order
  std::uint64_t marks_ = 0;
  StreamId cached_from_ = 0;  // 0: none (stream id 0 is reserved)
  SiteId cached_src_ = 0;
};

}  // namespace mstream::proto
