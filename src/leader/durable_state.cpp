// LeaderCore's durable state: what `mstream leader --state` keeps, and a restarted leader's
// resumption from it. Beside leader_core.cpp.
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
// Durable state

namespace {

SavedOp save_op(SiteId requester, std::uint64_t req, const wire::ControlMessage& request,
                StreamId stream, std::uint64_t agent, std::uint64_t epoch, SiteId target,
                SiteId settle_with, SiteId source) {
  SavedOp o{requester, req, {}, stream, agent, epoch, target, settle_with, source};
  wire::encode_control(request, &o.request);
  return o;
}

template <class T>
proto::StoredRecord make_record(std::uint64_t key, std::uint32_t boot, std::uint64_t version,
                                const T& v) {
  proto::StoredRecord r;
  r.key = key;
  r.epoch = boot;
  r.version = version;
  wire::encode_fields(v, &r.value);
  return r;
}

}  // namespace

void LeaderCore::take_changes(std::vector<proto::StoredRecord>* records,
                              std::vector<SiteId>* peers) {
  if (!meta_dirty_) return;
  meta_dirty_ = false;
  auto saved = [](const Op& op) {
    SavedOp o = save_op(op.requester, op.req, op.request, op.stream, op.agent, op.epoch, op.target,
                        op.settle_with, op.source);
    o.vetted = op.vetted ? 1 : 0;
    return o;
  };
  for (StreamId id : dirty_streams_) {
    const std::uint64_t key = kStreamKeys | id;
    auto st = state_.find(id);
    auto rec = streams_.find(id);
    auto op = in_flight_.find(id);
    if (st == state_.end() && rec == streams_.end() && op == in_flight_.end()) {
      records->push_back({key, boot_, ++writes_, {}});  // gone
      continue;
    }
    SavedStream ss;
    if (rec != streams_.end()) {
      ss.created = 1;
      ss.record = rec->second;
    }
    std::vector<std::uint64_t> agents;
    if (st != state_.end()) {
      const StreamState& s = st->second;
      ss.agents = s.agents;
      agents = s.agents;
      for (const Op& q : s.queue) ss.queue.push_back(saved(q));
      ss.busy = s.busy ? 1 : 0;
      ss.temp_owner = s.temp_owner;
      ss.watchers.assign(s.watchers.begin(), s.watchers.end());
      ss.opened.assign(s.opened.begin(), s.opened.end());
      ss.max_epoch = s.max_epoch;
    }
    if (op != in_flight_.end()) {
      ss.in_flight.push_back(saved(op->second));
      if (op->second.agent) agents.push_back(op->second.agent);
    }
    for (std::uint64_t agent : agents) {
      auto a = agents_.find(agent);
      if (a == agents_.end()) continue;
      const std::set<SiteId>& visited = a->second.visited;
      ss.code.push_back({a->second.code, std::vector<SiteId>(visited.begin(), visited.end())});
    }
    records->push_back(make_record(key, boot_, ++writes_, ss));
  }
  dirty_streams_.clear();
  for (SiteId site : dirty_peers_) {
    auto p = peers_.find(site);
    if (p == peers_.end()) {  // forgotten (forget_shell): so are its records
      records->push_back({kPeerKeys | site, boot_, ++writes_, {}});
      peers->push_back(site);
      continue;
    }
    SavedPeer sp{p->second, 0, {}};
    if (auto c = controls_.find(site); c != controls_.end()) sp.controls = c->second;
    for (const auto& [nonce, id] : join_nonces_)
      if (id == site) sp.nonce = nonce;
    records->push_back(make_record(kPeerKeys | site, boot_, ++writes_, sp));
    peers->push_back(site);
  }
  dirty_peers_.clear();
  for (StreamId id : dirty_retired_) {
    auto r = retired_.find(id);
    if (r == retired_.end()) {
      records->push_back({kRetiredKeys | id, boot_, ++writes_, {}});
    } else {
      records->push_back(
          make_record(kRetiredKeys | id, boot_, ++writes_,
                      SavedRetired{r->second.site, r->second.epoch, r->second.order}));
    }
  }
  dirty_retired_.clear();
  SavedMeta meta;
  meta.boot = boot_;
  meta.next_site = next_site_;
  meta.next_shell = next_shell_;
  meta.next_stream = next_stream_;
  meta.next_agent = next_agent_;
  meta.failures_seen = failures_seen_ ? 1 : 0;
  for (const Waiter& w : waiters_) meta.waiters.push_back({w.shell, w.req, w.appended});
  for (const auto& [target, list] : delegated_)
    for (const Delegated& d : list) meta.delegated.push_back({target, d.requester, d.req, d.rec});
  for (const auto& [site, n] : requests_done_by_) meta.requests_done.push_back({site, n});
  records->push_back(make_record(kMetaKey, boot_, ++writes_, meta));
}

Status LeaderCore::restore(const std::vector<proto::StoredRecord>& records) {
  auto bad = [](const char* what, std::uint64_t key) {
    return Status::error(Status::Code::kMalformed, std::string("leader state: unreadable ") + what +
                                                       " record " + std::to_string(key));
  };
  auto op_of = [](const SavedOp& o, Op* op) {
    auto m = wire::decode_control(o.request);
    if (!m.ok()) return false;
    *op = Op{o.requester, o.req,    std::move(*m), o.stream, o.agent,
             o.epoch,     o.target, o.settle_with, o.source};
    op->vetted = o.vetted != 0;
    return true;
  };
  bool have_meta = false;
  for (const proto::StoredRecord& r : records) {
    const std::uint64_t kind = r.key & kKeyKind;
    const std::uint64_t id = r.key & ~kKeyKind;
    if (kind == kChannelKeys) continue;
    if (kind == kMetaKey && id == 0) {
      SavedMeta meta;
      if (!wire::decode_fields(r.value, &meta).ok()) return bad("meta", r.key);
      have_meta = true;
      boot_ = meta.boot;
      next_site_ = meta.next_site;
      next_shell_ = meta.next_shell;
      next_stream_ = meta.next_stream;
      next_agent_ = meta.next_agent;
      failures_seen_ = meta.failures_seen != 0;
      for (const SavedWaiter& w : meta.waiters) waiters_.push_back({w.shell, w.req, w.appended});
      for (const SavedDelegated& d : meta.delegated)
        delegated_[d.target].push_back({d.requester, d.req, d.rec, 0});
      for (const SavedCount& c : meta.requests_done) requests_done_by_[c.site] = c.count;
    } else if (kind == kRetiredKeys) {
      if (r.value.empty()) continue;  // forgotten
      SavedRetired sr;
      if (!wire::decode_fields(r.value, &sr).ok()) return bad("retired stream", r.key);
      retired_[id] = {sr.site, sr.epoch, sr.order};
      retired_order_[sr.order] = id;
      retired_count_ = std::max(retired_count_, sr.order);
    } else if (kind == kPeerKeys) {
      if (r.value.empty()) continue;  // forgotten
      SavedPeer sp;
      if (!wire::decode_fields(r.value, &sp).ok()) return bad("peer", r.key);
      // Site 0's controllers are those of this process's site 0 too (the same files): their
      // checks go on from the start, before it tells them again.
      if (sp.controls.session_events || sp.controls.site_events)
        controls_[sp.peer.site] = sp.controls;
      if (sp.peer.site == 0) continue;  // this process's own: set_own_address()
      peers_[sp.peer.site] = sp.peer;
      if (sp.nonce) join_nonces_[sp.nonce] = sp.peer.site;
    } else if (kind == kStreamKeys) {
      if (r.value.empty()) continue;  // gone
      SavedStream ss;
      if (!wire::decode_fields(r.value, &ss).ok()) return bad("stream", r.key);
      const StreamId sid = id;
      if (ss.created) {
        streams_[sid] = ss.record;
        count_hosted(wire::kNoSite, ss.record.site);
        by_name_[ss.record.name] = sid;
      }
      StreamState& st = state_[sid];
      st.agents = ss.agents;
      for (const SavedOp& o : ss.queue)
        if (!op_of(o, &st.queue.emplace_back())) return bad("stream", r.key);
      st.busy = ss.busy != 0;
      st.temp_owner = ss.temp_owner;
      st.watchers.insert(ss.watchers.begin(), ss.watchers.end());
      st.opened.insert(ss.opened.begin(), ss.opened.end());
      st.max_epoch = ss.max_epoch;
      for (const SavedOp& o : ss.in_flight) {
        Op op;
        if (!op_of(o, &op)) return bad("stream", r.key);
        if (const auto* c = std::get_if<wire::CreateReq>(&op.request))
          reserved_names_.insert(c->name);
        in_flight_[sid] = std::move(op);
      }
      for (const SavedAgent& a : ss.code) {
        AgentInfo& info = agents_[a.code.agent];
        info.code = a.code;
        info.visited.insert(a.visited.begin(), a.visited.end());
      }
    }
  }
  if (!have_meta) return Status::error(Status::Code::kMalformed, "leader state: no meta record");
  ++boot_;
  return Status::ok_status();
}

void LeaderCore::resume(Time now) {
  meta_dirty_ = true;
  for (const auto& [id, p] : peers_) {
    dirty_peers_.insert(id);
    if (id == 0 || !p.live) continue;
    admitted_at_[id] = now;
    admit_(id);
  }
  if (options_.failure_timeout > 0) next_liveness_check_ = now + options_.failure_timeout / 8;
  for (auto& [target, list] : delegated_)
    for (Delegated& d : list) d.at = now;
  // Site 0's process is new: whatever its old one held is gone, as if it had failed. Its
  // peers need no telling (it is the same site, and a newer boot resets their paths to it).
  failures_seen_ = true;
  // Its counters start again from 0 (quiescence compares them with these), and the requests
  // its old process's handlers made are nobody's now: their answers go nowhere.
  requests_done_by_.erase(0);
  for (auto& [id, op] : in_flight_)
    if (op.requester == 0) op.requester = wire::kNoSite;
  for (auto& [id, st] : state_)
    for (Op& op : st.queue)
      if (op.requester == 0) op.requester = wire::kNoSite;
  if (auto d = delegated_.find(0); d != delegated_.end()) {
    for (const Delegated& a : d->second) {
      send(a.requester, wire::Location{a.rec});
      send(a.requester, wire::Reply{a.req, kOk, "0"});
    }
    delegated_.erase(d);
  }
  // Moves the old process had not yet told every replica (batched_locations_, not kept) are
  // told now: every replica hears where every stream is.
  for (const auto& [id, rec] : streams_) broadcast(wire::Location{rec});
  fail_site_ops(0);
  retry_checks();
  log_.push_back("leader: resumed the session from its durable state (boot " +
                 std::to_string(boot_) + ", " + std::to_string(streams_.size()) + " streams, " +
                 std::to_string(peers_.size() - 1) + " peers)");
  if (!waiters_.empty()) start_wave(now);
}

}  // namespace mstream::leader
