// The sender rules of control messages at a site or shell (wire::Sender; doc/security.md,
// "Sender rules"): the one place where a site decides whether the member that sent a control
// message may send it, before anything acts on it. The member's site id is what its
// datagram's seal proves (per-pair keys), and its control stream is pinned to it.

#include <algorithm>

#include "site/per_source_queue.hpp"
#include "site/site_core.hpp"

namespace mstream::site {

SiteCore::Admission SiteCore::admit_control(SiteId from, const wire::ControlMessage& m) const {
  // The leader's process (site 0) gives the session's commands; a site trusts itself.
  if (from == 0 || from == options_.self) return Admission::kAllow;
  if (options_.sender_rules_off & (1u << static_cast<unsigned>(wire::sender_rule(m))))
    return Admission::kAllow;
  const auto allow_if = [](bool ok) { return ok ? Admission::kAllow : Admission::kRefuse; };
  switch (wire::sender_rule(m)) {
    case wire::Sender::kLeader:
      return Admission::kRefuse;
    case wire::Sender::kLeaderOrMoveTarget:
      // The target of a move this member asked for answers it itself: first the stream's
      // new Location, then the Reply (SiteCore::arrived).
      if (const auto* r = std::get_if<wire::Reply>(&m)) {
        auto it = awaiting_replies_.find(r->req);
        return allow_if(it != awaiting_replies_.end() && it->second.move_target == from);
      }
      if (const auto* l = std::get_if<wire::Location>(&m)) {
        if (l->stream.site != from || !l->final_in.empty() || l->settled_below != 0)
          return Admission::kRefuse;
        return allow_if(
            std::any_of(awaiting_replies_.begin(), awaiting_replies_.end(), [&](const auto& a) {
              return a.second.move_target == from && a.second.stream == l->stream.name;
            }));
      }
      return Admission::kRefuse;
    case wire::Sender::kHost:
      if (const auto* c = std::get_if<wire::Checkpoint>(&m)) return admit_checkpoint(from, *c);
      if (const auto* e = std::get_if<wire::ErrorReport>(&m))
        return allow_if(e->told == options_.self && host_as_known(from, e->stream));
      if (const auto* r = std::get_if<wire::SyncResult>(&m))
        return allow_if(host_as_known(from, r->stream));
      return Admission::kRefuse;  // DetachReq: the leader's to take
    case wire::Sender::kFailureManager:
      if (const auto* c = std::get_if<wire::Checkpointed>(&m)) {
        auto it = hosted_.find(c->stream);
        if (it != hosted_.end() && it->second->durable && it->second->durable->sent_to == from)
          return Admission::kAllow;
        // A late answer for a stream that left: from the failure manager all the same.
        const wire::StreamRecord* rec = view_->directory.find(c->stream);
        return allow_if(rec && failure_manager_of(*rec) == from);
      }
      return Admission::kRefuse;
    case wire::Sender::kMoveSource:
      return Admission::kAllow;  // on_arrive: only the source the leader's Expect names
    case wire::Sender::kMember:
    case wire::Sender::kSite:
    case wire::Sender::kShell:
    case wire::Sender::kAsked:
      return Admission::kRefuse;  // for the leader, never for a site
  }
  return Admission::kRefuse;
}

// A checkpoint is taken from the stream's host at the checkpoint's epoch, as the leader told
// this failure manager; one from a site it does not know yet as the host of a later epoch
// waits for the leader's word of the move.
SiteCore::Admission SiteCore::admit_checkpoint(SiteId from, const wire::Checkpoint& c) const {
  const wire::StreamRecord& claimed = c.state.stream;
  if (view_->directory.destroyed(claimed.id)) return Admission::kRefuse;
  const wire::StreamRecord* rec = view_->directory.find(claimed.id);
  if (rec && rec->epoch == claimed.epoch)
    return rec->site == from ? Admission::kAllow : Admission::kRefuse;
  if (auto p = previous_host_.find(claimed.id);
      p != previous_host_.end() && p->second.epoch == claimed.epoch)
    return p->second.site == from ? Admission::kAllow : Admission::kRefuse;
  if (!rec || rec->epoch < claimed.epoch) return Admission::kWait;
  return Admission::kRefuse;
}

// Where this member last heard the stream was, where it was before that, or where its own
// channel to the stream is headed: a report sent from there before a move may come after
// the leader's word of the move.
bool SiteCore::host_as_known(SiteId from, StreamId stream) const {
  if (const wire::StreamRecord* rec = view_->directory.find(stream); rec && rec->site == from)
    return true;
  if (auto p = previous_host_.find(stream); p != previous_host_.end() && p->second.site == from)
    return true;
  const proto::SendChannel* ch =
      transport_.send_channel(proto::ChannelKey{control_stream(options_.self), stream});
  return ch && ch->dest == from;
}

void SiteCore::refuse_control(SiteId, const wire::ControlMessage& m) {
  ++counters_.refused_control[m.index()];
}

void SiteCore::wait_for_host(SiteId from, wire::Checkpoint c) {
  push_per_source(&checkpoints_waiting_, from, std::move(c), kMaxWaitingPerSource,
                  [this](SiteId s, const wire::Checkpoint& old) { refuse_control(s, old); });
}

void SiteCore::recheck_waiting_checkpoints(StreamId stream) {
  for (auto it = checkpoints_waiting_.begin(); it != checkpoints_waiting_.end();) {
    if (it->second.state.stream.id != stream) {
      ++it;
      continue;
    }
    const SiteId from = it->first;
    switch (admit_checkpoint(from, it->second)) {
      case Admission::kWait:
        ++it;
        break;
      case Admission::kAllow:
        on_checkpoint(from, std::move(it->second));
        it = checkpoints_waiting_.erase(it);
        break;
      case Admission::kRefuse:
        refuse_control(from, it->second);
        it = checkpoints_waiting_.erase(it);
        break;
    }
  }
}

}  // namespace mstream::site
