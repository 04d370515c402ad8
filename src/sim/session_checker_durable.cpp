// The SessionChecker's judgement of durable streams (session_checker.hpp: durable_exactly_once,
// durable_state): what a recovery restored, and what it took back.
#include <algorithm>
#include <set>

#include "sim/session_checker.hpp"

namespace mstream::sim {

void SessionChecker::set_durable(StreamId id) { stream(id).durable = true; }

// A checkpoint at site 0 after the failure manager crashed was taken once the stream's site
// knew it (SiteCore::on_failure_manager_failed): it covers all that was ever acknowledged.
// Whether or not a recovery ever restores it, a stored checkpoint must be a state the stream
// was in (check_restorable), judged when it is stored: the run that made a bad one may never
// crash where it would be restored (sim seed 9009270 did, once).
void SessionChecker::on_checkpoint_stored(SiteId site, StreamId id, const DurableRestore& r) {
  Stream& st = stream(id);
  if (site == 0 && st.lapsed && crashed_.contains(st.failure_manager)) st.lapsed = false;
  if (!r.found || st.void_) return;
  const std::string what = name(id) + "'s checkpoint (epoch " + std::to_string(r.epoch) +
                           " version " + std::to_string(r.version) + ") stored at site " +
                           std::to_string(site);
  if (!r.readable) {
    fail("durable_state", what + " does not decode to its agent's");
    return;
  }
  (void)check_restorable(id, r, what);
}

// The restored checkpoint must be a state the stream was in (check_restorable). The stream's
// pairs then resume there.
void SessionChecker::on_durable_restore(StreamId id, const DurableRestore& r) {
  Stream& st = stream(id);
  const std::string what =
      name(id) + "'s recovery (life " + std::to_string(st.life()) + ")" +
      (r.found ? " from epoch " + std::to_string(r.epoch) + " version " + std::to_string(r.version)
               : std::string(" with no checkpoint"));
  if (!r.readable) {
    fail("durable_state", what + " restored a checkpoint that does not decode to its agent's");
    return;
  }
  std::map<SessionChecker::Pair*, std::uint64_t> held = check_restorable(id, r, what);
  st.append_runs = r.state.handled;
  st.consumed_hash = r.state.hash;
  if (!st.lapsed) take_back_appends(id, r, what);
  // With no checkpoint it starts over as a sender too, numbering from 1 under its recovery's
  // origin: what its last life had appended and not had consumed may be lost with that life
  // (its failure manager's crash took the checkpoint that held it).
  if (!r.found) {
    const std::uint32_t l = sender_life(id);
    if (st.lapsed && std::any_of(pairs_.begin(), pairs_.end(), [&](const auto& e) {
          return std::get<0>(e.first) == id && std::get<1>(e.first) == l && !e.second.gids.empty();
        }))
      ++senders_restarted_;
    st.sender_origins.push_back(st.origins.back());
  }
  if (st.lapsed) {
    // Acknowledged messages may be past what site 0 held: judged as any stream from now on.
    st.void_ = true;
    return;
  }
  if (st.void_) return;
  for (auto& [p, k] : held) {
    if (p->acked_ever > k) {
      fail("durable_exactly_once", what + " restored " + std::to_string(k) +
                                       " consumed messages of a sender acknowledged " +
                                       std::to_string(p->acked_ever));
    }
    p->receiver_life = st.life();
    p->consumed = k;
  }
}

// What a checkpoint says the sender `id` (in its life `l`) appended to `to`: the count its
// briefcase keeps, and its channel out of that life's numbering, if it has one.
std::pair<std::uint64_t, const DurableRestore::Out*> SessionChecker::appended_to(
    StreamId id, std::uint32_t l, StreamId to, const DurableRestore& r) const {
  auto sent = r.sent_to.find(to);
  const std::uint64_t kept = sent == r.sent_to.end() ? 0 : sent->second;
  const auto out = std::find_if(r.out.begin(), r.out.end(), [&](const auto& o) {
    return o.to == to && sender_life_of(id, o.origin) == l;
  });
  return {kept, out == r.out.end() ? nullptr : &*out};
}

// A state the stream was in: its briefcase holds each message once, a prefix of each pair,
// and exactly as much of each pair as its channel in says was consumed (a pair of an older
// life of the sender than its channel's has no entry: its prefix stopped growing when that
// life crashed); and as many messages appended to each receiver as its channel out numbers.
// Returns, per pair, the prefix the state holds.
std::map<SessionChecker::Pair*, std::uint64_t> SessionChecker::check_restorable(
    StreamId id, const DurableRestore& r, const std::string& what) {
  const Stream& st = stream(id);
  std::uint64_t hash = 0;
  std::map<Pair*, std::uint64_t> held;  // per pair, the prefix the state holds
  std::set<std::uint64_t> seen;
  for (const std::uint64_t gid : r.state.consumed) {
    hash += session_gid_hash(gid);
    if (!seen.insert(gid).second) {
      fail("durable_exactly_once",
           what + ": its state counts message " + std::to_string(gid) + " twice");
      continue;
    }
    auto it = truth_.find(gid);
    if (it == truth_.end() || it->second.to != id) {
      fail("durable_state",
           what + ": its state has message " + std::to_string(gid) + ", never appended to it");
      continue;
    }
    const Message& m = it->second;
    std::uint64_t& prefix = held[&pairs_[{m.from, m.life, m.to}]];
    // A stream judged as any other since an earlier recovery may hold a pair from past where
    // its state started over (what the sender had seen acknowledged, it did not re-send).
    if (m.position != prefix + 1 && !st.void_) {
      fail("durable_state", what + ": its state has message #" + std::to_string(m.position) +
                                " of " + name(m.from) + " after #" + std::to_string(prefix));
    }
    prefix = std::max(prefix, m.position);
  }
  if (r.state.handled != r.state.consumed.size() || r.state.hash != hash) {
    fail("durable_state", what + ": its briefcase counts " + std::to_string(r.state.handled) +
                              " messages but lists " + std::to_string(r.state.consumed.size()) +
                              (r.state.hash != hash ? ", with another hash" : ""));
  }
  for (auto& [key, p] : pairs_) {
    const auto& [from, l, to] = key;
    if (to != id) continue;
    const std::uint64_t k = held.contains(&p) ? held[&p] : 0;
    std::optional<std::uint64_t> channel;  // what the channel says of this pair, if anything
    for (const DurableRestore::In& e : r.in) {
      if (e.from != from) continue;
      const std::uint32_t el = sender_life_of(from, e.origin);  // the life the channel numbers
      if (el == l) channel = e.consumed_up_to;
      if (el < l) channel = 0;  // the checkpoint predates this life of the sender
    }
    if (!channel &&
        std::none_of(r.in.begin(), r.in.end(), [&](const auto& e) { return e.from == from; }))
      channel = 0;  // no channel from that sender at all
    if (channel && *channel != k && !st.void_) {
      fail("durable_state", what + ": its state holds " + std::to_string(k) + " messages of " +
                                name(from) + (l > 0 ? " (life " + std::to_string(l) + ")" : "") +
                                ", its channel says " + std::to_string(*channel) +
                                " were consumed");
    }
    held[&p] = k;
  }
  for (auto& [key, p] : pairs_) {
    const auto& [from, l, to] = key;
    if (from != id) continue;
    const auto [kept, out] = appended_to(id, l, to, r);
    const auto w = r.waiting_to.find(to);
    const std::uint64_t waiting = w == r.waiting_to.end() ? 0 : w->second;
    if (out && out->next_seq - 1 + waiting != kept) {
      fail("durable_state", what + ": its briefcase has " + std::to_string(kept) +
                                " messages appended to " + name(to) + ", its channel numbers " +
                                std::to_string(out->next_seq - 1) + " and " +
                                std::to_string(waiting) + " wait for an open");
    }
  }
  return held;
}

// A durable sender's recovery takes back what its handlers appended after the restored
// checkpoint: those were held (output commit), so no receiver may have consumed one, and its
// re-run numbers its messages from the checkpoint's counts again.
void SessionChecker::take_back_appends(StreamId id, const DurableRestore& r,
                                       const std::string& what) {
  for (auto& [key, p] : pairs_) {
    const auto& [from, l, to] = key;
    if (from != id || l != sender_life(id)) continue;  // an earlier life's rest is lost with it
    const auto [kept, out] = appended_to(id, l, to, r);
    // It knows again only what its checkpoint knew consumed, and re-sends the rest (receivers
    // drop what they have): a receiver that starts over meanwhile may consume those again.
    if (out) {
      p.acked = std::min(p.acked, out->consumed_up_to);
      p.acked_at_recovery = std::min(p.acked_at_recovery, out->consumed_up_to);
    }
    if (kept > p.gids.size()) {
      fail("durable_state", what + ": its briefcase has " + std::to_string(kept) +
                                " messages appended to " + name(to) + ", of " +
                                std::to_string(p.gids.size()) + " ever appended");
      continue;
    }
    for (std::size_t i = kept; i < p.gids.size(); ++i) {
      auto it = truth_.find(p.gids[i]);
      if (it->second.consumed) {
        fail("durable_exactly_once", what + " took back message #" + std::to_string(i + 1) +
                                         " it appended to " + name(to) + " after its checkpoint (" +
                                         std::to_string(kept) + "), but it was consumed");
      }
      truth_.erase(it);
    }
    p.gids.resize(kept);
  }
}

}  // namespace mstream::sim
