// SiteCore's durable streams (doc/session.md "Durable streams"): checkpoints taken at the
// stream's site, stored by its failure manager, restored by a recovery. Beside site_core.cpp.
#include "site/site_core.hpp"

#include <algorithm>
#include <limits>
#include <map>

namespace mstream::site {

// ---------------------------------------------------------------------------------------
// Durable streams (doc/session.md "Durable streams")

// How long a site waits before checkpointing again after its failure manager refused one.
namespace {
constexpr Time kCheckpointRetry = 100 * proto::kMillisecond;
}  // namespace

SiteId SiteCore::failure_manager_of(const wire::StreamRecord& rec) const {
  // The leader's rule for recoveries (LeaderCore::recover): a failed failure manager is
  // replaced by site 0, so checkpoints go where a recovery will look for them.
  const wire::PeerRecord* p = view_->directory.peer(rec.failure_manager);
  return p && p->live ? rec.failure_manager : 0;
}

// A move waits until everything the stream consumed is stored; nothing else runs meanwhile.
bool SiteCore::durable_waits(const Hosted& h) const {
  if (!h.durable || h.ops.empty()) return false;
  const PendingOp& op = h.ops.front();
  return op.kind == PendingOp::Kind::kMoveOut &&
         (h.durable->in_flight || !h.durable->unsaved.empty() || !h.durable->held.empty());
}

// A durable stream's handler appended: checked now (the handler's errors are reported as for
// any stream), sent once a checkpoint holds it.
void SiteCore::hold_append(Hosted& h, const std::string& to, const std::string& message,
                           const std::string& from_name) {
  Status st = Directory::check_user_stream(to);
  const wire::StreamRecord* rec = st.ok() ? view_->directory.find(to) : nullptr;
  if (st.ok() && !rec) st = Directory::no_such_stream(to);
  if (st.ok() && message.size() > options_.max_message_bytes)
    st = Status::error(Status::Code::kTooLarge,
                       "message of " + std::to_string(message.size()) + " bytes exceeds the " +
                           std::to_string(options_.max_message_bytes) + "-byte limit");
  if (!st.ok()) {
    report_error("site " + std::to_string(options_.self) + ": stream_append from stream \"" +
                 from_name + "\": " + st.message());
    return;
  }
  wire::Bytes payload(message.size() + 1);
  payload[0] = 0;
  if (!message.empty()) std::memcpy(payload.data() + 1, message.data(), message.size());
  ++counters_.appended;
  h.durable->held.push_back({rec->id, std::move(payload)});
}

void SiteCore::maybe_checkpoint(Hosted& h) {
  DurableState& ds = *h.durable;
  if (ds.in_flight || h.busy) return;
  if (ds.unsaved.empty() && ds.held.empty() && !ds.force) return;
  ds.in_flight = true;
  ds.saving = true;
  ds.force = false;
  ds.covering = std::move(ds.unsaved);
  ds.unsaved.clear();
  ds.covering_out = std::move(ds.held);
  ds.held.clear();
  const StreamId id = h.rec.id;
  // The briefcases now hold the state after exactly the messages covered: the stream runs
  // nothing else until they are saved.
  save_briefcases(
      h, [this, id](std::vector<wire::AgentState> b) { send_checkpoint(id, std::move(b)); });
}

// The stream's state as a move would carry it, with what the checkpoint covers counted as
// consumed and the held appends as sent.
wire::Arrive SiteCore::snapshot(Hosted& h, std::vector<wire::AgentState> briefcases) {
  const DurableState& ds = *h.durable;
  const StreamId id = h.rec.id;
  wire::Arrive a;
  a.stream = h.rec;
  a.agents = h.agents;
  a.opened = h.opened;
  a.waiting = waiting_of(id);  // a recovery opens again and sends them
  a.briefcases = std::move(briefcases);
  for (StreamId from : h.in_peers) {
    auto st = transport_.export_recv_state({from, id});
    if (!st.ok()) continue;
    wire::InChannel in{from, st->consumed_up_to, st->reply_site, st->reply_incarnation,
                       st->origin};
    for (const DurableState::Consumed& c : ds.covering)
      if (c.key.from == from && c.origin == in.origin) in.consumed_up_to = std::max(in.consumed_up_to, c.seq);
    a.in.push_back(in);
  }
  std::map<StreamId, std::size_t> out_index;
  for (StreamId to : h.out_peers) {
    const proto::ChannelKey key{id, to};
    auto st = transport_.export_send_state(key);
    if (!st.ok()) continue;
    out_index[to] = a.out.size();
    a.out.push_back(out_channel(key, *st));
  }
  for (const DurableState::Append& m : ds.covering_out) {
    auto it = out_index.find(m.to);
    if (it == out_index.end()) {  // its first message to that stream
      wire::OutChannel oc;
      oc.to = m.to;
      oc.dest = site_of(m.to);
      oc.origin = h.rec.origin;
      it = out_index.emplace(m.to, a.out.size()).first;
      a.out.push_back(std::move(oc));
    }
    wire::OutChannel& oc = a.out[it->second];
    oc.unconsumed.emplace_back(m.payload.begin(), m.payload.end());
    ++oc.next_seq;
  }
  return a;
}

void SiteCore::send_checkpoint(StreamId id, std::vector<wire::AgentState> briefcases) {
  auto it = hosted_.find(id);
  if (it == hosted_.end()) return;
  Hosted& h = *it->second;
  DurableState& ds = *h.durable;
  ds.saving = false;
  wire::Checkpoint c;
  c.version = ++ds.version;
  c.state = snapshot(h, std::move(briefcases));
  ds.sent_to = failure_manager_of(h.rec);
  if (ds.sent_to == options_.self) {
    on_checkpoint(options_.self, std::move(c));
  } else {
    send_control(ds.sent_to, control_stream(ds.sent_to), c);
  }
}

// The failure manager stored the checkpoint: what it covers is consumed and sent now.
std::optional<std::uint64_t> SiteCore::checkpoint_in_flight(StreamId id) const {
  auto it = hosted_.find(id);
  if (it == hosted_.end() || !it->second->durable || !it->second->durable->in_flight)
    return std::nullopt;
  return it->second->durable->version;
}

void SiteCore::on_checkpointed(const wire::Checkpointed& m) {
  auto it = hosted_.find(m.stream);
  if (it == hosted_.end() || !it->second->durable) return;  // left or gone meanwhile
  Hosted& h = *it->second;
  DurableState& ds = *h.durable;
  if (!ds.in_flight || m.version != ds.version || m.epoch != h.rec.epoch) return;  // stale
  if (m.code != 0) {
    report_error("site " + std::to_string(options_.self) + ": checkpoint of stream \"" +
                 h.rec.name + "\" refused: " + m.text + " (retrying)");
    ds.uncover();  // not stored: the next checkpoint covers it all again
    checkpoint_retry_at_ = std::min(checkpoint_retry_at_, now_ + kCheckpointRetry);
    return;
  }
  commit_durable(h, true);
  flush_opened(h);  // appends whose open was answered while the checkpoint was under way
  maybe_checkpoint(h);
  if (runnable(h)) mark_ready(h);
}

// Saves every agent's briefcase on the stream's lane (the stream is busy meanwhile), then
// hands them to `then` here.
void SiteCore::save_briefcases(Hosted& h, std::function<void(std::vector<wire::AgentState>)> then) {
  auto briefcases = std::make_shared<std::vector<wire::AgentState>>();
  submit(
      h.rec.id,
      [briefcases, agents = h.agents](Lane& lane) {
        for (std::uint64_t agent : agents)
          briefcases->push_back({agent, lane.runner().save_briefcase(agent)});
      },
      [briefcases, then = std::move(then)] { then(std::move(*briefcases)); });
}

// A channel's sender state as a move or a checkpoint carries it. Appends a full buffer refused
// but the handler was told were accepted (overflow_) follow, taking the next numbers.
wire::OutChannel SiteCore::out_channel(proto::ChannelKey key, const proto::SendState& st) const {
  wire::OutChannel oc;
  oc.to = key.to;
  oc.dest = st.dest;
  oc.consumed_up_to = st.consumed_up_to;
  oc.next_seq = st.next_seq;
  oc.incarnation = st.incarnation;
  oc.origin = st.origin;
  for (const auto& b : st.unconsumed) oc.unconsumed.emplace_back(b.begin(), b.end());
  auto ov = overflow_.find(key);
  if (ov != overflow_.end()) {
    for (const auto& b : ov->second) {
      oc.unconsumed.emplace_back(b.begin(), b.end());
      ++oc.next_seq;
    }
  }
  return oc;
}

// Acknowledges what was consumed and sends what was appended: what the checkpoint in flight
// covers (covering_only), or everything (the stream is destroyed).
void SiteCore::commit_durable(Hosted& h, bool covering_only) {
  DurableState& ds = *h.durable;
  const StreamId id = h.rec.id;
  auto consume = [&](std::vector<DurableState::Consumed>& list) {
    for (DurableState::Consumed& c : list) {
      (void)transport_.consume(c.key, c.seq, now_, c.origin);
      count_consumed(c.key.from, 1);
      if (c.sync)
        send_control(control_site(c.key.from), c.key.from,
                     wire::SyncResult{id, c.seq, std::move(c.result), std::move(c.failure)});
    }
    list.clear();
  };
  auto send = [&](std::vector<DurableState::Append>& list) {
    for (DurableState::Append& m : list) {
      if (!append_raw(id, m.to, site_of(m.to), std::move(m.payload)).ok()) continue;
      add_sender(id, m.to);
      h.out_peers.insert(m.to);
    }
    list.clear();
  };
  consume(ds.covering);
  send(ds.covering_out);
  ds.in_flight = false;
  if (covering_only) return;
  consume(ds.unsaved);
  send(ds.held);
}

// A failure manager failed: the durable streams it managed checkpoint to site 0 from now on
// (failure_manager_of), at once and in full, and one in flight to it is sent again.
void SiteCore::on_failure_manager_failed(SiteId fm) {
  for (auto& [id, h] : hosted_) {
    if (!h->durable || h->rec.failure_manager != fm) continue;
    DurableState& ds = *h->durable;
    ds.force = true;
    // One being saved goes to where failure_manager_of() then says, site 0: it stays as it is.
    // (Uncovered now, its briefcases would be newer than its channels: sim seed 9009270.)
    if (ds.saving && ds.sent_to == fm) ++counters_.checkpoints_saving_at_fm_loss;
    if (ds.in_flight && !ds.saving && ds.sent_to == fm) ds.uncover();
    maybe_checkpoint(*h);
  }
}

// Site 0 is a new process: checkpoints it had not confirmed may be lost with the old one (it
// stores at the end of a step, and confirms after), so they go again, in full.
void SiteCore::on_leader_restarted() {
  // The user-stream pin cannot tell late copies from lies for a while (proto/sender_pins.hpp).
  transport_.leader_restarted(now_);
  if (controls_sent_) {  // the new process may know them from its state, or may not
    const wire::Controls c = *controls_sent_;
    controls_sent_.reset();
    send_controls(c);
  }
  for (auto& [id, h] : hosted_) {
    if (!h->durable) continue;
    DurableState& ds = *h->durable;
    // One being saved is sent to the new process once saved: it stays as it is.
    if (ds.saving && ds.sent_to == 0) ++counters_.checkpoints_saving_at_fm_loss;
    if (!ds.in_flight || ds.saving || ds.sent_to != 0) continue;
    ds.force = true;
    ds.uncover();
    maybe_checkpoint(*h);
  }
}

void SiteCore::set_boot(std::uint32_t boot) {
  transport_.set_boot(boot);
  // What the old process of site 0 sent from its control stream is not this one's to finish:
  // a new numbering, which its receivers start over with (and so drop the old one's rest).
  if (boot > 0) transport_.set_sender_origin(control_stream(options_.self), boot);
  // The old process's words it had not sent yet are lost (Transport::leader_restarted).
  words_lost_ = boot > 0;
}

void SiteCore::leader_channels(SiteId peer, std::vector<wire::OutChannel>* out,
                               std::vector<wire::InChannel>* in) const {
  const proto::ChannelKey to{kLeaderStream, control_stream(peer)};
  if (auto st = transport_.export_send_state(to); st.ok()) out->push_back(out_channel(to, *st));
  const proto::ChannelKey from{control_stream(peer), kLeaderStream};
  if (auto st = transport_.export_recv_state(from); st.ok())
    in->push_back(
        {from.from, st->consumed_up_to, st->reply_site, st->reply_incarnation, st->origin});
}

void SiteCore::restore_leader_channels(SiteId peer, const std::vector<wire::OutChannel>& out,
                                       const std::vector<wire::InChannel>& in) {
  // Straight into the transport, above the channel's bound if need be (not import_channel),
  // what waited behind the bound included: the peer may well have consumed past the saved
  // state, and with the channel split by the bound into the overflow queue it would refuse
  // that consumption as bogus and stall. (Under a small bound, messages beyond the peer's
  // window are refused and repeated: doc/session.md "Limits".)
  const proto::ChannelKey to{kLeaderStream, control_stream(peer)};
  for (const wire::OutChannel& oc : out)
    if (oc.to == to.to) (void)transport_.import_send_state(to, send_state_of(oc, peer));
  for (const wire::InChannel& ic : in) {
    if (ic.from != control_stream(peer)) continue;
    (void)transport_.import_recv_state(
        {ic.from, kLeaderStream},
        proto::RecvState{ic.consumed_up_to, ic.reply_site, ic.reply_incarnation, ic.origin});
  }
}

// ---- The failure manager's side.

void SiteCore::on_checkpoint(SiteId from, wire::Checkpoint c) {
  pending_checkpoints_.emplace_back(from, std::move(c));
  // One commit (one fsync) for all that arrived in this step: store_pending_checkpoints().
}

void SiteCore::store_pending_checkpoints() {
  if (pending_checkpoints_.empty()) return;
  std::vector<std::pair<SiteId, wire::Checkpoint>> batch;
  batch.swap(pending_checkpoints_);
  Status st = options_.store
                  ? Status::ok_status()
                  : Status::error(Status::Code::kUnavailable,
                                  "site " + std::to_string(options_.self) +
                                      " keeps no durable store");
  if (st.ok()) {
    std::vector<proto::StoredRecord> records;
    records.reserve(batch.size());
    for (const auto& [from, c] : batch) {
      proto::StoredRecord r;
      r.key = c.state.stream.id;
      r.epoch = c.state.stream.epoch;
      r.version = c.version;
      wire::encode_control(c.state, &r.value);
      records.push_back(std::move(r));
    }
    st = options_.store->put(records);
    if (!st.ok()) report_error("site " + std::to_string(options_.self) + ": " + st.message());
  }
  for (const auto& [from, c] : batch) {
    wire::Checkpointed done{c.state.stream.id, c.state.stream.epoch, c.version,
                            st.ok() ? 0u : static_cast<std::uint64_t>(st.code()),
                            st.ok() ? std::string() : st.message()};
    if (from == options_.self) {
      on_checkpointed(done);
    } else {
      send_control(from, control_stream(from), done);
    }
  }
}

// The state a durable stream's last checkpoint here holds, for its recovery: its briefcases,
// how far it consumed each channel in, and its channels out with what they had not seen
// consumed (re-sent now; receivers drop what they already have). False if there is none: the
// stream then starts from its initial state, a new life as for a stream without -durable
// (its record's new origin numbers all its channels out).
bool SiteCore::restore_checkpoint(const wire::Recover& m, wire::Arrive* a) {
  if (!options_.store) return false;
  auto got = options_.store->get(m.stream.id);
  if (!got.ok()) {
    report_error("site " + std::to_string(options_.self) + ": " + got.status().message());
    return false;
  }
  if (!got->has_value()) return false;
  Result<wire::ControlMessage> decoded = wire::decode_control((*got)->value);
  const wire::Arrive* saved = decoded.ok() ? std::get_if<wire::Arrive>(&*decoded) : nullptr;
  if (!saved) {
    report_error("site " + std::to_string(options_.self) + ": the checkpoint of stream \"" +
                 m.stream.name + "\" is unreadable; it starts from its initial state");
    return false;
  }
  a->briefcases = saved->briefcases;
  a->in = saved->in;
  a->out = saved->out;
  a->opened = saved->opened;
  a->waiting = saved->waiting;  // appends it made that waited for an open: they wait again
  // Its channels out continue their numbering (their own origin, not the recovery's new one,
  // which only channels it opens from now on take) from a new site: their incarnation must be
  // above any the stream used since the checkpoint, so that receivers send their acks here
  // (each move added one; epochs grow at least as fast).
  const auto epoch = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(m.stream.epoch, std::numeric_limits<std::uint32_t>::max() - 1));
  for (wire::OutChannel& oc : a->out) oc.incarnation = std::max(oc.incarnation, epoch);
  return true;
}

}  // namespace mstream::site
