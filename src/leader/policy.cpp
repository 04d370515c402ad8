// LeaderCore's policy: which controllers vet which events, and the checks in flight
// (COMMANDS.md, Policy). Beside leader_core.cpp.
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
// Policy (COMMANDS.md, Policy; seed 004 §2.2)

namespace {
const char* const kEventNames[] = {"open",     "create",  "destroy", "move",
                                   "register", "arrival", "new_peer"};
static_assert(std::size(kEventNames) == wire::kPolicyEventCount);
}  // namespace

std::uint64_t LeaderCore::site_events(SiteId site) const {
  auto it = controls_.find(site);
  return it == controls_.end() ? 0 : it->second.site_events;
}

void LeaderCore::count_hosted(SiteId from, SiteId to) {
  if (from != wire::kNoSite) {
    auto it = hosted_.find(from);
    if (it != hosted_.end() && --it->second == 0) hosted_.erase(it);
  }
  if (to != wire::kNoSite) ++hosted_[to];
}

// Whether `site` may take one more stream: those it hosts and those on their way there.
Status LeaderCore::check_room(SiteId site, StreamId stream) const {
  const std::size_t limit = options_.max_streams_per_site;
  if (limit == 0) return Status::ok_status();
  auto it = hosted_.find(site);
  std::size_t n = it == hosted_.end() ? 0 : it->second;
  for (const auto& [id, op] : in_flight_)
    if (id != stream && op.vetted && op.target == site &&
        (std::holds_alternative<wire::CreateReq>(op.request) ||
         std::holds_alternative<wire::MoveReq>(op.request)))
      ++n;
  if (n < limit) return Status::ok_status();
  return Status::error(Status::Code::kLimit, "site " + std::to_string(site) + " hosts " +
                                                 std::to_string(n) + " streams, its limit");
}

std::uint64_t LeaderCore::session_events() const {
  auto it = controls_.find(0);
  return it == controls_.end() ? 0 : it->second.session_events;
}

std::uint64_t LeaderCore::controller_of(StreamId id) const {
  auto st = state_.find(id);
  if (st == state_.end() || st->second.agents.empty()) return 0;
  auto a = agents_.find(st->second.agents.front());
  if (a == agents_.end() || !(a->second.code.flags & wire::kAgentController)) return 0;
  return a->first;
}

// Only a site has controllers to declare (its sender rule, kSite).
void LeaderCore::on_controls(SiteId from, const wire::Controls& c) {
  wire::Controls& mine = controls_[from];
  mine.site_events = c.site_events;
  // Only site 0 runs the session's controller.
  mine.session_events = from == 0 ? c.session_events : 0;
  touch_peer(from);
}

// Which controllers must allow `op`, in the order they are asked: the session's, the site's,
// the stream's, then (create, move) the arrival check of the target site. The session's and
// sites' controllers are asked only for the events they handle; a stream's controller is
// asked whenever there is one (it travels with the stream: its site answers at once when it
// has no handler). False: nothing to ask.
bool LeaderCore::plan_checks(Op& op) {
  op.checks.clear();
  op.checked = 0;
  const std::uint64_t session = session_events();
  auto add = [&](std::uint8_t level, wire::PolicyEvent e, SiteId site, std::uint64_t agent) {
    op.checks.push_back({level, static_cast<std::uint8_t>(e), site, agent});
  };
  auto levels = [&](wire::PolicyEvent e, SiteId site, bool stream_level) {
    if (session & wire::policy_bit(e)) add(wire::kPolicySession, e, 0, 0);
    if (site_events(site) & wire::policy_bit(e)) add(wire::kPolicySite, e, site, 0);
    if (stream_level)
      if (std::uint64_t c = controller_of(op.stream)) add(wire::kPolicyStream, e, site, c);
  };
  auto arrival = [&](SiteId target) {
    if (site_events(target) & wire::policy_bit(wire::kPolicyArrival))
      add(wire::kPolicySite, wire::kPolicyArrival, target, 0);
  };
  if (std::holds_alternative<wire::CreateReq>(op.request)) {
    levels(wire::kPolicyCreate, op.target, false);
    arrival(op.target);
    return !op.checks.empty();
  }
  auto rec = streams_.find(op.stream);
  if (rec == streams_.end()) return false;  // start() answers "no such stream"
  const SiteId here = rec->second.site;
  if (std::holds_alternative<wire::OpenReq>(op.request)) {
    levels(wire::kPolicyOpen, here, true);
  } else if (std::holds_alternative<wire::DestroyReq>(op.request)) {
    levels(wire::kPolicyDestroy, here, true);
  } else if (const auto* mv = std::get_if<wire::MoveReq>(&op.request)) {
    if (mv->site == here || !live_site(mv->site)) return false;  // start() answers
    levels(wire::kPolicyMove, here, true);
    arrival(mv->site);
  } else if (const auto* a = std::get_if<wire::AttachReq>(&op.request)) {
    // The controller itself, the stream's first agent, is vetted by the session and site.
    levels(wire::kPolicyRegister, here, !(a->flags & wire::kAgentController));
  }
  return !op.checks.empty();
}

std::vector<std::string> LeaderCore::policy_args(const Op& op, const PolicyStep& step) const {
  std::vector<std::string> a = {"event",     kEventNames[step.event],
                                "requester", std::to_string(op.requester),
                                "shell",     site::is_shell(op.requester) ? "1" : "0"};
  auto put = [&](const char* k, std::string v) {
    a.emplace_back(k);
    a.push_back(std::move(v));
  };
  if (const auto* c = std::get_if<wire::CreateReq>(&op.request)) {
    put("stream", c->name);
    put("site", std::to_string(op.target));
    if (step.event == wire::kPolicyArrival) put("from", "");
    return a;
  }
  auto rec = streams_.find(op.stream);
  if (rec == streams_.end()) return a;
  put("stream", rec->second.name);
  put("site", std::to_string(rec->second.site));
  if (const auto* mv = std::get_if<wire::MoveReq>(&op.request)) {
    put("from", std::to_string(rec->second.site));
    put("to", std::to_string(mv->site));
  } else if (const auto* at = std::get_if<wire::AttachReq>(&op.request)) {
    put("args", at->args);
    put("code", at->body);
    put("type", at->cpp_type);
    put("controller", (at->flags & wire::kAgentController) ? "1" : "0");
  }
  return a;
}

// Sends op's next check. If its controller's site is gone, the op ends here (asking stays
// kNoSite): the caller must not keep it.
void LeaderCore::ask(Op& op) {
  const PolicyStep& step = op.checks[op.checked];
  if (!live_site(step.site)) {
    checks_.erase(op.check);
    finish(op.stream, op, code_of(Status::Code::kUnavailable),
           "site " + std::to_string(step.site) + " is not in the session: its controller cannot " +
               "check the " + kEventNames[step.event]);
    if (const auto* c = std::get_if<wire::CreateReq>(&op.request)) reserved_names_.erase(c->name);
    op.asking = wire::kNoSite;
    next_op(op.stream);
    return;
  }
  checks_.erase(op.check);
  op.check = (std::uint64_t{boot_} << 40) | ++next_check_;
  op.asking = step.site;
  checks_[op.check] = op.stream;
  send(step.site, wire::PolicyCheck{op.check, step.level, step.event, op.stream, step.agent,
                                    policy_args(op, step)});
}

void LeaderCore::on_verdict(const wire::PolicyVerdict& v, Time now) {
  (void)now;
  // From the site asked (site 0 for a new peer's check): sender_allowed.
  if (auto pc = peer_checks_.find(v.check); pc != peer_checks_.end()) {
    const SiteId peer = pc->second;
    peer_checks_.erase(pc);
    auto p = peers_.find(peer);
    if (p == peers_.end() || !p->second.live) return;
    if (v.code == kOk) {
      welcome(peer);
      return;
    }
    const std::string why = "the session controller refused " +
                            std::string(p->second.shell ? "shell " : "site ") +
                            std::to_string(peer) + ": " + v.text;
    log_.push_back("leader: " + why);
    send(peer, wire::Shutdown{v.code, why});
    p->second.live = 0;  // fenced: nobody else ever heard of it
    touch_peer(peer);
    return;
  }
  auto c = checks_.find(v.check);
  if (c == checks_.end()) return;
  const StreamId id = c->second;
  auto fit = in_flight_.find(id);
  if (fit == in_flight_.end() || fit->second.check != v.check) return;  // stale
  checks_.erase(c);
  Op op = std::move(fit->second);
  in_flight_.erase(fit);
  touch(id);
  const PolicyStep step = op.checks[op.checked];
  op.asking = wire::kNoSite;
  op.check = 0;
  if (v.code != kOk) {
    static const char* const kWho[] = {"the session controller", "the controller of site ",
                                       "the stream's controller"};
    std::string who = kWho[step.level < wire::kPolicyLevelCount ? step.level : 0];
    if (step.level == wire::kPolicySite) who += std::to_string(step.site);
    if (const auto* cr = std::get_if<wire::CreateReq>(&op.request)) reserved_names_.erase(cr->name);
    finish(id, op, v.code,
           std::string(kEventNames[step.event]) + " denied by " + who + ": " + v.text);
    next_op(id);
    return;
  }
  if (++op.checked < op.checks.size()) {
    ask(op);
    if (op.asking != wire::kNoSite) in_flight_[id] = std::move(op);
    return;
  }
  op.vetted = true;
  start(std::move(op));
}

// After a restart: the checks the old process awaited are asked again (their verdicts, if
// any come, carry the old process's check numbers and are dropped).
void LeaderCore::retry_checks() {
  std::vector<StreamId> ids;
  for (const auto& [id, op] : in_flight_)
    if (!op.vetted) ids.push_back(id);
  for (StreamId id : ids) {
    Op op = std::move(in_flight_[id]);
    in_flight_.erase(id);
    start(std::move(op));
  }
}

}  // namespace mstream::leader
