#include "sim/session_checker.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include "sim/random.hpp"

namespace mstream::sim {
namespace {

std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

bool read_number(std::string_view* s, std::uint64_t* out) {
  while (!s->empty() && s->front() == ' ') s->remove_prefix(1);
  const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), *out);
  if (ec != std::errc() || end == s->data()) return false;
  s->remove_prefix(static_cast<std::size_t>(end - s->data()));
  return true;
}

void add_unique(std::vector<proto::StreamId>* v, proto::StreamId id) {
  if (std::find(v->begin(), v->end(), id) == v->end()) v->push_back(id);
}

}  // namespace

std::optional<SessionMessage> parse_session_message(std::string_view payload) {
  if (payload.size() < 2 || (payload[0] != 'g' && payload[0] != 'm') || payload[1] != ' ')
    return std::nullopt;
  SessionMessage m;
  m.kind = payload[0];
  payload.remove_prefix(2);
  if (!read_number(&payload, &m.gid) || !read_number(&payload, &m.number) || !payload.empty())
    return std::nullopt;
  return m;
}

std::string session_message(char kind, std::uint64_t gid, std::uint64_t number) {
  return std::string(1, kind) + " " + std::to_string(gid) + " " + std::to_string(number);
}

std::optional<SessionBriefcase> parse_session_briefcase(std::string_view saved) {
  SessionBriefcase b;
  std::size_t eol = saved.find('\n');
  if (eol == std::string_view::npos) return std::nullopt;
  std::string_view head = saved.substr(0, eol);
  if (!read_number(&head, &b.handled) || !read_number(&head, &b.hash) || !head.empty())
    return std::nullopt;
  saved.remove_prefix(eol + 1);
  if (!saved.empty() && saved.front() == '#') {
    eol = saved.find('\n');
    if (eol == std::string_view::npos) return std::nullopt;
    std::string_view ids = saved.substr(1, eol - 1);
    for (std::uint64_t gid = 0; !ids.empty();) {
      if (!read_number(&ids, &gid)) return std::nullopt;
      b.consumed.push_back(gid);
    }
    saved.remove_prefix(eol + 1);
  }
  while (!saved.empty()) {
    eol = saved.find('\n');
    const std::size_t eq = saved.rfind('=', eol);
    if (eol == std::string_view::npos || eq == std::string_view::npos || eq == 0)
      return std::nullopt;
    std::string_view count = saved.substr(eq + 1, eol - eq - 1);
    if (!read_number(&count, &b.sent[std::string(saved.substr(0, eq))]) || !count.empty())
      return std::nullopt;
    saved.remove_prefix(eol + 1);
  }
  return b;
}

std::string session_briefcase(const SessionBriefcase& b) {
  std::string s = std::to_string(b.handled) + " " + std::to_string(b.hash) + "\n";
  if (!b.consumed.empty()) {
    s += "#";
    for (std::size_t i = 0; i < b.consumed.size(); ++i)
      s += (i ? " " : "") + std::to_string(b.consumed[i]);
    s += "\n";
  }
  for (const auto& [to, count] : b.sent) s += to + "=" + std::to_string(count) + "\n";
  return s;
}

std::uint64_t session_gid_hash(std::uint64_t gid) { return mix64(gid ^ 0x6A09E667F3BCC908ull); }

void SessionChecker::fail(std::string_view invariant, std::string detail) {
  // One entry per invariant, as in InvariantChecker: the first occurrence is the one to read.
  for (Violation& v : violations_) {
    if (v.invariant == invariant) {
      ++v.count;
      return;
    }
  }
  violations_.push_back(Violation{std::string(invariant), "session: " + std::move(detail), 1});
}

SessionChecker::Stream& SessionChecker::stream(StreamId id) { return streams_[id]; }

std::string SessionChecker::name(StreamId id) const {
  auto it = streams_.find(id);
  if (it != streams_.end() && !it->second.name.empty()) return it->second.name;
  return "stream:" + std::to_string(id);
}

void SessionChecker::add_stream(StreamId id, std::string name) {
  stream(id).name = std::move(name);
}

std::uint32_t SessionChecker::life(StreamId id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? 0 : it->second.life();
}

std::uint32_t SessionChecker::sender_life(StreamId id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? 0
                              : static_cast<std::uint32_t>(it->second.sender_origins.size() - 1);
}

// The life of sender `id` whose channels number under `origin`: origins grow with the epochs
// of the recoveries, so the last life that started at or before it.
std::uint32_t SessionChecker::sender_life_of(StreamId id, std::uint32_t origin) const {
  auto it = streams_.find(id);
  if (it == streams_.end()) return 0;
  const std::vector<std::uint32_t>& o = it->second.sender_origins;
  const auto after = std::upper_bound(o.begin(), o.end(), origin);
  return after == o.begin() ? 0 : static_cast<std::uint32_t>(after - o.begin() - 1);
}

void SessionChecker::on_append(std::uint64_t gid, StreamId from, StreamId to, std::uint64_t index) {
  const std::uint32_t l = sender_life(from);
  Pair& p = pairs_[{from, l, to}];
  if (index != p.gids.size() + 1) {
    fail("briefcase_travels", name(from) + " numbered its message to " + name(to) + " " +
                                  std::to_string(index) + " after " +
                                  std::to_string(p.gids.size()) + " accepted ones" +
                                  (l > 0 ? " in its life " + std::to_string(l) : std::string()));
  }
  if (!truth_.emplace(gid, Message{from, to, l, p.gids.size() + 1, false}).second) {
    fail("api_contract", "message id " + std::to_string(gid) + " appended twice");
    return;
  }
  p.gids.push_back(gid);
  add_unique(&stream(to).senders, from);
  add_unique(&stream(from).receivers, to);
}

void SessionChecker::set_failure_manager(StreamId id, SiteId site) {
  stream(id).failure_manager = site;
}

void SessionChecker::on_site_crashed(SiteId site, bool keeps_store) {
  crashed_.insert(site);
  for (auto& [id, st] : streams_) {
    auto it = std::find(st.hosts.begin(), st.hosts.end(), site);
    if (it != st.hosts.end()) {
      st.hosts.erase(it);
      ++st.recoveries_due;
      st.crashed_hosted = true;
    }
    // What was to run there never will.
    if (st.awaiting_relocation == site) st.awaiting_relocation = wire::kNoSite;
    if (st.awaiting_handler == site) st.awaiting_handler = wire::kNoSite;
    // Its checkpoints are gone with their store (they are not the leader's to move).
    if (st.durable && st.failure_manager == site && !keeps_store) st.lapsed = true;
  }
}

void SessionChecker::on_acked(StreamId from, StreamId to, std::uint32_t origin,
                              std::uint64_t acked) {
  // A shell's or site's channel keeps origin 0 (they never recover); a stream's names its life.
  const std::uint32_t l = sender_life(from);
  if (sender_life_of(from, origin) != l) return;  // not its life now
  auto pit = pairs_.find({from, l, to});
  if (pit == pairs_.end()) return;
  Pair& p = pit->second;
  p.acked = std::max(p.acked, acked);
  p.acked_ever = std::max(p.acked_ever, acked);
  // Until the receiver's new life consumes from the pair, every ack is one of an earlier life
  // (or its floor, the same): none of those may be consumed again.
  if (p.receiver_life != life(to)) p.acked_at_recovery = std::max(p.acked_at_recovery, acked);
  // A durable receiver acknowledges only what a stored checkpoint covers, so whatever a
  // recovery restored covers every acknowledgement too (on_durable_restore set `consumed`).
  if (stream(to).judged_durable() && p.receiver_life == life(to) && acked > p.consumed) {
    fail("durable_exactly_once", name(from) + " was acknowledged " + std::to_string(acked) +
                                     " messages to " + name(to) + ", whose state (life " +
                                     std::to_string(life(to)) + ") holds only " +
                                     std::to_string(p.consumed));
  }
  if (acked > p.consumed_ever) {
    fail("session_no_loss", name(from) + " was acknowledged " + std::to_string(acked) +
                                " messages to " + name(to) + ", of which only " +
                                std::to_string(p.consumed_ever) + " were ever consumed");
  }
}

void SessionChecker::on_failure_handler(StreamId id, SiteId site) {
  Stream& st = stream(id);
  if ((st.awaiting_handler != site && st.optional_handler != site) || !st.recovering) {
    fail("relocation_before_append", "the agent of " + name(id) +
                                         " ran its failure handler at site " +
                                         std::to_string(site) + " with no recovery there");
  }
  if (++st.failure_handlers > 1) {
    fail("failure_recovered", "the agent of " + name(id) + " ran its failure handler " +
                                  std::to_string(st.failure_handlers) + " times at site " +
                                  std::to_string(site) + " for one recovery");
  }
  st.awaiting_handler = wire::kNoSite;
  st.optional_handler = wire::kNoSite;
}

void SessionChecker::on_handler(SiteId site, const site::HandlerTrace& t) {
  using Kind = site::HandlerTrace::Kind;
  const std::string at = " at site " + std::to_string(site);
  if (quiesced_) {
    fail("quiescence",
         "a handler of " + name(t.stream) + " ran" + at + " after the leader declared quiescence");
  }
  Stream& st = stream(t.stream);
  switch (t.kind) {
    case Kind::kInstall:
    case Kind::kRecover:
      if (t.epoch <= st.epoch) {
        fail("move_order", name(t.stream) + " installed" + at + " with epoch " +
                               std::to_string(t.epoch) + " after epoch " +
                               std::to_string(st.epoch));
      }
      st.epoch = std::max(st.epoch, t.epoch);
      st.awaiting_relocation = site;
      st.recovering = t.kind == Kind::kRecover;
      if (st.recovering) {
        on_recovery(t.stream, site, t.epoch);
      } else {
        st.moved_since_recovery = true;
      }
      return;
    case Kind::kRelocation:
    case Kind::kFailure: {
      const bool failure = t.kind == Kind::kFailure;
      if (st.awaiting_relocation != site || failure != st.recovering) {
        fail("relocation_before_append",
             std::string(failure ? "failure" : "relocation") + " handlers of " + name(t.stream) +
                 " ran" + at + " with no " + (failure ? "recovery" : "install") + " there");
      }
      if (failure && ++st.failure_traces > 1) {
        fail("failure_recovered", "failure handlers of " + name(t.stream) + " ran " +
                                      std::to_string(st.failure_traces) + " times" + at +
                                      " for one recovery");
      }
      st.awaiting_relocation = wire::kNoSite;
      // An agent whose attach is under way may or may not be there: its handler may run.
      st.awaiting_handler = st.agentless || st.attaching ? wire::kNoSite : site;
      st.optional_handler = st.attaching ? site : wire::kNoSite;
      return;
    }
    case Kind::kDepart:
      if (st.awaiting_relocation == site || st.awaiting_handler == site) {
        fail("relocation_before_append",
             name(t.stream) + " left" + at + " before its relocation handlers ran");
      }
      if (t.epoch <= st.epoch) {
        fail("move_order", name(t.stream) + " left" + at + " for epoch " + std::to_string(t.epoch) +
                               " while at epoch " + std::to_string(st.epoch));
      }
      return;
    case Kind::kAppend:
      break;
  }
  ++st.append_runs;
  if (st.awaiting_relocation == site || st.awaiting_handler == site) {
    fail("relocation_before_append", "an append handler of " + name(t.stream) + " ran" + at +
                                         " after its install and before its relocation handlers");
  }
  const std::optional<SessionMessage> m = parse_session_message(t.payload);
  if (!m) {
    fail("session_integrity", name(t.stream) + " got a message the workload never sends" + at);
    return;
  }
  st.consumed_hash += session_gid_hash(m->gid);  // as the agent does (session_agents.cpp)
  auto it = truth_.find(m->gid);
  if (it == truth_.end()) {
    fail("session_exactly_once", name(t.stream) + " consumed message " + std::to_string(m->gid) +
                                     at + ", which was never appended (or not accepted)");
    return;
  }
  Message& msg = it->second;
  if (msg.from != t.from || msg.to != t.stream) {
    fail("session_integrity", "message " + std::to_string(m->gid) + " from " + name(msg.from) +
                                  " to " + name(msg.to) + " consumed by " + name(t.stream) +
                                  " from " + name(t.from) + at);
    return;
  }
  const std::string what = "message #" + std::to_string(msg.position) + " of " + name(msg.from) +
                           (msg.life > 0 ? " (life " + std::to_string(msg.life) + ")" : "") +
                           " -> " + name(msg.to);
  Pair& p = pairs_[{msg.from, msg.life, msg.to}];
  const std::uint32_t rlife = st.life();
  if (t.seq != msg.position) {
    fail("session_fifo", what + " carried sequence number " + std::to_string(t.seq) +
                             " (the pair's sequence state did not travel)");
  }
  if (p.receiver_life == rlife) {
    if (msg.position <= p.consumed) {
      fail(st.judged_durable() && rlife > 0 ? "durable_exactly_once" : "session_exactly_once",
           what + " consumed again" + at +
               (rlife > 0 ? " in life " + std::to_string(rlife) + " of " + name(msg.to) : ""));
      return;
    }
    if (msg.position != p.consumed + 1) {
      fail("session_fifo", what + " consumed" + at + " after #" + std::to_string(p.consumed));
    }
  } else {
    // The receiver's first consumption of this pair in a new life (after its recovery): it
    // resumes after what the sender knew consumed, and skips nothing never consumed.
    if (msg.position <= p.acked_at_recovery) {
      fail("session_exactly_once", what + " consumed again" + at + " after the recovery of " +
                                       name(msg.to) + ", though the sender had been acknowledged " +
                                       std::to_string(p.acked_at_recovery) + " messages");
    }
    if (msg.position > p.consumed_ever + 1) {
      fail("session_fifo", what + " consumed" + at + " after the recovery of " + name(msg.to) +
                               ", when only #1..#" + std::to_string(p.consumed_ever) +
                               " were ever consumed");
    }
    p.receiver_life = rlife;
  }
  if (!msg.consumed) ++consumed_;
  msg.consumed = true;
  p.consumed = msg.position;
  p.consumed_ever = std::max(p.consumed_ever, msg.position);
}

// A recovery install of `id` at `site`: a new life for it, as a receiver, and as a sender (its
// briefcase numbers from 1 again) unless it is durable and restores a checkpoint.
void SessionChecker::on_recovery(StreamId id, SiteId site, std::uint64_t epoch) {
  Stream& st = stream(id);
  st.origins.push_back(static_cast<std::uint32_t>(
      std::min<std::uint64_t>(epoch, std::numeric_limits<std::uint32_t>::max())));
  // A durable one's life as a sender goes on if it restores a checkpoint (on_durable_restore).
  if (!st.durable) st.sender_origins.push_back(st.origins.back());
  ++st.recoveries;
  st.recovered_at = site;
  st.moved_since_recovery = false;
  st.failure_traces = 0;
  st.failure_handlers = 0;
  // The agent starts from its initial state (a durable one from its checkpoint's, which
  // on_durable_restore puts here next).
  st.append_runs = 0;
  st.consumed_hash = 0;
  // Its channels start over too, and come back in another order: a later Arrive with as many
  // channels may have other peers (ids of other sizes) than one of its earlier life.
  st.first_meta.clear();
  for (auto& [key, p] : pairs_)
    if (std::get<2>(key) == id) p.acked_at_recovery = std::max(p.acked_at_recovery, p.acked);
  const SiteId expected = crashed_.contains(st.failure_manager) ? 0 : st.failure_manager;
  if (site != expected) {
    fail("failure_recovered",
         name(id) + " recovered at site " + std::to_string(site) +
             "; its failure manager is site " + std::to_string(st.failure_manager) +
             (expected == 0 && st.failure_manager != 0 ? ", which crashed" : ""));
  }
}

void SessionChecker::on_agent_count(StreamId id, std::uint64_t count, std::uint64_t hash) {
  const Stream& st = stream(id);
  const char* invariant = st.durable && st.recoveries > 0 ? "durable_state" : "briefcase_travels";
  if (count != st.append_runs) {
    fail(invariant, "the agent of " + name(id) + " counted " + std::to_string(count) +
                        " append handler runs, the sites traced " + std::to_string(st.append_runs) +
                        (st.recoveries > 0 ? " since its last restored state" : ""));
  } else if (hash != st.consumed_hash) {
    fail(invariant, "the agent of " + name(id) + " holds the hash of other messages than the " +
                        std::to_string(count) + " it consumed");
  }
}

void SessionChecker::on_relocation_handler(StreamId id, SiteId site) {
  Stream& st = stream(id);
  if ((st.awaiting_handler != site && st.optional_handler != site) || st.recovering) {
    fail("relocation_before_append", "the agent of " + name(id) +
                                         " ran its relocation handler at site " +
                                         std::to_string(site) + " with no arrival there");
  }
  st.awaiting_handler = wire::kNoSite;
  st.optional_handler = wire::kNoSite;
}

void SessionChecker::on_hosting(StreamId id, SiteId site, bool hosts) {
  Stream& st = stream(id);
  auto it = std::find(st.hosts.begin(), st.hosts.end(), site);
  if (!hosts) {
    if (it != st.hosts.end()) st.hosts.erase(it);
    return;
  }
  if (it != st.hosts.end()) return;
  st.hosts.push_back(site);
  st.crashed_hosted = false;
  if (st.hosts.size() > 1) {
    fail("one_site_per_stream", name(id) + " hosted at site " + std::to_string(st.hosts.front()) +
                                    " and site " + std::to_string(site) + " at once");
  }
}

void SessionChecker::on_arrive(const wire::Arrive& a, std::size_t encoded_bytes) {
  ++arrives_;
  const StreamId id = a.stream.id;
  Stream& st = stream(id);
  const std::string what =
      "Arrive of " + name(id) + " (epoch " + std::to_string(a.stream.epoch) + ")";
  // One entry per peer: a channel the stream ever used, never one per move.
  if (a.in.size() > st.senders.size() || a.out.size() > st.receivers.size()) {
    fail("move_cost_bounded", what + " carries " + std::to_string(a.in.size()) + " incoming and " +
                                  std::to_string(a.out.size()) + " outgoing channels; it had " +
                                  std::to_string(st.senders.size()) + " senders and " +
                                  std::to_string(st.receivers.size()) + " receivers");
  }
  if (a.briefcases.size() > a.agents.size()) {
    fail("move_cost_bounded", what + " carries " + std::to_string(a.briefcases.size()) +
                                  " briefcases for " + std::to_string(a.agents.size()) + " agents");
  }
  // The state beyond messages and briefcases: names, ids, sequence numbers.
  std::size_t payload = 0;
  for (const wire::OutChannel& oc : a.out)
    for (const std::string& m : oc.unconsumed) payload += m.size() + varint_size(m.size());
  for (const wire::AgentState& b : a.briefcases)
    payload += b.briefcase.size() + varint_size(b.briefcase.size());
  std::size_t waiting = 0;  // appends waiting for an open: messages, like unconsumed ones
  for (const wire::WaitingAppends& w : a.waiting) {
    waiting += w.messages.size();
    for (const std::string& m : w.messages) payload += m.size() + varint_size(m.size());
  }
  const std::size_t meta = encoded_bytes > payload ? encoded_bytes - payload : 0;
  // Its openers are peers too: one entry each, like a channel.
  const std::size_t entries =
      a.in.size() + a.out.size() + a.agents.size() + a.opened.size() + a.waiting.size() + waiting;
  // An absolute bound: a record, and a few varints per entry (ids, sites, sequence numbers).
  const std::size_t bound = 96 + a.stream.name.size() + 48 * entries;
  if (meta > bound) {
    fail("move_cost_bounded", what + " carries " + std::to_string(meta) + " bytes of state for " +
                                  std::to_string(entries) + " entries (bound " +
                                  std::to_string(bound) + ")");
  }
  // Against the first move with as many channels: sequence numbers and the epoch may gain a
  // varint byte each as they grow, nothing more.
  const auto key =
      std::make_tuple(a.in.size(), a.out.size(), a.opened.size() + a.waiting.size() + waiting);
  auto [it, first] = st.first_meta.try_emplace(key, meta, a.stream.epoch);
  if (!first && meta > it->second.first + 4 + 3 * entries) {
    fail("move_cost_bounded", what + " carries " + std::to_string(meta) + " bytes of state, " +
                                  std::to_string(it->second.first) + " at epoch " +
                                  std::to_string(it->second.second) + " with as many channels");
  }
}

bool SessionChecker::life_crashed(StreamId from, std::uint32_t l) const {
  if (l < sender_life(from)) return true;
  auto it = streams_.find(from);
  return it != streams_.end() && it->second.held_lost;
}

bool SessionChecker::lost_with_its_life(const Message& m) const {
  return life_crashed(m.from, m.life);
}

void SessionChecker::on_destroyed_sender_lost(StreamId id) { end_in_crash(stream(id)); }

// A durable stream's messages are never forgiven: guarantee 6 promises them, destroyed or not
// (the simulator's ephemeral streams are not durable; doc/session.md says what is not done).
void SessionChecker::end_in_crash(Stream& st) {
  if (st.durable) return;
  destroyed_senders_lost_ += !st.held_lost;
  st.held_lost = true;
}

std::uint64_t SessionChecker::unconsumed_required() const {
  std::uint64_t n = 0;
  for (const auto& [gid, m] : truth_) n += !m.consumed && !lost_with_its_life(m);
  return n;
}

std::string SessionChecker::first_unconsumed() const {
  for (const auto& [key, p] : pairs_) {
    const auto& [from, l, to] = key;
    if (life_crashed(from, l)) continue;  // its rest may be lost
    for (std::size_t i = 0; i < p.gids.size(); ++i) {
      if (truth_.at(p.gids[i]).consumed) continue;
      return "message #" + std::to_string(i + 1) + " of " + name(from) +
             (l > 0 ? " (life " + std::to_string(l) + ")" : "") + " -> " + name(to) + " (" +
             std::to_string(p.gids.size()) + " appended in that pair, " +
             std::to_string(p.consumed_ever) + " consumed)";
    }
  }
  return {};
}

void SessionChecker::on_quiescence(const std::string& not_idle) {
  quiesced_ = true;
  if (const std::uint64_t left = unconsumed_required(); left > 0) {
    fail("quiescence", "the leader declared quiescence with " + std::to_string(left) +
                           " messages unconsumed, first " + first_unconsumed());
  }
  if (!not_idle.empty()) fail("quiescence", "the leader declared quiescence while " + not_idle);
}

void SessionChecker::set_agentless(StreamId id) {
  Stream& st = stream(id);
  st.agentless = true;
  st.awaiting_handler = wire::kNoSite;
}

void SessionChecker::set_attaching(StreamId id, bool attaching) {
  Stream& st = stream(id);
  st.attaching = attaching;
  // Before its first attach the stream has no agent: an install until then (a recovery
  // before the create's answer came) owes no agent's handler.
  if (attaching) st.awaiting_handler = wire::kNoSite;
  if (!attaching) st.optional_handler = wire::kNoSite;
}

void SessionChecker::on_destroyed(StreamId id) {
  Stream& st = stream(id);
  st.destroyed = true;
  // Its site crashed with it and the leader carried the destroy out instead of a recovery:
  // what it held there is lost with that life.
  if (st.crashed_hosted) end_in_crash(st);
  std::uint64_t appended = 0, unconsumed = 0;
  for (const auto& [gid, m] : truth_) {
    if (m.to != id) continue;
    ++appended;
    unconsumed += !m.consumed && !lost_with_its_life(m);
  }
  if (unconsumed > 0)
    fail("destroy_after_appends", name(id) + " was destroyed with " + std::to_string(unconsumed) +
                                      " of the " + std::to_string(appended) +
                                      " messages appended to it unconsumed");
}

void SessionChecker::check_end() {
  if (const std::uint64_t left = unconsumed_required(); left > 0) {
    fail("session_no_loss", std::to_string(left) + " of " + std::to_string(truth_.size()) +
                                " messages never consumed, first " + first_unconsumed());
  }
  for (auto& [id, st] : streams_) {
    if (st.name.empty()) continue;  // a shell or site as a sender, not a stream
    if (st.destroyed) {
      if (!st.hosts.empty())
        fail("destroy_after_appends", name(id) + " was destroyed but site " +
                                          std::to_string(st.hosts.front()) + " still hosts it");
      continue;
    }
    if (st.hosts.empty()) fail("one_site_per_stream", name(id) + " hosted by no site at the end");
    const SiteId pending =
        st.awaiting_relocation != wire::kNoSite ? st.awaiting_relocation : st.awaiting_handler;
    if (pending != wire::kNoSite)
      fail("relocation_before_append",
           name(id) + " never ran its relocation handlers at site " + std::to_string(pending));
    if (st.judged_durable()) {
      for (const auto& [key, p] : pairs_) {
        const auto& [from, l, to] = key;
        if (to != id || life_crashed(from, l))
          continue;  // a crashed sender's life may lose its rest
        const std::uint64_t held = p.receiver_life == st.life() ? p.consumed : 0;
        if (held < p.gids.size()) {
          fail("durable_state", name(id) + "'s final state holds " + std::to_string(held) +
                                    " of the " + std::to_string(p.gids.size()) + " messages " +
                                    name(from) + " appended to it");
        }
      }
    }
    if (st.recoveries < st.recoveries_due) {
      fail("failure_recovered", name(id) + " was recovered " + std::to_string(st.recoveries) +
                                    " times; crashes of its sites called for " +
                                    std::to_string(st.recoveries_due));
    }
    if (st.recovered_at != wire::kNoSite && !st.moved_since_recovery &&
        (st.hosts.size() != 1 || st.hosts.front() != st.recovered_at)) {
      fail("failure_recovered", name(id) + " was last recovered at site " +
                                    std::to_string(st.recovered_at) +
                                    " and never moved since, but is not hosted there at the end");
    }
  }
}

}  // namespace mstream::sim
