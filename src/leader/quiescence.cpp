// LeaderCore's termination detection: probe waves and the shells waiting for quiescence
// (doc/session.md). Beside leader_core.cpp.
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
// Termination detection

void LeaderCore::start_wave(Time now) {
  (void)now;
  ++wave_;
  wave_open_ = true;
  next_probe_ = proto::kNever;
  wave_replies_.clear();
  for (const auto& [id, p] : peers_)
    if (p.live && !p.shell) send(id, wire::Probe{wave_});
  // After a failure the waiting shells are asked too: what they still hold is the only
  // account of their messages left (some were consumed at the failed site, and may be again).
  if (failures_seen_)
    for (const Waiter& w : waiters_) send(w.shell, wire::Probe{wave_});
}

void LeaderCore::on_probe_reply(SiteId from, const wire::ProbeReply& m, Time now) {
  if (!wave_open_ || m.wave != wave_) return;
  wave_replies_[from] = m;
  maybe_complete_wave(now);
}

void LeaderCore::maybe_complete_wave(Time now) {
  if (!wave_open_) return;
  for (const auto& [id, p] : peers_)
    if (p.live && !p.shell && !wave_replies_.contains(id)) return;
  if (failures_seen_)
    for (const Waiter& w : waiters_)
      if (!wave_replies_.contains(w.shell)) return;
  wave_open_ = false;
  bool all_idle = idle();
  bool requests_balanced = true;
  WaveTotals sums;
  for (const auto& [id, r] : wave_replies_) {
    auto p = peers_.find(id);
    if (p == peers_.end() || !p->second.live) continue;  // failed since it answered
    all_idle = all_idle && r.idle;
    sums.appended += r.appended;
    sums.consumed += r.consumed;
    sums.requests += r.requests;
    sums.held += r.held;
    for (const auto& sc : r.shells) sums.from_shell[sc.shell] += sc.consumed;
    if (!p->second.shell) {
      const std::uint64_t done = requests_done_by_[id];
      sums.requests_done += done;
      requests_balanced = requests_balanced && r.requests == done;
    }
  }
  // Balanced: every message the sites' handlers appended was consumed, every message each
  // waiting shell appended was consumed, and every request a handler sent was completed here.
  // Counters only grow, so the same balanced totals in two consecutive waves with everyone
  // idle mean nothing was in flight between them (Mattern's four-counter method).
  // After a failure the counts cannot balance (the failed site's are gone, and messages it
  // consumed without acknowledging are consumed again elsewhere), but every message not yet
  // consumed is still held by its sender until it is: nothing held anywhere, twice with the
  // same counters, means the same.
  bool balanced = requests_balanced;
  if (failures_seen_) {
    balanced = balanced && sums.held == 0;
  } else {
    balanced = balanced && sums.appended == sums.consumed;
    for (const Waiter& w : waiters_) balanced = balanced && sums.from_shell[w.shell] == w.appended;
  }
  if (all_idle && balanced && last_wave_ && *last_wave_ == sums) {
    for (const Waiter& w : waiters_) reply(w.shell, w.req, kOk, "quiescent");
    waiters_.clear();
    meta_dirty_ = true;
    last_wave_.reset();
    return;
  }
  last_wave_.reset();
  if (all_idle && balanced) last_wave_ = std::move(sums);
  if (waiters_.empty()) return;
  // A balanced wave is confirmed at once; an unbalanced one waits a little.
  next_probe_ = last_wave_ ? now : now + options_.probe_interval;
}

}  // namespace mstream::leader
