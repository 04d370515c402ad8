// What the session driver observes of the cores for the SessionChecker: Arrive messages on
// the wire, hosting after every event, handler traces, and the state of every node at rest.
#include <algorithm>

#include "sim/session_driver.hpp"
#include "site/ids.hpp"

namespace mstream::sim::detail {
namespace {

const char* trace_kind(site::HandlerTrace::Kind k) {
  switch (k) {
    case site::HandlerTrace::Kind::kAppend:
      return "append";
    case site::HandlerTrace::Kind::kRelocation:
      return "relocation";
    case site::HandlerTrace::Kind::kInstall:
      return "install";
    case site::HandlerTrace::Kind::kDepart:
      return "depart";
    case site::HandlerTrace::Kind::kRecover:
      return "recover";
    case site::HandlerTrace::Kind::kFailure:
      return "failure";
  }
  return "?";
}

}  // namespace

// Arrive messages travel between two sites' control streams, possibly in fragments; they are
// judged once, at their first complete transmission. A channel numbered afresh (a new origin)
// reuses the numbers of the old numbering's messages: keyed without the origin, the pieces of
// two messages mixed and the reassembly wrote past the end of the message (seed 2544 did, on
// a protocol change tried for issue 19 and not kept; no seed of this one is known to).
void SessionDriver::watch_arrive(const wire::Frame& f) {
  if (!site::is_control(f.from_stream) || !site::is_control(f.to_stream) ||
      f.from_stream == site::kLeaderStream || f.to_stream == site::kLeaderStream)
    return;
  const ControlKey key{f.from_stream, f.to_stream, f.origin, f.seq};
  if (control_done_.contains(key)) return;
  wire::Bytes whole;
  if (f.type == wire::FrameType::kData) {
    whole.assign(f.payload.begin(), f.payload.end());
  } else {
    Partial& p = partial_[key];
    // Pieces of another length are not this message's: they must not mix with its pieces.
    if (p.total != f.total_len) p = Partial{};
    p.total = f.total_len;
    if (f.offset + f.payload.size() > p.total) return;  // the decoder checked it already
    wire::Bytes& piece = p.pieces[f.offset];
    if (piece.size() < f.payload.size()) piece.assign(f.payload.begin(), f.payload.end());
    std::uint64_t covered = 0;
    for (const auto& [offset, bytes] : p.pieces) {
      if (offset > covered) return;  // a gap: not complete yet
      covered = std::max<std::uint64_t>(covered, offset + bytes.size());
    }
    if (covered < p.total) return;
    whole.resize(p.total);
    for (const auto& [offset, bytes] : p.pieces)
      std::copy(bytes.begin(), bytes.end(), whole.begin() + static_cast<std::ptrdiff_t>(offset));
    partial_.erase(key);
  }
  control_done_.insert(key);
  Result<wire::ControlMessage> m = wire::decode_control(whole);
  if (!m.ok()) {
    checker_.fail("wire_valid",
                  "an undecodable control message between sites: " + m.status().to_string());
    return;
  }
  if (const auto* a = std::get_if<wire::Arrive>(&m.value())) {
    ++sum_.arrives;
    if (opt_.trace) {
      std::size_t unconsumed = 0;
      for (const wire::OutChannel& oc : a->out) unconsumed += oc.unconsumed.size();
      trace("Arrive of stream " + std::to_string(a->stream.id) + " epoch " +
            std::to_string(a->stream.epoch) + ": " + std::to_string(whole.size()) + "B, " +
            std::to_string(a->in.size()) + " in, " + std::to_string(a->out.size()) + " out, " +
            std::to_string(unconsumed) + " unconsumed messages");
    }
    checker_.on_arrive(*a, whole.size());
  }
}

void SessionDriver::report_hosting(std::uint32_t n) {
  NodeRun& nr = nodes_[n];
  // In id order, gone ones first: the same sequence of reports for a seed on every run.
  std::vector<StreamId> now = nr.core->hosted_ids();
  for (auto it = nr.hosting.begin(); it != nr.hosting.end();) {
    if (std::binary_search(now.begin(), now.end(), *it)) {
      ++it;
      continue;
    }
    checker_.on_hosting(*it, nr.id, false);
    it = nr.hosting.erase(it);
  }
  for (StreamId id : now)
    if (nr.hosting.insert(id).second) checker_.on_hosting(id, nr.id, true);
}

void SessionDriver::on_trace(std::uint32_t n, const site::HandlerTrace& t) {
  const std::uint64_t h = hash_bytes(t.payload);
  note(SessionEventKind::kHandler, n, static_cast<std::uint64_t>(t.kind) << 56 ^ t.stream,
       h ^ t.seq ^ (t.epoch << 32));
  if (opt_.trace) {
    trace("site " + std::to_string(nodes_[n].id) + " " + trace_kind(t.kind) + " stream " +
          std::to_string(t.stream) + " epoch " + std::to_string(t.epoch) +
          (t.kind == site::HandlerTrace::Kind::kAppend
               ? " from " + std::to_string(t.from) + " #" + std::to_string(t.seq) + " \"" +
                     std::string(t.payload) + "\""
               : std::string()));
  }
  checker_.on_handler(nodes_[n].id, t);
  if (t.kind != site::HandlerTrace::Kind::kRecover) return;
  if (durable_ids_.contains(t.stream)) report_restore(n, t.stream);
  // What the senders know consumed when the receiver starts over: it must not consume that
  // again.
  report_acks(t.stream);
}

// A stored checkpoint as the checker reads it (the sim agent's briefcase and the channels).
DurableRestore SessionDriver::restore_of(const proto::StoredRecord& rec) {
  DurableRestore r;
  r.found = true;
  r.epoch = rec.epoch;
  r.version = rec.version;
  Result<wire::ControlMessage> m = wire::decode_control(rec.value);
  const wire::Arrive* a = m.ok() ? std::get_if<wire::Arrive>(&m.value()) : nullptr;
  std::optional<SessionBriefcase> b;
  if (a && a->briefcases.size() == 1) b = parse_session_briefcase(a->briefcases[0].briefcase);
  r.readable = b.has_value();
  if (b) r.state = std::move(*b);
  for (const auto& [to, count] : r.state.sent) r.sent_to[id_of(to)] = count;
  if (a) {
    for (const wire::InChannel& in : a->in) r.in.push_back({in.from, in.origin, in.consumed_up_to});
    for (const wire::OutChannel& out : a->out)
      r.out.push_back({out.to, out.origin, out.consumed_up_to, out.next_seq});
    for (const wire::WaitingAppends& w : a->waiting) r.waiting_to[w.to] += w.messages.size();
  }
  return r;
}

// The recovery read the record just now (SiteCore::on_recover, before its trace), from this
// node's store: the same one, as nothing commits in between.
void SessionDriver::report_restore(std::uint32_t n, StreamId stream) {
  DurableRestore r;
  Result<std::optional<proto::StoredRecord>> got = nodes_[n].store->get(stream);
  if (got.ok() && got->has_value()) {
    r = restore_of(**got);
    ++sum_.durable_restores;
  }
  trace("stream " + std::to_string(stream) + " restored " +
        (r.found ? "epoch " + std::to_string(r.epoch) + " version " + std::to_string(r.version) +
                       ": " + std::to_string(r.state.handled) + " consumed"
                 : std::string("no checkpoint")));
  checker_.on_durable_restore(stream, r);
}

bool SessionDriver::settled() const {
  if (in_flight_ > 0) return false;
  for (const NodeRun& nr : nodes_) {
    if (nr.crashed) continue;
    if (!nr.node || nr.step_scheduled || nr.node->has_work()) return false;
    if (!nr.core->idle() || !nr.core->transport().idle()) return false;
  }
  // At rest every replica has caught up (check_end_state compares them).
  return nodes_[0].leader->leader().idle() && !nodes_[0].leader->leader().locations_pending();
}

std::string SessionDriver::busy_nodes() const {
  std::string s;
  auto add = [&s](const std::string& what) { s += (s.empty() ? "" : ", ") + what; };
  for (std::uint32_t n = 0; n < nodes_.size(); ++n) {
    const NodeRun& nr = nodes_[n];
    const std::string name = "node " + std::to_string(n) + " (site " + std::to_string(nr.id) + ")";
    if (nr.crashed) continue;
    if (!nr.node) {
      add(name + " not joined");
      continue;
    }
    if (nr.step_scheduled || nr.node->has_work()) add(name + " has work");
    if (!nr.core->idle()) add(name + " not idle");
    if (!nr.core->transport().idle()) {
      // Which path or channel holds it, so a stuck seed points at the work left.
      std::string what;
      const proto::Transport& t = nr.core->transport();
      for (const NodeRun& peer : nodes_) {
        const proto::Path* p = peer.node ? t.path(peer.id) : nullptr;
        if (!p || (p->outstanding() == 0 && p->control.empty())) continue;
        what += " path to site " + std::to_string(peer.id) + ": " +
                std::to_string(p->outstanding()) + " outstanding, " +
                std::to_string(p->control.size()) + " control frames (" +
                (p->control.empty() ? std::string("-")
                                    : std::to_string(static_cast<int>(p->control.front().type)) +
                                          " " + std::to_string(p->control.front().key.from) + ">" +
                                          std::to_string(p->control.front().key.to)) +
                "), next timeout " + std::to_string(p->next_timeout()) + ";";
      }
      std::vector<StreamId> ends = stream_ids_;
      for (const NodeRun& peer : nodes_) ends.push_back(site::control_stream(peer.id));
      ends.push_back(site::kLeaderStream);
      for (StreamId from : ends) {
        for (StreamId to : ends) {
          const proto::SendChannel* ch = t.send_channel({from, to});
          if (!ch || ch->unconsumed_count() == 0) continue;
          what += " channel " + std::to_string(from) + ">" + std::to_string(to) + " to site " +
                  std::to_string(ch->dest) + ": " + std::to_string(ch->unconsumed_count()) +
                  " unconsumed;";
        }
      }
      add(name + "'s transport not idle (next timeout " + std::to_string(t.next_timeout()) +
          "):" + what);
    }
  }
  if (!nodes_[0].leader->leader().idle()) add("the leader has operations in flight");
  if (in_flight_ > 0) add(std::to_string(in_flight_) + " datagrams in the network");
  return s.empty() ? "nothing" : s;
}

// At rest: nothing of a stream stays at a site it left (guarantee 4), and every directory
// agrees with where each stream is.
void SessionDriver::check_end_state() {
  std::vector<StreamId> peers = stream_ids_;
  for (const NodeRun& nr : nodes_) peers.push_back(site::control_stream(nr.id));
  peers.push_back(site::kLeaderStream);
  const leader::LeaderCore& leader = nodes_[0].leader->leader();
  std::uint64_t handler_errors = 0;
  for (const NodeRun& nr : nodes_) {
    if (!nr.core) continue;  // crashed
    const proto::Transport& t = nr.core->transport();
    handler_errors += nr.core->counters().handler_errors;
    const std::string where = "site " + std::to_string(nr.id);
    std::size_t hosted = 0;
    for (StreamId id : stream_ids_) {
      if (nr.core->hosts(id)) {
        ++hosted;
        continue;
      }
      for (StreamId p : peers) {
        const bool send = t.send_channel({id, p}) != nullptr;
        if (send || t.recv_channel({p, id})) {
          checker_.fail("move_cost_bounded",
                        where + " still holds a " + (send ? "send" : "receive") +
                            " channel between stream " + std::to_string(id) + " and " +
                            std::to_string(p) + " after the stream left");
        }
      }
    }
    // Every channel here has a local end: a hosted stream, this node's control stream, or
    // the leader's (site 0); anything beyond is state left behind by some move.
    const std::size_t local_ends = hosted + 1 + (nr.id == 0 ? 1 : 0);
    const std::size_t bound = local_ends * peers.size();
    if (t.send_channel_count() > bound || t.recv_channel_count() > bound) {
      checker_.fail("move_cost_bounded",
                    where + " holds " + std::to_string(t.send_channel_count()) + " send and " +
                        std::to_string(t.recv_channel_count()) + " receive channels for " +
                        std::to_string(hosted) + " streams (bound " + std::to_string(bound) + ")");
    }
    // And nothing more: a word about a stream destroyed and forgotten, come late, must be
    // refused (the leader's watermark), not bring the stream back into this replica.
    for (const auto& [name, id] : nr.core->directory().names()) {
      if (!leader.streams().contains(id))
        checker_.fail("directory_consistent", where + "'s directory has stream " +
                                                  std::to_string(id) + " (" + name +
                                                  "), which the leader does not");
    }
    for (const auto& [id, rec] : leader.streams()) {
      const wire::StreamRecord* mine = nr.core->directory().find(id);
      if (!mine || mine->site != rec.site || mine->epoch != rec.epoch) {
        checker_.fail("directory_consistent",
                      where + "'s directory has stream " + std::to_string(id) +
                          (mine ? " at site " + std::to_string(mine->site) + " epoch " +
                                      std::to_string(mine->epoch)
                                : std::string(" nowhere")) +
                          ", the leader at site " + std::to_string(rec.site) + " epoch " +
                          std::to_string(rec.epoch));
      }
      if (nr.core->hosts(id) != (rec.site == nr.id)) {
        checker_.fail("directory_consistent",
                      "stream " + std::to_string(id) + " is at site " + std::to_string(rec.site) +
                          " for the leader, but site " + std::to_string(nr.id) +
                          (nr.core->hosts(id) ? " hosts it" : " does not host it"));
      }
    }
  }
  if (handler_errors > 0)
    checker_.fail("api_contract", std::to_string(handler_errors) + " handler errors");
  // Failure detection: every crashed site declared failed, no other; no live site gave up.
  for (const auto& [id, p] : leader.peers()) {
    // Site 0 is never declared failed: its process restarts as itself.
    const bool crashed = id != 0 && crashed_ids_.contains(id);
    if (crashed && p.live)
      checker_.fail("failure_detection",
                    "site " + std::to_string(id) + " crashed but the leader still has it live");
    if (!crashed && !p.live && !p.shell)
      checker_.fail("failure_detection",
                    "site " + std::to_string(id) + " was declared failed though it never crashed");
  }
  for (const NodeRun& nr : nodes_) {
    if (nr.core && nr.core->lost_session())
      checker_.fail("failure_detection",
                    "site " + std::to_string(nr.id) + " gave the session up though it is live");
  }
  for (StreamId id : stream_ids_) report_acks(id);
}

}  // namespace mstream::sim::detail
