// The user-stream pin of Transport (kByLocation; proto/sender_pins.hpp): where DATA in the
// name of a user stream is taken from, by the leader's word. Beside transport.cpp, which keeps
// the paths and channels.
#include "proto/transport.hpp"

namespace mstream::proto {

bool Transport::user_frame_taken(SiteId src, const wire::Frame& f, Time now) {
  // A frame for a stream not here is refused below whoever sent it: nothing to protect.
  if (!config_.pin_user_senders || pins_.allows(f.from_stream, src) || !is_open(f.to_stream))
    return true;
  if (pins_.left(f.from_stream, src)) {
    // A copy from a site the sender left before its last move: its new site re-sends it.
    SenderPins::Held stale{src, f, {}, now, true};
    drop_held(stale, false);
    return false;
  }
  ++stats_.held_frames;
  // A sender we know of, from a site the last word did not name: that word lags. Its site
  // core watches the sender from now on.
  if (pins_.known(f.from_stream) && (unplaced_.empty() || unplaced_.back() != f.from_stream) &&
      unplaced_.size() < SenderPins::kMaxHeld)
    unplaced_.push_back(f.from_stream);
  SenderPins::Held evicted;
  if (pins_.hold(src, f, now + config_.pin_hold, &evicted))
    drop_held(evicted, evicted.known && !pins_.left(evicted.frame.from_stream, evicted.src));
  return false;
}

void Transport::locate_sender(StreamId from, SiteId site, std::uint64_t epoch, Time now) {
  if (!pins_.locate(from, site, epoch)) return;
  judged_.clear();
  pins_.take(from, &judged_);
  // From the sites the word names they are taken; from a site the sender left before, they
  // are stale copies. Any other site may still be newer than this word (the sender moved
  // twice, and the second word is on its way): they wait out their hold time.
  SenderPins::Held evicted;
  for (SenderPins::Held& h : judged_) {
    if (pins_.allows(from, h.src)) {
      on_data(h.src, h.bind(), now);
    } else if (pins_.left(from, h.src)) {
      drop_held(h, false);
    } else if (pins_.hold(h.src, h.bind(), h.until, &evicted)) {
      drop_held(evicted, evicted.known && !pins_.left(evicted.frame.from_stream, evicted.src));
    }
  }
}

void Transport::drop_held(SenderPins::Held& h, bool forged) {
  if (forged) {
    ++stats_.wrong_site_frames;
  } else {
    ++stats_.held_refused;
  }
  queue_reject(h.src, ChannelKey{h.frame.from_stream, h.frame.to_stream}, h.frame.seq,
               wire::RejectReason::kNoSuchStream);
}

}  // namespace mstream::proto
