// The sender rules of control messages at the leader (wire::Sender; doc/security.md, "Sender
// rules"): the one place where the leader decides whether the member that sent a control
// message may send it, before anything acts on it.

#include "leader/leader_core.hpp"
#include "site/ids.hpp"

namespace mstream::leader {

bool LeaderCore::sender_allowed(SiteId from, const wire::ControlMessage& m) const {
  if (options_.sender_rules_off & (1u << static_cast<unsigned>(wire::sender_rule(m)))) return true;
  switch (wire::sender_rule(m)) {
    case wire::Sender::kMember:
      // In its own name: an open for its own control stream, or for a stream (one that may
      // have moved on since its handler asked: the user-stream pin on its DATA, not this,
      // binds a stream's messages to its site).
      if (const auto* o = std::get_if<wire::OpenReq>(&m))
        return o->opener == site::control_stream(from) ||
               (!site::is_control(o->opener) && o->opener != 0);
      return true;
    case wire::Sender::kSite:
      return !site::is_shell(from);
    case wire::Sender::kShell:
      return site::is_shell(from);
    case wire::Sender::kHost:
      if (const auto* d = std::get_if<wire::DetachReq>(&m)) return hosts(from, d->stream);
      if (const auto* e = std::get_if<wire::ErrorReport>(&m)) return hosts(from, e->stream);
      return false;  // a Checkpoint goes to a failure manager, a SyncResult to a shell
    case wire::Sender::kAsked: {
      if (const auto* v = std::get_if<wire::PolicyVerdict>(&m)) {
        if (peer_checks_.contains(v->check)) return from == 0;  // the session controller's
        auto c = checks_.find(v->check);
        if (c == checks_.end()) return false;
        auto op = in_flight_.find(c->second);
        return op != in_flight_.end() && op->second.asking == from;
      }
      StreamId stream = 0;
      if (const auto* i = std::get_if<wire::Installed>(&m)) stream = i->stream;
      if (const auto* st = std::get_if<wire::Settled>(&m)) stream = st->stream;
      auto op = in_flight_.find(stream);
      if (op == in_flight_.end()) return false;
      return std::holds_alternative<wire::Installed>(m) ? from == op->second.target
                                                        : from == op->second.settle_with;
    }
    case wire::Sender::kLeader:
    case wire::Sender::kLeaderOrMoveTarget:
    case wire::Sender::kMoveSource:
    case wire::Sender::kFailureManager:
      return false;  // the leader's own messages, or between sites
  }
  return false;
}

// The stream is at `from`, was there before its last move (a report sent before the move
// may come after it), or is being installed there (created, moved, recovered).
bool LeaderCore::hosts(SiteId from, StreamId stream) const {
  if (auto it = streams_.find(stream); it != streams_.end() && it->second.site == from) return true;
  if (auto st = state_.find(stream); st != state_.end() && st->second.previous_site == from)
    return true;
  auto op = in_flight_.find(stream);
  return op != in_flight_.end() && (op->second.target == from || op->second.source == from);
}

void LeaderCore::moved(StreamId id, SiteId from) { state_[id].previous_site = from; }

// An answer sender_allowed refused may still be one its sender was asked for, come after its
// operation ended otherwise: the target of a move settled with it (after the source failed,
// or the leader restarted) says Installed once the stream's relocation handlers ran, after
// its Settled (sim seed 40003902). Such an answer confirms what the leader knows: the stream
// is at the sender, or was before its last move, at an epoch the leader handed out. A
// forgery (another's stream, an epoch to come) is neither, and is counted.
bool LeaderCore::stale_answer(SiteId from, const wire::ControlMessage& m) const {
  StreamId stream = 0;
  std::uint64_t epoch = 0;
  bool installed = false;
  if (const auto* i = std::get_if<wire::Installed>(&m)) {
    if (i->agent != 0) return false;  // attaches end otherwise only when their site fails
    stream = i->stream;
    epoch = i->epoch;
    installed = true;
  } else if (const auto* st = std::get_if<wire::Settled>(&m)) {
    stream = st->stream;
    epoch = st->epoch;
  } else {
    return false;
  }
  if (site::is_shell(from)) return false;
  auto rec = streams_.find(stream);
  auto st = state_.find(stream);
  if (rec == streams_.end() || st == state_.end()) return false;
  if (rec->second.site != from && st->second.previous_site != from) return false;
  // A move's Installed names the epoch it took effect at; a Settled, the move asked about,
  // which may have been called off (the stream stayed at the source, under its old epoch).
  return epoch <= (installed ? rec->second.epoch : st->second.max_epoch);
}

}  // namespace mstream::leader
