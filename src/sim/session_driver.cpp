#include "sim/session_driver.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "sim/deferred_executor.hpp"
#include "site/ids.hpp"
#include "wire/join.hpp"

namespace mstream::sim::detail {
namespace {

using proto::kMillisecond;

thread_local SessionDriver* t_current = nullptr;

// As src/runtime/node_loop.cpp: a joiner repeats its request until it is answered.
constexpr Time kJoinRepeat = 100 * kMillisecond;

site::SiteOptions session_options(const SessionScenario& s, SiteId id, bool shell,
                                  std::shared_ptr<MemoryStore> store) {
  site::SiteOptions o = site::SiteOptions::with_mtu(id, s.transport.path.mtu, shell);
  o.store = std::move(store);
  o.transport = s.transport;
  o.step_budget = s.step_budget;
  o.delivery_batch = s.delivery_batch;
  o.keep_output = false;
  o.sender_rules_off = s.sender_rules_off;
  // Destroyed streams are forgotten at once, past the watermark: every late message about
  // an ephemeral stream's earlier life meets a forgotten stream (doc/session.md).
  o.kept_destroyed = 1;
  if (s.handler_lanes > 0)
    o.executor = std::make_shared<DeferredExecutor>(s.handler_lanes, mix64(s.seed ^ (id + 1)),
                                                    s.lane_finish_chance);
  return o;
}

// A secured seed's keys, from the seed: runs repeat exactly.
wire::Key sim_key(std::uint64_t seed, std::uint64_t salt) {
  wire::Key k;
  for (std::size_t i = 0; i < k.size(); i += 8) {
    const std::uint64_t v = mix64(seed ^ (salt << 56) ^ (i + 1));
    for (std::size_t j = 0; j < 8; ++j) k[i + j] = static_cast<std::uint8_t>(v >> (8 * j));
  }
  return k;
}

wire::Key sim_join_key(const SessionScenario& s) { return wire::join_key_of(sim_key(s.seed, 1)); }
// The leader's long-term key pair: the same for each of its processes, as a real leader's
// beside its secret file.
wire::KxKeyPair sim_leader_pair(const SessionScenario& s) {
  return wire::kx_seed_keypair(sim_key(s.seed, 4));
}
// Node n's key pair for its process's join (a fresh one each process).
wire::KxKeyPair sim_joiner_pair(const SessionScenario& s, std::uint32_t n, std::uint32_t process) {
  return wire::kx_seed_keypair(sim_key(s.seed ^ (std::uint64_t{n} << 32) ^ process, 5));
}

// Failure detection only in the seeds that crash sites (session_scenario.hpp): elsewhere the
// network's partitions outlast any timeout short enough to test.
leader::LeaderOptions leader_options(const SessionScenario& s, std::shared_ptr<MemoryStore> state) {
  leader::LeaderOptions o;
  o.failure_timeout = s.failure_timeout;
  o.sender_rules_off = s.sender_rules_off;
  if (s.leader_durable) {
    o.state = std::move(state);
    o.resume_timeout = s.resume_timeout;
  }
  return o;
}

}  // namespace

std::string sim_address(std::uint32_t node) { return "sim:" + std::to_string(node); }

std::optional<std::uint32_t> parse_sim_address(const std::string& address) {
  if (address.rfind("sim:", 0) != 0) return std::nullopt;
  std::uint32_t node = 0;
  const char* begin = address.data() + 4;
  const char* end = address.data() + address.size();
  const auto [p, ec] = std::from_chars(begin, end, node);
  if (ec != std::errc() || p != end || p == begin) return std::nullopt;
  return node;
}

SessionDriver* SessionDriver::current() { return t_current; }

SessionDriver::SessionDriver(const SessionScenario& s, const RunOptions& o)
    : sc_(s),
      opt_(o),
      // The run's own draws (agents' choices) and the network's fates: streams of their own
      // off the seed, apart from those that derived the scenario.
      rng_(mix64(s.seed) ^ 0x8EBC6AF09C88C6E3ull),
      net_(s.network, Rng(mix64(s.seed) ^ 0x589965CC75374CC3ull)),
      hostile_rng_(mix64(s.seed) ^ 0x2545F4914F6CDD1Dull) {
  register_session_agents();
  nodes_.resize(s.nodes());
  shell_sent_.assign(s.streams.size(), 0);
  site_ids_.assign(s.sites + 1, 0);
  for (const SessionStreamPlan& p : s.streams)
    if (!p.sender && !p.ephemeral) receivers_.push_back(p.name);
  for (std::uint32_t n = 0; n <= s.sites; ++n) {
    nodes_[n].store = std::make_shared<MemoryStore>();
    nodes_[n].store->set_hook([this, n](const std::vector<proto::StoredRecord>& batch) {
      return on_store_put(n, batch);
    });
  }
  nodes_[0].leader_state = std::make_shared<MemoryStore>();
  nodes_[0].leader_state->set_hook(
      [this](const std::vector<proto::StoredRecord>&) { return on_leader_state_put(); });
  make_leader();
  for (std::uint32_t n = 1; n < s.nodes(); ++n) {
    nodes_[n].nonce = mix64(s.seed ^ (std::uint64_t{n} << 48)) | 1;
    schedule(s.join_at[n], SessionEventKind::kJoin, n);
  }
}

SessionDriver::~SessionDriver() = default;

void SessionDriver::make_leader() {
  NodeRun& nr = nodes_[0];
  std::optional<leader::JoinSecurity> security;
  // Each process draws its own master key and cookies; a resumed one goes on with its
  // state's master key.
  if (sc_.secured)
    security = leader::JoinSecurity{sim_join_key(sc_), sim_key(sc_.seed, 2 + 2 * nr.restarts),
                                    sim_key(sc_.seed, 3 + 2 * nr.restarts), sim_leader_pair(sc_)};
  nr.leader = std::make_unique<leader::LeaderNode>(session_options(sc_, 0, false, nr.store),
                                                   leader_options(sc_, nr.leader_state), security);
  nr.leader->set_own_address(sim_address(0), 0);
  nr.node = nr.leader.get();
  nr.core = &nr.leader->site();
  nr.core->set_trace([this](const site::HandlerTrace& t) { on_trace(0, t); });
  nr.hosting.clear();
  if (Status st = nr.leader->open_state(now_); !st.ok())
    checker_.fail("api_contract", "the leader's state did not open: " + st.message());
}

void SessionDriver::note(SessionEventKind kind, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  digest_.add_signed(now_);
  digest_.add(static_cast<std::uint64_t>(kind));
  digest_.add(a);
  digest_.add(b);
  digest_.add(c);
}

void SessionDriver::trace(const std::string& line) {
  if (!opt_.trace) return;
  char stamp[40];
  std::snprintf(stamp, sizeof stamp, "%14.6fms ", static_cast<double>(now_) / kMillisecond);
  *opt_.trace << stamp << line << '\n';
}

void SessionDriver::schedule(SessionEvent e) {
  e.order = order_++;
  heap_.push_back(std::move(e));
  std::push_heap(heap_.begin(), heap_.end(), SessionLater{});
}

void SessionDriver::schedule(Time at, SessionEventKind kind, std::uint32_t node,
                             std::uint32_t target) {
  SessionEvent e;
  e.at = at;
  e.kind = kind;
  e.node = node;
  e.target = target;
  schedule(std::move(e));
}

SessionResult SessionDriver::run() {
  SessionDriver* const outer = t_current;
  t_current = this;
  const Time deadline = sc_.calm_start() + sc_.liveness_bound;
  run_node(0);
  for (;;) {
    if (phase_ == Phase::kDone && settled()) break;
    if (sum_.steps >= opt_.max_steps) {
      checker_.fail("progress", "more than " + std::to_string(opt_.max_steps) +
                                    " steps by t=" + std::to_string(now_) + "ns");
      break;
    }
    std::uint32_t timer_node = 0;
    Time timer = proto::kNever;
    for (std::uint32_t n = 0; n < nodes_.size(); ++n) {
      if (nodes_[n].node && nodes_[n].timer_at < timer) {
        timer = nodes_[n].timer_at;
        timer_node = n;
      }
    }
    const Time event = heap_.empty() ? proto::kNever : heap_.front().at;
    const Time next = std::min(timer, event);
    if (next == proto::kNever || next > deadline) break;
    now_ = std::max(now_, next);
    ++sum_.steps;
    if (timer <= event) {
      fire_timer(timer_node);
    } else {
      std::pop_heap(heap_.begin(), heap_.end(), SessionLater{});
      SessionEvent e = std::move(heap_.back());
      heap_.pop_back();
      switch (e.kind) {
        case SessionEventKind::kArrival:
          on_arrival(e);
          break;
        case SessionEventKind::kStep:
          nodes_[e.node].step_scheduled = false;
          run_node(e.node);
          break;
        case SessionEventKind::kJoin:
          send_join(e.node);
          break;
        case SessionEventKind::kAction:
          on_action(e.target);
          run_node(sc_.shell_node());
          break;
        case SessionEventKind::kQuiesce:
          ask_quiescence();
          run_node(sc_.shell_node());
          break;
        case SessionEventKind::kCrash:
          crash(e.target);
          break;
        case SessionEventKind::kRestart:
          restart(e.target);
          break;
        default:
          break;
      }
    }
    if (stop_) break;
  }

  if (!stop_) {
    if (sum_.setup_done_at == proto::kNever) {
      checker_.fail("liveness", "the shell's streams were not all created with their agents by t=" +
                                    std::to_string(now_) + "ns (phase " +
                                    std::to_string(static_cast<int>(phase_)) + ", " +
                                    std::to_string(attached_) + " attached)");
    } else if (phase_ == Phase::kWorkload) {
      std::string which;
      for (const auto& [req, r] : outstanding_)
        which += " #" + std::to_string(req) + " (" +
                 (r.kind == Request::Kind::kMove ? "move of " : "create/attach of ") +
                 sc_.streams[r.stream].name + ")";
      checker_.fail("liveness",
                    "the workload did not finish by t=" + std::to_string(now_) + "ns: " +
                        std::to_string(outstanding_.size()) + " requests unanswered" + which +
                        ", " + std::to_string(shell_appends_.size()) + " shell appends waiting");
    } else if (phase_ == Phase::kQuiescing) {
      checker_.fail("quiescence",
                    "no answer to the shell's QuiesceReq by t=" + std::to_string(now_) + "ns (" +
                        std::to_string(checker_.appended() - checker_.consumed()) +
                        " messages unconsumed" +
                        (checker_.first_unconsumed().empty()
                             ? std::string()
                             : ", first needed " + checker_.first_unconsumed()) +
                        "; busy: " + busy_nodes() + ")");
    } else if (!settled()) {
      checker_.fail("liveness", "the session was not idle by t=" + std::to_string(now_) +
                                    "ns after quiescence: " + busy_nodes());
    } else {
      check_end_state();
    }
  }
  checker_.check_end();
  sum_.destroyed_senders_lost = checker_.destroyed_senders_lost();

  const auto add_refused = [this](const auto& counts) {
    for (std::size_t k = 0; k < counts.size(); ++k) sum_.refused_control[k] += counts[k];
  };
  const auto add_site = [&](const site::SiteCounters& c) {
    add_refused(c.refused_control);
    sum_.checkpoints_saving_at_fm_loss += c.checkpoints_saving_at_fm_loss;
    sum_.control_resends += c.control_resends;
    sum_.channels_retired += c.channels_retired;
    sum_.opened_after_destroy += c.opened_after_destroy;
    sum_.destroyed_senders_placed += c.destroyed_senders_placed;
  };
  for (const NodeRun& nr : nodes_)
    if (nr.core) sum_.forgotten_answered += nr.core->directory().forgotten_answered();
  const auto add_leader = [&](const leader::LeaderCore& l) {
    add_refused(l.refused_control());
    sum_.stale_answers += l.stats().stale_answers;
    sum_.moves_settled_at_target += l.stats().moves_settled_at_target;
    sum_.answers_repeated += l.stats().answers_repeated;
  };
  for (std::uint32_t n = 0; n < nodes_.size(); ++n) {
    const NodeRun& nr = nodes_[n];
    if (!nr.core) continue;
    add_transport_stats(nr.core->transport().stats(), &sum_.transport);
    if (is_hostile(n)) continue;
    add_site(nr.core->counters());
    sum_.arrivals_waiting += nr.core->arrivals_waiting();
    if (nr.leader) add_leader(nr.leader->leader());
  }
  for (const auto& dead : crashed_sites_) {
    add_transport_stats(dead->transport().stats(), &sum_.transport);
    add_site(dead->counters());
  }
  for (const auto& dead : crashed_leaders_) {
    add_transport_stats(dead->site().transport().stats(), &sum_.transport);
    add_site(dead->site().counters());
    add_leader(dead->leader());
  }
  sum_.end_time = now_;
  sum_.network = net_.stats();
  sum_.consumed = checker_.consumed();
  sum_.durable_senders_restarted = checker_.durable_senders_restarted();
  SessionResult r;
  r.seed = sc_.seed;
  digest_.add(checker_.appended());
  digest_.add(checker_.consumed());
  r.trace_hash = digest_.value();
  r.violations = checker_.violations();
  r.summary = sum_;
  t_current = outer;
  return r;
}

// ---------------------------------------------------------------------------------------
// Joins

void SessionDriver::send_join(std::uint32_t n) {
  NodeRun& nr = nodes_[n];
  if (nr.node || nr.crashed) return;
  if (!nr.joiner) {
    std::optional<proto::JoinSecrets> secrets;
    if (sc_.secured)
      secrets = proto::JoinSecrets{sim_join_key(sc_), sim_leader_pair(sc_).public_key,
                                   sim_joiner_pair(sc_, n, nr.restarts)};
    nr.joiner.emplace(
        nr.nonce,
        n == sc_.shell_node() ? wire::JoinMessage::Role::kShell : wire::JoinMessage::Role::kSite, n,
        secrets);
  }
  ++sum_.join_requests;
  trace("node " + std::to_string(n) + " asks to join");
  record_join(n, nr.joiner->request());
  transmit(n, 0, nr.joiner->request());
  schedule(now_ + kJoinRepeat, SessionEventKind::kJoin, n);
}

void SessionDriver::on_join_datagram(std::uint32_t n, std::uint32_t from,
                                     const wire::Bytes& bytes) {
  if (n == 0) {
    wire::Bytes reply;
    if (!nodes_[0].node) return;  // crashed: nobody listens
    const bool answered = nodes_[0].node->on_join(bytes, sim_address(from), now_, &reply);
    note(SessionEventKind::kJoin, from, answered);
    // A crash at the commit of the join leaves no answer (run_node crashes it at once).
    if (answered && !nodes_[0].crash_due) transmit(0, from, reply);
    run_node(0);  // the Welcome and the PeerUpdates it queued
    return;
  }
  NodeRun& nr = nodes_[n];
  // A repeat's, or for a process that crashed.
  if (nr.node || nr.crashed || !nr.joiner) return;
  // Damaged, not ours, or not authentic: nothing.
  const proto::Joiner::Outcome out = nr.joiner->on_reply(bytes);
  using Kind = proto::Joiner::Outcome::Kind;
  // Doubted: our request was damaged on its way (the seed's secret is the session's).
  if (out.kind == Kind::kNothing || out.kind == Kind::kDoubted) return;
  if (out.kind == Kind::kResend) {  // the leader's challenge: the sealed request at once
    record_join(n, nr.joiner->request());
    transmit(n, 0, nr.joiner->request());
    return;
  }
  if (out.kind == Kind::kRefused) {
    checker_.fail("api_contract", "node " + std::to_string(n) + " refused: " + out.reason);
    return;
  }
  if (sc_.secured != out.leader_key.has_value()) {
    checker_.fail("api_contract", "node " + std::to_string(n) + " admitted without the key");
    return;
  }
  for (const NodeRun& other : nodes_) {
    if (other.node && other.id == out.site) {
      checker_.fail("api_contract", "node " + std::to_string(n) + " given site id " +
                                        std::to_string(out.site) + ", which another node has");
      return;
    }
  }
  nr.joiner.reset();
  make_site(n, out.site, out.leader_key);
}

void SessionDriver::make_site(std::uint32_t n, SiteId id,
                              const std::optional<wire::Key>& leader_key) {
  NodeRun& nr = nodes_[n];
  site::SiteOptions options = session_options(sc_, id, n == sc_.shell_node(), nr.store);
  options.leader_key = leader_key;
  nr.site = std::make_unique<site::SiteCore>(std::move(options));
  nr.node = nr.site.get();
  nr.core = nr.site.get();
  nr.id = id;
  nr.routes[0] = 0;  // node_loop::join: the leader is where the answer came from
  nr.hosting.clear();
  nr.core->set_trace([this, n](const site::HandlerTrace& t) { on_trace(n, t); });
  note(SessionEventKind::kJoin, n, id, 1);
  trace("node " + std::to_string(n) + " joined as site " + std::to_string(id));
  // A restarted node is a new site: the shell's moves and the agents go there from now on.
  if (nr.restarts > 0 && n <= sc_.sites) site_ids_[n] = id;
  run_node(n);
}

void SessionDriver::crash(std::uint32_t index) {
  const SessionCrash& c = sc_.crashes[index];
  if (c.point == SessionCrash::Point::kAtTime) {
    crash_now(index);
    return;
  }
  trace("node " + std::to_string(c.node) + " will crash at its store's next commit");
  nodes_[c.node].armed_crash = index;
}

// Inside SiteCore::step (store_pending_checkpoints): the crash waits for the step's end, as
// the core must not be destroyed under its own call; nothing it does meanwhile leaves the
// node, as run_node crashes it before it drains the node's datagrams.
MemoryStore::Fault SessionDriver::on_store_put(std::uint32_t n,
                                               const std::vector<proto::StoredRecord>& batch) {
  NodeRun& nr = nodes_[n];
  MemoryStore::Fault fault = MemoryStore::Fault::kNone;
  if (nr.armed_crash && nr.node && phase_ == Phase::kWorkload) {
    nr.crash_due = *nr.armed_crash;
    nr.armed_crash.reset();
    fault = sc_.crashes[*nr.crash_due].point == SessionCrash::Point::kBeforeCommit
                ? MemoryStore::Fault::kCrashBeforeCommit
                : MemoryStore::Fault::kCrashAfterCommit;
    ++sum_.checkpoint_crashes;
  }
  note(SessionEventKind::kCrash, n, batch.size(), static_cast<std::uint64_t>(fault) + 16);
  trace("node " + std::to_string(n) + " commits " + std::to_string(batch.size()) + " checkpoints" +
        (fault == MemoryStore::Fault::kCrashBeforeCommit  ? ": it crashes before the commit"
         : fault == MemoryStore::Fault::kCrashAfterCommit ? ": it crashes right after it"
                                                          : ""));
  if (fault == MemoryStore::Fault::kCrashBeforeCommit) return fault;
  ++sum_.checkpoints_stored;
  if (fault == MemoryStore::Fault::kNone && sc_.lying_store_every > 0 &&
      sum_.checkpoints_stored % sc_.lying_store_every == 0)
    return MemoryStore::Fault::kLieAboutCommit;
  for (const proto::StoredRecord& r : batch) {
    Result<std::optional<proto::StoredRecord>> held = nr.store->get(r.key);
    const bool newer = !held.ok() || !held->has_value() || r.epoch > (*held)->epoch ||
                       (r.epoch == (*held)->epoch && r.version > (*held)->version);
    if (!newer) continue;
    DurableRestore stored = restore_of(r);
    if (!stored.waiting_to.empty()) ++sum_.checkpoints_with_waiting;
    checker_.on_checkpoint_stored(nr.id, r.key, stored);
  }
  return fault;
}

// The leader's process crashes at the commit of its state as a site does at one of its
// checkpoints (on_store_put); the records are not checkpoints, so the checker hears nothing.
MemoryStore::Fault SessionDriver::on_leader_state_put() {
  NodeRun& nr = nodes_[0];
  if (!nr.armed_crash || !nr.node || phase_ != Phase::kWorkload) return MemoryStore::Fault::kNone;
  nr.crash_due = *nr.armed_crash;
  nr.armed_crash.reset();
  ++sum_.checkpoint_crashes;
  const bool before = sc_.crashes[*nr.crash_due].point == SessionCrash::Point::kBeforeCommit;
  note(SessionEventKind::kCrash, 0, before ? 1 : 2, 32);
  trace(std::string("node 0 commits the leader's state: it crashes ") +
        (before ? "before the commit" : "right after it"));
  return before ? MemoryStore::Fault::kCrashBeforeCommit : MemoryStore::Fault::kCrashAfterCommit;
}

// The node stops where it is: no datagram reaches it, it sends none and never steps again
// (what it sent is still on the wire). Its core is kept only so nothing dangles.
void SessionDriver::crash_now(std::uint32_t index) {
  const SessionCrash& c = sc_.crashes[index];
  NodeRun& nr = nodes_[c.node];
  if (!nr.node) return;  // not joined (again) yet: nothing runs there anyway
  // Crashes happen during the workload only: one after the shell's QuiesceReq would make
  // the leader's answer (rightly given) stale, as the recovery then runs handlers again.
  if (phase_ != Phase::kWorkload) {
    trace("node " + std::to_string(c.node) + " does not crash: the workload is over");
    return;
  }
  nr.armed_crash.reset();
  nr.crash_due.reset();
  note(SessionEventKind::kCrash, c.node, nr.id);
  trace("node " + std::to_string(c.node) + " (site " + std::to_string(nr.id) + ") crashes");
  ++sum_.crashes;
  crashed_ids_.insert(nr.id);
  // Site 0's checkpoints are on the disk its next process reads.
  checker_.on_site_crashed(nr.id, c.node == 0);
  if (nr.core)
    for (StreamId id : nr.core->destroyed_senders_holding()) checker_.on_destroyed_sender_lost(id);
  if (nr.site) crashed_sites_.push_back(std::move(nr.site));
  if (nr.leader) crashed_leaders_.push_back(std::move(nr.leader));
  nr.node = nullptr;
  nr.core = nullptr;
  nr.crashed = true;
  nr.timer_at = proto::kNever;
  nr.step_scheduled = false;
  nr.hosting.clear();
  if (c.restart_after >= 0) schedule(now_ + c.restart_after, SessionEventKind::kRestart, 0, index);
}

// A new process at the crashed node's address: it joins as a new site.
void SessionDriver::restart(std::uint32_t index) {
  const std::uint32_t n = sc_.crashes[index].node;
  NodeRun& nr = nodes_[n];
  if (!nr.crashed) return;
  note(SessionEventKind::kRestart, n);
  trace("node " + std::to_string(n) + " restarts");
  ++sum_.restarts;
  nr.crashed = false;
  ++nr.restarts;
  if (n == 0) {
    // The same site 0, resuming the session from the leader's state: no join.
    nr.routes.clear();
    nr.last_timer = -1;
    nr.same_time_timers = 0;
    make_leader();
    run_node(0);
    return;
  }
  nr.nonce = mix64(sc_.seed ^ (std::uint64_t{n} << 48) ^ (std::uint64_t{nr.restarts} << 40)) | 1;
  nr.joiner.reset();
  nr.routes.clear();
  nr.id = 0;
  nr.last_timer = -1;
  nr.same_time_timers = 0;
  send_join(n);
}

void SessionDriver::report_acks(StreamId to) {
  for (const NodeRun& nr : nodes_) {
    if (!nr.core) continue;
    const proto::Transport& t = nr.core->transport();
    auto report = [&](StreamId from) {
      if (const proto::SendChannel* ch = t.send_channel({from, to}))
        checker_.on_acked(from, to, ch->origin, ch->consumed_up_to());
    };
    for (StreamId id : nr.core->hosted_ids()) report(id);
    if (&nr == &nodes_[sc_.shell_node()]) report(nr.core->sender_id());
  }
}

// ---------------------------------------------------------------------------------------
// Datagrams and timers

void SessionDriver::transmit(std::uint32_t from, std::uint32_t to, const wire::Bytes& bytes) {
  note(SessionEventKind::kSend, from, to, hash_bytes(bytes));
  arrivals_.clear();
  net_.transmit(from, to, bytes, now_, &arrivals_);
  for (Arrival& a : arrivals_) {
    SessionEvent e;
    e.at = a.at;
    e.kind = SessionEventKind::kArrival;
    e.node = a.to;
    e.from = from;
    e.damage = a.damage;
    e.bytes = std::move(a.bytes);
    ++in_flight_;
    schedule(std::move(e));
  }
}

void SessionDriver::on_arrival(SessionEvent& e) {
  --in_flight_;
  const std::uint32_t n = e.node;
  NodeRun& nr = nodes_[n];
  if (wire::is_join(e.bytes)) {
    note(SessionEventKind::kArrival, n, hash_bytes(e.bytes), 1);
    // A damaged join datagram must fail its checksum (decode_join checks it), or its seal.
    if (e.damage == Damage::kCorrupted || e.damage == Damage::kTruncated) {
      // A sealed one is a request (under the join key) or an accept (under the exchange's).
      bool decodes = wire::datagram_kind(e.bytes) == wire::kKindJoin
                         ? wire::decode_join(e.bytes).ok()
                         : wire::decode_sealed_join(e.bytes, sim_join_key(sc_)).ok();
      if (!decodes && n != 0 && sc_.secured && wire::datagram_kind(e.bytes) != wire::kKindJoin) {
        auto k = wire::kx_joiner_open_key(sim_joiner_pair(sc_, n, nr.restarts),
                                          sim_leader_pair(sc_).public_key);
        decodes = k.ok() && wire::decode_sealed_join(e.bytes, *k).ok();
      }
      if (decodes)
        checker_.fail("corruption_rejected",
                      "a damaged join datagram decoded at node " + std::to_string(n));
      return;
    }
    on_join_datagram(n, e.from, e.bytes);
    return;
  }
  if (!nr.node) {  // not joined yet: nobody listens at that address
    note(SessionEventKind::kArrival, n, hash_bytes(e.bytes), 2);
    return;
  }
  const bool forgery = !forgeries_.empty() && forgeries_.contains(hash_bytes(e.bytes));
  const std::uint64_t forged_before = nr.core->transport().stats().forged_in;
  nr.node->on_datagram(e.bytes, now_);
  const SiteId src = nr.node->last_source();
  note(SessionEventKind::kArrival, n, hash_bytes(e.bytes), src);
  if (forgery) {
    // Sealed by the hostile member in another's name: the seal must give it away.
    if (src != proto::kNoSource)
      checker_.fail("forgery_refused", "node " + std::to_string(n) +
                                           " accepted a datagram the hostile node " +
                                           std::to_string(e.from) + " sealed in another's name");
    else if (nr.core->transport().stats().forged_in > forged_before)
      ++sum_.forgeries_refused;
  }
  if (e.damage != Damage::kNone) {
    if (src != proto::kNoSource) {
      checker_.fail("corruption_rejected", "node " + std::to_string(n) +
                                               " accepted a damaged datagram from node " +
                                               std::to_string(e.from));
    } else {
      ++sum_.damaged_refused;
    }
  } else if (src != proto::kNoSource) {
    // node_loop answers a site where it last spoke from.
    nr.routes[src] = e.from;
  }
  if (opt_.trace)
    trace("node " + std::to_string(n) + " got " + std::to_string(e.bytes.size()) + "B from node " +
          std::to_string(e.from) + (src == proto::kNoSource ? " (refused)" : ""));
  run_node(n);
}

void SessionDriver::fire_timer(std::uint32_t n) {
  NodeRun& nr = nodes_[n];
  // A timeout that stays due after on_timeout() would spin the loop at one instant.
  if (nr.timer_at == nr.last_timer) {
    if (++nr.same_time_timers > 1000) {
      checker_.fail("progress", "node " + std::to_string(n) + " timeout at " +
                                    std::to_string(nr.timer_at) +
                                    "ns stays due after 1000 on_timeout() calls");
      stop_ = true;
      return;
    }
  } else {
    nr.same_time_timers = 0;
    nr.last_timer = nr.timer_at;
  }
  ++sum_.timer_steps;
  nr.node->on_timeout(now_);
  note(SessionEventKind::kTimer, n);
  run_node(n);
}

void SessionDriver::run_node(std::uint32_t n) {
  NodeRun& nr = nodes_[n];
  if (!nr.node) return;
  nr.node->step(now_);
  if (nr.crash_due) {
    crash_now(*nr.crash_due);
    return;
  }
  if (n == sc_.shell_node()) shell_poll();
  drain(n);
  if (nr.node->has_work() && !nr.step_scheduled) {
    // A busy node comes back after step_gap, the time its handlers took.
    nr.step_scheduled = true;
    schedule(now_ + sc_.step_gap, SessionEventKind::kStep, n);
  }
  nr.timer_at = nr.node->next_timeout();
  report_hosting(n);
  std::string line;
  while (nr.core->poll_error(&line)) trace("node " + std::to_string(n) + " reports: " + line);
}

void SessionDriver::drain(std::uint32_t n) {
  NodeRun& nr = nodes_[n];
  for (std::uint64_t k = 0; nr.node->poll_transmit(now_, &out_); ++k) {
    if (k > 1'000'000) {
      checker_.fail("progress",
                    "node " + std::to_string(n) + " poll_transmit() never returns false");
      stop_ = true;
      return;
    }
    on_transmit(n, out_);
  }
}

std::optional<std::uint32_t> SessionDriver::route(std::uint32_t n, SiteId to) {
  NodeRun& nr = nodes_[n];
  auto it = nr.routes.find(to);
  if (it != nr.routes.end()) return it->second;
  const std::optional<std::string> address = nr.node->peer_address(to);
  if (!address) return std::nullopt;
  const std::optional<std::uint32_t> node = parse_sim_address(*address);
  if (!node || *node >= nodes_.size()) {
    checker_.fail("api_contract", "node " + std::to_string(n) + " has address \"" + *address +
                                      "\" for site " + std::to_string(to));
    return std::nullopt;
  }
  nr.routes[to] = *node;
  return node;
}

// Secured seeds: every datagram a node sends is sealed under the key of its pair with the
// receiver, and no sender ever seals two under the same (site, boot, counter), the AEAD's
// nonce (wire/crypto.hpp): a repeat would reveal both plaintexts, and let forgeries through.
Status SessionDriver::open_sent(std::uint32_t n, const proto::OutDatagram& out,
                                const std::string& who) {
  const std::optional<wire::Key> key = nodes_[n].core->transport().pair_key(out.to);
  if (!key) {
    checker_.fail("wire_valid", who + " sends unsealed in a secured session");
    return Status::error(Status::Code::kMalformed, "unsealed");
  }
  wire::SealedHeader h;
  Status st = wire::open_datagram(*key, out.bytes, &h, &opened_);
  if (!st.ok()) return st;
  auto [it, fresh] = nonces_.try_emplace({h.src_site, h.src_boot}, h.counter);
  if (!fresh) {
    if (h.counter <= it->second)
      checker_.fail("nonce_unique", who + " sealed counter " + std::to_string(h.counter) +
                                        " after " + std::to_string(it->second) + " (boot " +
                                        std::to_string(h.src_boot) + ")");
    it->second = std::max(it->second, h.counter);
  }
  ++sum_.sealed;
  return st;
}

void SessionDriver::on_transmit(std::uint32_t n, const proto::OutDatagram& out) {
  NodeRun& nr = nodes_[n];
  const std::string who = "node " + std::to_string(n) + " (site " + std::to_string(nr.id) + ")";
  wire::ByteView bytes = out.bytes;
  Status status = Status::ok_status();
  if (sc_.secured) {
    status = open_sent(n, out, who);
    bytes = opened_;
  }
  if (status.ok())
    status = wire::decode_datagram(
        bytes, &decoded_, sc_.secured ? wire::Integrity::kSealed : wire::Integrity::kChecksum);
  if (!status.ok()) {
    checker_.fail("wire_valid", who + " sent an undecodable datagram: " + status.to_string());
  } else {
    if (decoded_.header.src_site != nr.id || decoded_.header.dst_site != out.to)
      checker_.fail("wire_valid", who + " sent a datagram for site " + std::to_string(out.to) +
                                      " with header " + wire::describe(decoded_));
    if (out.bytes.size() > sc_.transport.path.mtu)
      checker_.fail("wire_valid", who + " sent " + std::to_string(out.bytes.size()) +
                                      " bytes, more than the mtu " +
                                      std::to_string(sc_.transport.path.mtu));
    // (The hostile member's Arrives are lies, not moves: the checker must not take them.)
    for (const wire::Frame& f : decoded_.frames)
      if ((f.type == wire::FrameType::kData || f.type == wire::FrameType::kFragment) &&
          !is_hostile(n))
        watch_arrive(f);
    if (sc_.hostile && !is_hostile(n)) observe_for_lies();
  }
  const std::optional<std::uint32_t> to = route(n, out.to);
  if (!to) {
    // node_loop drops it too; the transport repeats it once the address is known.
    ++sum_.unroutable;
    note(SessionEventKind::kSend, n, out.to, 0);
    return;
  }
  if (*to == n && (nr.restarts == 0 || out.to == nr.id)) {
    checker_.fail("wire_valid",
                  who + " sent a datagram to itself (site " + std::to_string(out.to) + ")");
    return;
  }
  // (A restarted node may send to the site it was before: that lands here, and is refused.)
  if (opt_.trace && status.ok()) {
    std::string line = who + " sends " + wire::describe(decoded_);
    // Control messages by name, so a failing seed's trace reads as the protocol does.
    for (const wire::Frame& f : decoded_.frames) {
      if (f.type != wire::FrameType::kData || !site::is_control(f.to_stream)) continue;
      Result<wire::ControlMessage> m = wire::decode_control(f.payload);
      line += std::string(" [") + (m.ok() ? wire::control_name(m.value()) : "?") + " #" +
              std::to_string(f.seq) + "]";
    }
    trace(line);
  }
  if (is_hostile(n) && status.ok()) {
    transmit(n, *to, lie(n, *to, out));
    return;
  }
  transmit(n, *to, out.bytes);
}

}  // namespace mstream::sim::detail
