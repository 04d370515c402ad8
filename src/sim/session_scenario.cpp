#include "sim/session_scenario.hpp"

#include <algorithm>
#include <cstdio>

#include "sim/random.hpp"

namespace mstream::sim {
namespace {

using proto::kMicrosecond;
using proto::kMillisecond;
using proto::kSecond;

std::string ms(Time t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fms", static_cast<double>(t) / kMillisecond);
  return buf;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// The site options a real node uses (SiteOptions::with_mtu), with the few knobs a seed draws.
proto::TransportConfig derive_session_transport(Rng& rng, bool small_buffers) {
  proto::TransportConfig c;
  static constexpr std::size_t kMtus[] = {512, 1200, 1400, 9000, 65000};
  // 4096 is the default; the small bounds fill channel buffers, so handlers' appends overflow
  // into the site's ordered queue and moves carry that queue along.
  static constexpr std::uint32_t kMaxMessages[] = {2, 8, 64, 4096};
  c.path.mtu = rng.pick(kMtus);
  c.path.retransmission = rng.chance(0.5) ? proto::RetransmissionClass::kSelectiveRepeat
                                          : proto::RetransmissionClass::kGoBackN;
  c.channel.max_message_bytes = 64u << 20;
  c.channel.max_unconsumed_bytes = 256u << 20;
  c.channel.max_unconsumed_messages = rng.pick(kMaxMessages);
  if (!small_buffers) c.channel.max_unconsumed_messages = 4096;
  c.aes = false;  // a seed's run must not depend on the machine's CPU
  return c;
}

void derive_streams(Rng& rng, SessionScenario* s) {
  const auto receivers = rng.between(1, 4);
  const auto senders = rng.between(1, 4);
  for (std::int64_t i = 0; i < receivers + senders; ++i) {
    SessionStreamPlan p;
    p.sender = i >= receivers;
    p.name = p.sender ? "/sim/s" + std::to_string(i - receivers) : "/sim/r" + std::to_string(i);
    p.node = static_cast<std::uint32_t>(rng.below(s->sites + 1));
    s->streams.push_back(std::move(p));
  }
}

std::uint32_t pick_stream(Rng& rng, const SessionScenario& s, bool sender) {
  std::vector<std::uint32_t> fit;
  for (std::uint32_t i = 0; i < s.streams.size(); ++i)
    if (s.streams[i].sender == sender) fit.push_back(i);
  return fit[rng.below(fit.size())];
}

void derive_actions(Rng& rng, const ScenarioOverrides& overrides, SessionScenario* s) {
  const Time span = rng.log_between(50 * kMillisecond, 2 * kSecond);
  auto add = [&](SessionAction::Kind kind, Time at, std::uint32_t stream) -> SessionAction& {
    SessionAction a;
    a.kind = kind;
    a.at = at;
    a.stream = stream;
    s->actions.push_back(a);
    return s->actions.back();
  };
  const auto triggers = rng.between(3, 40);
  for (std::int64_t i = 0; i < triggers; ++i) {
    add(SessionAction::Kind::kTrigger, rng.between(0, span), pick_stream(rng, *s, true)).count =
        static_cast<std::uint32_t>(rng.between(1, 12));
  }
  const auto appends = rng.between(0, 15);
  for (std::int64_t i = 0; i < appends; ++i)
    add(SessionAction::Kind::kAppend, rng.between(0, span), pick_stream(rng, *s, false));
  if (!overrides.moves) return;
  const std::uint32_t nodes = s->sites + 1;  // sites a stream may live at: 0..sites
  const auto singles = rng.between(0, 20);
  for (std::int64_t i = 0; i < singles; ++i) {
    add(SessionAction::Kind::kMove, rng.between(0, span),
        static_cast<std::uint32_t>(rng.below(s->streams.size())))
        .node = static_cast<std::uint32_t>(rng.below(nodes));
  }
  // Both ends at once: a sender and a receiver moved at the same instant, often each to the
  // other's site or to a common one (their channel turns local, or stops being local).
  const auto pairs = rng.between(0, 5);
  for (std::int64_t i = 0; i < pairs; ++i) {
    const Time at = rng.between(0, span);
    const std::uint32_t sender = pick_stream(rng, *s, true);
    const std::uint32_t receiver = pick_stream(rng, *s, false);
    const auto common = static_cast<std::uint32_t>(rng.below(nodes));
    const bool together = rng.chance(0.5);
    add(SessionAction::Kind::kMove, at, sender).node =
        together ? common : static_cast<std::uint32_t>(rng.below(nodes));
    add(SessionAction::Kind::kMove, at, receiver).node =
        together ? common : static_cast<std::uint32_t>(rng.below(nodes));
  }
  // Bursts: one stream moved many times in a row, each time elsewhere; with no gap the
  // leader queues them all and runs them back to back (guarantee 5).
  const auto bursts = rng.between(0, 3);
  for (std::int64_t b = 0; b < bursts; ++b) {
    const auto stream = static_cast<std::uint32_t>(rng.below(s->streams.size()));
    const auto length = rng.between(3, 12);
    const Time gap = rng.chance(0.3) ? 0 : rng.log_between(100 * kMicrosecond, 30 * kMillisecond);
    Time at = rng.between(0, span);
    std::uint32_t last = nodes;
    for (std::int64_t i = 0; i < length; ++i, at += gap) {
      auto node = static_cast<std::uint32_t>(rng.below(nodes - 1));
      if (last < nodes && node >= last) ++node;
      last = node;
      add(SessionAction::Kind::kMove, at, stream).node = node;
    }
  }
}

// A third of the seeds with faults crash one site (sometimes two) during the workload, and
// may restart it. The failure timeout exceeds the longest silence a live node can see: every
// fault window ends by calm_start, and after it a retransmission comes within max_rto.
void derive_crashes(Rng& rng, SessionScenario* s) {
  if (!rng.chance(0.35)) return;
  const std::uint32_t count = s->sites >= 2 && rng.chance(0.25) ? 2 : 1;
  Time end = 0;
  for (const SessionAction& a : s->actions) end = std::max(end, a.at);
  std::vector<std::uint32_t> nodes;
  for (std::uint32_t n = 1; n <= s->sites; ++n) nodes.push_back(n);
  s->failure_timeout = 2 * s->calm_start() + s->transport.path.max_rto + kSecond;
  for (std::uint32_t i = 0; i < count; ++i) {
    SessionCrash c;
    const std::size_t k = rng.below(nodes.size());
    c.node = nodes[k];
    nodes.erase(nodes.begin() + static_cast<std::ptrdiff_t>(k));
    c.at = rng.between(0, end);
    if (rng.chance(0.4)) c.restart_after = rng.log_between(kMillisecond, 2 * s->failure_timeout);
    s->crashes.push_back(c);
  }
  std::sort(s->crashes.begin(), s->crashes.end(),
            [](const SessionCrash& a, const SessionCrash& b) { return a.at < b.at; });
  for (SessionStreamPlan& p : s->streams)
    p.failure_manager = static_cast<std::uint32_t>(rng.below(s->sites + 1));
}

// Crash seeds make some streams durable, and turn some crashes of a durable stream's failure
// manager into crashes at its store's commit. Drawn from a generator of their own, after
// everything else, so that a seed's other options stay what they were. Whatever its failure
// manager does: one that crashes with the stream's checkpoints makes its next recovery a new
// life, as for a stream without -durable (doc/session.md "Durable streams"). Any channel
// bound: a restored channel that a small bound splits between the transport and the site's
// overflow queue catches up when its receiver acknowledges past the part in the transport
// (Transport::catch_up).
void derive_durable(Rng& rng, SessionScenario* s) {
  if (s->crashes.empty()) return;
  const double chance = rng.chance(0.2) ? 1.0 : 0.5;
  for (SessionStreamPlan& p : s->streams)
    if (!p.sender) p.durable = rng.chance(chance);
  for (SessionCrash& c : s->crashes) {
    const bool manages = std::any_of(s->streams.begin(), s->streams.end(), [&](const auto& p) {
      return p.durable && p.failure_manager == c.node;
    });
    if (!manages || !rng.chance(0.6)) continue;
    c.point =
        rng.chance(0.5) ? SessionCrash::Point::kBeforeCommit : SessionCrash::Point::kAfterCommit;
  }
  for (SessionStreamPlan& p : s->streams)
    if (p.sender) p.durable = rng.chance(chance);
}

// Some seeds add one or two ephemeral streams (SessionStreamPlan::ephemeral), each with one
// to four lives at random times of the workload, forwarding what they handle or not. Drawn
// from a generator of their own, after everything else but the leader's crash and security,
// so that a seed's other options stay.
void derive_ephemerals(Rng& rng, std::optional<bool> forwards, SessionScenario* s) {
  if (s->actions.empty() || !rng.chance(0.4)) return;
  const Time end = s->actions.back().at;
  const auto count = rng.between(1, 2);
  for (std::int64_t k = 0; k < count; ++k) {
    SessionStreamPlan p;
    p.name = "/sim/e" + std::to_string(k);
    p.node = static_cast<std::uint32_t>(rng.below(s->sites + 1));
    p.ephemeral = true;
    const auto index = static_cast<std::uint32_t>(s->streams.size());
    s->streams.push_back(std::move(p));
    const auto lives = rng.between(1, 4);
    for (std::int64_t l = 0; l < lives; ++l) {
      SessionAction a;
      a.kind = SessionAction::Kind::kLife;
      a.at = rng.between(0, end);
      a.stream = index;
      a.count = static_cast<std::uint32_t>(rng.between(0, 8));
      s->actions.push_back(a);
    }
  }
  std::stable_sort(s->actions.begin(), s->actions.end(),
                   [](const SessionAction& a, const SessionAction& b) { return a.at < b.at; });
  // Last, so that the draws above are those of the seeds made before ephemeral streams
  // forwarded.
  for (SessionStreamPlan& p : s->streams)
    if (p.ephemeral) p.forwards = forwards ? *forwards : rng.chance(0.5);
}

// Some crash seeds crash the leader's process too (it restarts from its durable state, within
// the peers' resume timeout), at a time or at a commit of its node's stores (its own state, or
// site 0's checkpoints). Drawn last, from a generator of its own. Under any channel bound: a
// restored control channel may hold more than a small one, and what the peer refuses beyond
// its window goes again (SiteCore, kOutOfWindow on a control stream).
void derive_leader_crash(Rng& rng, SessionScenario* s) {
  if (s->failure_timeout <= 0 || !rng.chance(0.4)) return;
  Time end = 0;
  for (const SessionAction& a : s->actions) end = std::max(end, a.at);
  SessionCrash c;
  c.node = 0;
  c.at = rng.between(0, end);
  c.restart_after = rng.log_between(kMillisecond, 2 * s->failure_timeout);
  if (rng.chance(0.4))
    c.point =
        rng.chance(0.5) ? SessionCrash::Point::kBeforeCommit : SessionCrash::Point::kAfterCommit;
  s->crashes.push_back(c);
  std::stable_sort(s->crashes.begin(), s->crashes.end(),
                   [](const SessionCrash& a, const SessionCrash& b) { return a.at < b.at; });
  s->leader_durable = true;
  s->resume_timeout = c.restart_after + 4 * s->failure_timeout;
}

const char* crash_point_name(SessionCrash::Point p) {
  switch (p) {
    case SessionCrash::Point::kAtTime:
      return "";
    case SessionCrash::Point::kBeforeCommit:
      return " (then at its store's next commit, before it: the batch is lost)";
    case SessionCrash::Point::kAfterCommit:
      return " (then at its store's next commit, right after it: no answer leaves)";
  }
  return "?";
}

const char* action_name(SessionAction::Kind k) {
  switch (k) {
    case SessionAction::Kind::kTrigger:
      return "trigger";
    case SessionAction::Kind::kAppend:
      return "append";
    case SessionAction::Kind::kMove:
      return "move";
    case SessionAction::Kind::kLife:
      return "life";
  }
  return "?";
}

}  // namespace

std::size_t SessionScenario::moves() const {
  return static_cast<std::size_t>(std::count_if(actions.begin(), actions.end(), [](const auto& a) {
    return a.kind == SessionAction::Kind::kMove;
  }));
}

std::size_t SessionScenario::durables() const {
  return static_cast<std::size_t>(
      std::count_if(streams.begin(), streams.end(), [](const auto& p) { return p.durable; }));
}

std::size_t SessionScenario::senders() const {
  return static_cast<std::size_t>(
      std::count_if(streams.begin(), streams.end(), [](const auto& p) { return p.sender; }));
}

SessionScenario derive_session_scenario(std::uint64_t seed, const ScenarioOverrides& overrides) {
  SessionScenario s;
  s.seed = seed;
  // Not the transport scenario's draws: the two scenarios of a seed are independent.
  Rng rng(mix64(seed) ^ 0x3C6EF372FE94F82Bull);
  Rng config_rng = rng.fork();
  Rng net_rng = rng.fork();
  Rng work_rng = rng.fork();
  Rng lane_rng = rng.fork();  // forked after the above: their draws stay those of earlier versions
  Rng crash_rng = rng.fork();
  Rng durable_rng = rng.fork();
  Rng leader_rng = rng.fork();
  Rng security_rng = rng.fork();
  Rng ephemeral_rng = rng.fork();
  Rng ack_rng = rng.fork();

  s.transport = derive_session_transport(config_rng, overrides.small_buffers);
  draw_ack_timing(ack_rng, overrides.legacy_acks, &s.transport.path);
  static constexpr std::size_t kBudgets[] = {1, 4, 256};
  s.step_budget = config_rng.pick(kBudgets);
  s.step_gap = config_rng.chance(0.5) ? 0 : config_rng.log_between(kMicrosecond, 2 * kMillisecond);

  s.profile = draw_fault_profile(net_rng, overrides.faults);
  s.sites = static_cast<std::uint32_t>(net_rng.between(2, 5));
  s.hostile = overrides.hostile;
  s.network.sites = s.nodes();
  s.network.calm_start = net_rng.log_between(300 * kMillisecond, 3 * kSecond);
  derive_faults(net_rng, s.profile, &s.network);

  s.join_at.assign(s.nodes(), 0);
  for (std::uint32_t n = 1; n < s.nodes(); ++n)
    s.join_at[n] = work_rng.between(0, 20 * kMillisecond);
  derive_streams(work_rng, &s);
  derive_actions(work_rng, overrides, &s);
  std::stable_sort(s.actions.begin(), s.actions.end(),
                   [](const SessionAction& a, const SessionAction& b) { return a.at < b.at; });
  if (overrides.moves) {
    static constexpr double kOnAppend[] = {0, 0.02, 0.1, 0.3};
    static constexpr double kOnArrival[] = {0, 0.1, 0.5};
    s.relocate_on_append = work_rng.pick(kOnAppend);
    s.relocate_on_arrival = work_rng.pick(kOnArrival);
    s.max_self_relocations = static_cast<std::uint32_t>(work_rng.between(0, 40));
  }
  s.quiesce_delay =
      work_rng.chance(0.5) ? 0 : work_rng.log_between(kMillisecond, 500 * kMillisecond);
  static constexpr double kForward[] = {0, 0, 0.3, 0.6, 0.9};
  s.forward_chance = work_rng.pick(kForward);
  s.max_forwards = static_cast<std::uint32_t>(work_rng.between(0, 300));
  static constexpr std::size_t kLanes[] = {0, 1, 2, 3};
  static constexpr double kFinish[] = {1.0, 0.5, 0.1};
  static constexpr std::size_t kBatches[] = {1, 4, 16};
  s.handler_lanes = lane_rng.pick(kLanes);
  s.lane_finish_chance = lane_rng.pick(kFinish);
  s.delivery_batch = lane_rng.pick(kBatches);
  if (overrides.faults && overrides.crashes) derive_crashes(crash_rng, &s);
  derive_durable(durable_rng, &s);
  if (overrides.ephemerals) derive_ephemerals(ephemeral_rng, overrides.ephemeral_forwards, &s);
  if (overrides.faults && overrides.crashes) derive_leader_crash(leader_rng, &s);
  s.secured = security_rng.chance(0.5);
  return s;
}

std::uint32_t SessionScenario::setup_streams() const {
  return static_cast<std::uint32_t>(std::count_if(
      streams.begin(), streams.end(), [](const SessionStreamPlan& p) { return !p.ephemeral; }));
}

std::string describe(const SessionScenario& s) {
  const proto::TransportConfig& t = s.transport;
  std::string out;
  auto line = [&out](const std::string& l) { out += l + "\n"; };
  line("session seed " + std::to_string(s.seed) + " profile " + s.profile + " sites " +
       std::to_string(s.sites) + " (+ leader site 0, shell node " + std::to_string(s.shell_node()) +
       ") fault phase " + ms(s.calm_start()) + " liveness bound " + ms(s.liveness_bound));
  line("session transport: mtu=" + std::to_string(t.path.mtu) +
       " class=" + proto::retransmission_class_name(t.path.retransmission) +
       " max_unconsumed_messages=" + std::to_string(t.channel.max_unconsumed_messages) +
       " step_budget=" + std::to_string(s.step_budget) + " step_gap=" + ms(s.step_gap) +
       describe_ack_timing(t.path));
  line("session handlers: " +
       (s.handler_lanes == 0 ? std::string("inline")
                             : std::to_string(s.handler_lanes) + " deferred lanes, finish chance " +
                                   std::to_string(s.lane_finish_chance)) +
       " delivery_batch=" + std::to_string(s.delivery_batch));
  line(std::string("session security: ") + (s.secured ? "secured (sealed datagrams)" : "none"));
  if (s.hostile)
    line("session hostile member: node " + std::to_string(s.hostile_node()) +
         " (joins as a site and lies in its own name, and, secured, seals some in another's)");
  for (SiteId a = 0; a < s.nodes(); ++a)
    for (SiteId b = 0; b < s.nodes(); ++b)
      if (a != b)
        line("session link " + std::to_string(a) + "->" + std::to_string(b) + ": " +
             describe(s.network.link(a, b)));
  for (const FaultWindow& w : s.network.windows) line("session " + describe(w));
  std::string joins = "session joins:";
  for (std::uint32_t n = 1; n < s.nodes(); ++n)
    joins += " node " + std::to_string(n) + " at " + ms(s.join_at[n]);
  line(joins);
  for (const SessionStreamPlan& p : s.streams)
    line("session stream " + p.name + (p.sender ? " sender" : " receiver") +
         (p.durable ? " durable" : "") + (p.ephemeral ? " ephemeral" : "") + " created at node " +
         std::to_string(p.node) +
         (p.failure_manager ? " failure manager node " + std::to_string(*p.failure_manager)
                            : std::string()));
  for (const SessionCrash& c : s.crashes)
    line("session crash node " + std::to_string(c.node) + " at +" + ms(c.at) +
         (c.restart_after >= 0 ? ", restarts " + ms(c.restart_after) + " later"
                               : std::string(", for good")) +
         crash_point_name(c.point));
  if (s.failure_timeout > 0) line("session failure timeout " + ms(s.failure_timeout));
  if (s.leader_durable) line("session leader durable, resume timeout " + ms(s.resume_timeout));
  if (s.lying_store_every > 0)
    line("session stores drop every " + std::to_string(s.lying_store_every) +
         "th commit, saying it was stored");
  for (const SessionAction& a : s.actions) {
    std::string l = std::string("session ") + action_name(a.kind) + " " + s.streams[a.stream].name +
                    " at +" + ms(a.at);
    if (a.kind == SessionAction::Kind::kTrigger || a.kind == SessionAction::Kind::kLife)
      l += " count " + std::to_string(a.count);
    if (a.kind == SessionAction::Kind::kMove) l += " to node " + std::to_string(a.node);
    line(l);
  }
  line("session agents: relocate on append " + num(s.relocate_on_append) + ", on arrival " +
       num(s.relocate_on_arrival) + ", at most " + std::to_string(s.max_self_relocations) +
       "; receivers forward " + num(s.forward_chance) + ", at most " +
       std::to_string(s.max_forwards) + "; quiesce request " + ms(s.quiesce_delay) +
       " after the workload");
  return out;
}

}  // namespace mstream::sim
