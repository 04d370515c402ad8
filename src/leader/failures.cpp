// LeaderCore's failures: declaring a site failed, settling its moves, recovering its streams
// at their failure managers (doc/session.md). Beside leader_core.cpp.
#include <algorithm>
#include <array>
#include <iterator>
#include <limits>

#include "leader/leader_core.hpp"
#include "leader/leader_internal.hpp"
#include "leader/leader_state.hpp"
#include "site/directory.hpp"
#include "site/ids.hpp"
#include "wire/fields.hpp"

namespace mstream::leader {

// ---------------------------------------------------------------------------------------
// Failures

void LeaderCore::check_liveness(Time now) {
  next_liveness_check_ = now + options_.failure_timeout / 8;
  // A target failing after its Installed is declared failed within the failure timeout
  // (and a check) of it; one alive that long has its answer through (a partition that long
  // would have it declared failed).
  for (auto it = delegated_.begin(); it != delegated_.end();) {
    std::erase_if(it->second,
                  [&](const Delegated& a) { return now - a.at > 2 * options_.failure_timeout; });
    it = it->second.empty() ? delegated_.erase(it) : std::next(it);
  }
  std::vector<SiteId> silent;
  for (const auto& [id, p] : peers_) {
    if (id == 0 || !p.live) continue;
    Time heard = last_heard_ ? last_heard_(id) : now;
    auto at = admitted_at_.find(id);
    if (at != admitted_at_.end()) heard = std::max(heard, at->second);
    if (now - heard > options_.failure_timeout) silent.push_back(id);
  }
  for (SiteId id : silent) declare_failed(id, now);
}

void LeaderCore::declare_failed(SiteId peer, Time now) {
  auto it = peers_.find(peer);
  if (peer == 0 || it == peers_.end() || !it->second.live) return;
  it->second.live = 0;
  touch_peer(peer);
  const bool first_failure = !failures_seen_;
  failures_seen_ = true;
  const bool shell = it->second.shell != 0;
  // Answers it owed (moves it was the target of) come from here.
  if (auto d = delegated_.find(peer); d != delegated_.end()) {
    for (const Delegated& a : d->second) {
      send(a.requester, wire::Location{a.rec});
      send(a.requester, wire::Reply{a.req, kOk, std::to_string(peer)});
      ++stats_.answers_repeated;
    }
    delegated_.erase(d);
  }
  log_.push_back(std::string(shell ? "shell " : "site ") + std::to_string(peer) +
                 " failed: not heard from for " +
                 std::to_string(options_.failure_timeout / proto::kMillisecond) + " ms");
  // Everyone fences it first (PeerUpdate goes ahead of any relocation on every channel), so
  // nothing it still sends is taken once its streams live elsewhere.
  broadcast(wire::PeerUpdate{it->second});
  if (shell) {
    drop_temp_streams(peer);
    forget_shell(peer);
  } else {
    fail_site_ops(peer);
  }
  // A wave under way goes on without the failed peer; but the first failure changes what a
  // wave asks (the waiting shells too), and shells not probed would keep it open for ever
  // (sim seed 66): it starts again instead.
  if (wave_open_ && first_failure) {
    last_wave_.reset();
    start_wave(now);
    return;
  }
  maybe_complete_wave(now);
}

// The state site `peer` kept is gone: operations it was an end of fail, its streams go to
// their failure managers, and what it had cached or watched is forgotten.
void LeaderCore::fail_site_ops(SiteId peer) {
  touch_all();
  // First: a restarted site 0 is where its streams may be recovered, and needs their code.
  for (auto& [id, st] : state_) st.watchers.erase(peer);
  for (auto& [agent, info] : agents_) info.visited.erase(peer);
  // Site 0 "fails" only when this process restarted: it runs the same controllers again.
  if (peer != 0) controls_.erase(peer);
  std::vector<StreamId> affected;
  for (const auto& [id, op] : in_flight_) {
    if (!op.vetted) {  // still being checked: nothing happened yet anywhere
      auto rec = streams_.find(id);
      const bool create = std::holds_alternative<wire::CreateReq>(op.request);
      if (op.asking == peer || (rec != streams_.end() && rec->second.site == peer) ||
          (create && op.target == peer))
        affected.push_back(id);
      continue;
    }
    if (op.target == peer || op.source == peer || op.settle_with == peer) affected.push_back(id);
  }
  for (StreamId id : affected) fail_op(id, peer);
  std::vector<StreamId> lost;
  for (const auto& [id, rec] : streams_)
    if (rec.site == peer && !in_flight_.contains(id)) lost.push_back(id);
  for (StreamId id : lost) {
    StreamState& st = state_[id];
    if (st.busy) continue;  // a queued op cannot be waiting without one in flight
    st.busy = true;
    recover(id, peer);
  }
}

void LeaderCore::touch_all() {
  meta_dirty_ = true;
  for (const auto& [id, st] : state_) dirty_streams_.insert(id);
}

// An operation in flight on stream `id` lost one of its ends (`failed`). The outcomes are
// those doc/session.md "Failures" lists.
void LeaderCore::fail_op(StreamId id, SiteId failed) {
  auto fit = in_flight_.find(id);
  if (fit == in_flight_.end()) return;
  touch(id);
  Op& op = fit->second;
  const std::string why = "site " + std::to_string(failed) + " failed";
  if (!op.vetted) {
    Op done = std::move(op);
    in_flight_.erase(fit);
    checks_.erase(done.check);
    if (const auto* c = std::get_if<wire::CreateReq>(&done.request)) reserved_names_.erase(c->name);
    finish(id, done, code_of(Status::Code::kUnavailable),
           why + (done.asking == failed ? " during the policy check" : ""));
    auto rec = streams_.find(id);
    if (rec != streams_.end() && rec->second.site == failed)
      recover(id, failed);
    else
      next_op(id);
    return;
  }
  if (const auto* c = std::get_if<wire::CreateReq>(&op.request)) {
    reserved_names_.erase(c->name);
    Op done = std::move(op);
    in_flight_.erase(fit);
    finish(id, done, code_of(Status::Code::kUnavailable),
           why + " before stream \"" + c->name + "\" was created there");
    next_op(id);
    return;
  }
  if (const auto* o = std::get_if<wire::OpenReq>(&op.request)) {
    // The stream's site failed before it acknowledged the open: its failure manager hosts it
    // now, and learns of every opener from the recovery (Recover::opened), this one too.
    Op done = std::move(op);
    in_flight_.erase(fit);
    state_[id].opened.insert(o->opener);
    finish(id, done, kOk, streams_[id].name);
    recover(id, failed);
    return;
  }
  if (std::holds_alternative<wire::Recover>(op.request)) {  // the failure manager failed too
    in_flight_.erase(fit);
    recover(id, failed);
    return;
  }
  if (std::holds_alternative<wire::AttachReq>(op.request)) {
    Op done = std::move(op);
    in_flight_.erase(fit);
    agents_.erase(done.agent);
    finish(id, done, code_of(Status::Code::kUnavailable), why + " during the attach");
    recover(id, failed);
    return;
  }
  if (std::holds_alternative<wire::DestroyReq>(op.request)) {
    // Its finalization handlers cannot run there; it is destroyed all the same.
    Op done = std::move(op);
    in_flight_.erase(fit);
    complete_destroy(id, {});
    finish(id, done, kOk, {});
    next_op(id);
    return;
  }
  if (std::holds_alternative<wire::MoveReq>(op.request)) {
    const SiteId other = failed == op.source ? op.target : op.source;
    if (op.settle_with == wire::kNoSite && other != failed && live_site(other)) {
      // Only the other end knows whether the stream got out (target) or is still in (source).
      op.settle_with = other;
      send(other, wire::Settle{id, op.epoch});
      return;
    }
    // Both ends failed: the stream is lost with them.
    Op done = std::move(op);
    in_flight_.erase(fit);
    finish(id, done, code_of(Status::Code::kUnavailable), why + " during the move");
    recover(id, failed);
    return;
  }
}

void LeaderCore::on_settled(SiteId from, const wire::Settled& m, Time now) {
  auto fit = in_flight_.find(m.stream);
  // From the site asked: sender_allowed.
  if (fit == in_flight_.end() || fit->second.epoch != m.epoch) return;
  Op op = std::move(fit->second);
  in_flight_.erase(fit);
  const StreamId id = m.stream;
  touch(id);
  const SiteId failed = from == op.target ? op.source : op.target;
  const std::string why = "site " + std::to_string(failed) + " failed during the move";
  if (m.present && from == op.target) {  // it got out in time: the move took effect
    ++stats_.moves_settled_at_target;
    move_took_effect(id, op, now);
    next_op(id);
    return;
  }
  if (m.present) {  // still at the source: the move is off, the stream goes on there
    finish(id, op, code_of(Status::Code::kUnavailable),
           why + "; stream \"" + streams_[id].name + "\" stays at site " + std::to_string(from));
    next_op(id);
    return;
  }
  finish(id, op, code_of(Status::Code::kUnavailable), why);
  recover(id, failed);
}

// The stream's state died with `failed`: it starts over at its failure manager (site 0 if
// that is the failed site or gone too), from its checkpoint there if it is durable and has
// one, under a new epoch and a new numbering of the outgoing channels it opens. The stream
// stays busy until the failure manager reports it installed.
void LeaderCore::recover(StreamId id, SiteId failed) {
  touch(id);
  auto sit = streams_.find(id);
  if (sit == streams_.end()) {
    next_op(id);
    return;
  }
  StreamState& st = state_[id];
  st.busy = true;
  wire::Recover r;
  r.stream = sit->second;
  r.failed_site = failed;
  const SiteId fm = r.stream.failure_manager;
  r.stream.site = live_site(fm) ? fm : 0;
  st.max_epoch = std::max(st.max_epoch, r.stream.epoch) + 1;
  r.stream.epoch = st.max_epoch;
  // A new numbering for every channel the stream opens from now on, durable or not: a durable
  // stream's checkpoint, if its failure manager still holds one, brings back its channels with
  // the numbering they had (receivers drop what they already have); but one whose checkpoints
  // died with its failure manager starts over as any stream does, and numbering from 1 under
  // its old origin, its receivers would take its new messages for old ones. Only the failure
  // manager finds out which, and the stream may send before anyone hears of it.
  r.stream.origin = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(r.stream.epoch, std::numeric_limits<std::uint32_t>::max()));
  r.agents = st.agents;
  r.opened.assign(st.opened.begin(), st.opened.end());
  for (std::uint64_t agent : r.agents) ship_code(agent, r.stream.site);
  Op op;
  op.requester = wire::kNoSite;
  op.stream = id;
  op.vetted = true;  // a recovery is no one's request: no policy stops it
  op.epoch = r.stream.epoch;
  op.target = r.stream.site;
  send(op.target, r);
  op.request = std::move(r);
  in_flight_[id] = std::move(op);
}

void LeaderCore::on_timeout(Time now) {
  if (now >= next_liveness_check_) {
    meta_dirty_ = true;  // delegated answers expire
    check_liveness(now);
  }
  if (locations_due_ != proto::kNever && now >= locations_due_) flush_locations();
  if (next_probe_ != proto::kNever && now >= next_probe_) start_wave(now);
}

}  // namespace mstream::leader
