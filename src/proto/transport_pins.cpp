// The user-stream pin of Transport (kByLocation; proto/sender_pins.hpp): where DATA in the
// name of a user stream is taken from, by the leader's word, and what is counted as a lie.
// Beside transport.cpp, which keeps the paths and channels.
#include <algorithm>

#include "proto/transport.hpp"

namespace mstream::proto {

bool Transport::user_frame_taken(SiteId src, const wire::Frame& f, Time now) {
  // A frame for a stream not here is refused below whoever sent it: nothing to protect.
  if (!config_.pin_user_senders || pins_.allows(f.from_stream, src) || !is_open(f.to_stream))
    return true;
  if (pins_.left(f.from_stream, src)) {
    // A copy from a site the sender left before its last move: its new site re-sends it.
    ++stats_.held_refused;
    queue_reject(src, ChannelKey{f.from_stream, f.to_stream}, f.seq,
                 wire::RejectReason::kNoSuchStream);
    return false;
  }
  ++stats_.held_frames;
  SenderPins::Held evicted;
  if (pins_.hold(src, f, now + config_.pin_hold, now < excused_until_, &evicted))
    refuse_held(evicted);
  ask_about(f.from_stream, now);
  return false;
}

void Transport::ask_about(StreamId from, Time now) {
  auto [it, fresh] = asks_.try_emplace(from, now);
  // An ask on its way covers what came before it; what came after waits for its answer, then
  // for the next ask (on_placed), unless the answer is overdue (a restarted leader).
  if (!fresh && now - it->second < config_.pin_hold) return;
  it->second = now;
  if (fresh && asks_.size() > SenderPins::kMaxHeld) {
    std::erase_if(asks_, [&](const auto& a) { return now - a.second >= 4 * config_.pin_hold; });
    if (asks_.size() > SenderPins::kMaxHeld) {
      asks_.erase(from);  // its frames are refused when their hold is up, never judged
      return;
    }
  }
  if (std::find(unplaced_.begin(), unplaced_.end(), from) == unplaced_.end())
    unplaced_.push_back(from);
}

bool Transport::poll_unplaced(UnplacedSender* out) {
  if (unplaced_.empty()) return false;
  out->from = unplaced_.front();
  out->ask = pins_.last_mark();
  unplaced_.pop_front();
  return true;
}

void Transport::locate_sender(StreamId from, SiteId site, std::uint64_t epoch, Time now) {
  if (site == SenderPins::kDestroyed) retire_sender(from);
  if (!pins_.locate(from, site, epoch)) return;
  // From the sites the word names they are taken; from a site the sender was at before, they
  // are stale copies. Any other site may still be newer than this word (the sender moved
  // twice, and the second word is on its way): they wait for their verdict.
  judge_held(from, 0, {}, now);
  stats_.held_refused += pins_.forget_placed(from);
}

// A destroyed sender's pin names the site its last copies come from (its channels stay there
// until consumed, DESIGN.md). Ids are never reused, so the pin goes once the sender has no
// channel here and kRetiredSenders others were destroyed after it: by then its copies came.
void Transport::retire_sender(StreamId from) {
  retired_senders_.push_back(from);
  std::size_t looked = 0;
  while (retired_senders_.size() > kRetiredSenders && looked++ < retired_senders_.size()) {
    const StreamId old = retired_senders_.front();
    retired_senders_.pop_front();
    if (recv_from_.contains(old))
      retired_senders_.push_back(old);
    else
      pins_.forget(old);
  }
}

void Transport::on_placed(StreamId from, std::uint64_t ask, std::span<const SiteId> going,
                          Time now) {
  auto it = asks_.find(from);
  if (it != asks_.end()) asks_.erase(it);
  judge_held(from, ask, going, now);
  judged_unjudged_.clear();
  pins_.take_unjudged(from, ask, &judged_unjudged_);
  for (const SenderPins::Unjudged& u : judged_unjudged_) {
    if (!u.excused && pins_.judge(from, u.src, going) == SenderPins::Verdict::kUnplaced) {
      ++stats_.wrong_site_frames;
    } else {
      ++stats_.held_refused;
    }
  }
  // Frames that came after the ask this answers wait for one of their own.
  if (pins_.waits_after(from, ask)) ask_about(from, now);
}

// Judges again the frames held for `from`: those marked up to `answered` (the leader's answer
// to an ask that came after them; 0: none) for good.
void Transport::judge_held(StreamId from, std::uint64_t answered, std::span<const SiteId> going,
                           Time now) {
  judged_.clear();
  pins_.take(from, &judged_);
  SenderPins::Held evicted;
  for (SenderPins::Held& h : judged_) {
    // What an answer once said was going there waits for its move's word: a move that failed
    // after its target installed the stream leaves honest copies no word will ever name.
    const bool final = h.mark <= answered && !h.going_there;
    switch (pins_.judge(from, h.src, final ? going : std::span<const SiteId>{})) {
      case SenderPins::Verdict::kTake:
        on_data(h.src, h.bind(), now);
        continue;
      case SenderPins::Verdict::kStale:
        ++stats_.held_refused;
        refuse(h);
        continue;
      case SenderPins::Verdict::kGoing:
        h.going_there = true;
        break;
      case SenderPins::Verdict::kUnplaced:
        if (final) {
          ++(h.excused ? stats_.held_refused : stats_.wrong_site_frames);
          refuse(h);
          continue;
        }
        break;
    }
    if (pins_.keep(std::move(h), &evicted)) refuse_held(evicted);
  }
}

// A held frame whose hold is up, or that was pushed out: refused to its site, then judged
// when the leader's answer comes, unless an answer said its site is where the sender is going.
void Transport::refuse_held(SenderPins::Held& h) {
  refuse(h);
  if (h.going_there) {
    ++stats_.held_refused;
    return;
  }
  SenderPins::Unjudged forgotten;
  if (pins_.remember(h, &forgotten)) ++stats_.held_refused;
}

void Transport::leader_restarted(Time now) {
  excused_until_ = now + config_.pin_words_lost;
  pins_.excuse_all();
}

void Transport::refuse(const SenderPins::Held& h) {
  queue_reject(h.src, ChannelKey{h.frame.from_stream, h.frame.to_stream}, h.frame.seq,
               wire::RejectReason::kNoSuchStream);
}

}  // namespace mstream::proto
