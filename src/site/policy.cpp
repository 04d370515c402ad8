// SiteCore's policy controllers (COMMANDS.md, Policy): loading them, telling the leader which
// events they handle, and running their checks. Beside site_core.cpp.
#include "site/site_core.hpp"

#include <algorithm>
#include <limits>
#include <map>

#include "site/handler_errors.hpp"
#include "site/loading.hpp"

namespace mstream::site {

// ---------------------------------------------------------------------------------------
// Policy (COMMANDS.md, Policy)

namespace {
static_assert(static_cast<int>(tcl::Event::kNewPeer) - static_cast<int>(tcl::Event::kOpen) + 1 ==
              wire::kPolicyEventCount);
tcl::Event tcl_event(std::uint8_t e) {
  return static_cast<tcl::Event>(static_cast<int>(tcl::Event::kOpen) + e);
}

// The policy events each controller here has a handler for, as the lane's runner says.
wire::Controls controls_of(AgentRunner& runner) {
  wire::Controls c;
  for (std::uint8_t e = 0; e < wire::kPolicyEventCount; ++e) {
    const std::uint64_t bit = wire::policy_bit(static_cast<wire::PolicyEvent>(e));
    if (runner.has_handler(kSessionControllerAgent, tcl_event(e))) c.session_events |= bit;
    if (runner.has_handler(kSiteControllerAgent, tcl_event(e))) c.site_events |= bit;
  }
  return c;
}

constexpr std::uint64_t kAllEvents = (1ull << wire::kPolicyEventCount) - 1;
}  // namespace

bool SiteCore::controls_told() const {
  if (options_.shell ||
      (options_.controller.empty() && (options_.self != 0 || options_.session_controller.empty())))
    return true;
  if (!controls_sent_) return false;
  const proto::SendChannel* ch =
      transport_.send_channel({control_stream(options_.self), kLeaderStream});
  return ch == nullptr || ch->unconsumed_count() == 0;
}

bool SiteCore::is_controller(std::uint64_t agent) const {
  auto it = code_.find(agent);
  return it != code_.end() && (it->second.flags & wire::kAgentController);
}

void SiteCore::submit_lane(std::size_t lane, std::function<void(Lane&)> work,
                           std::function<void()> done) {
  ++work_in_flight_;
  ++counters_.worker_jobs;
  Lane* l = lanes_[lane].get();
  executor_->submit(
      lane, [l, work = std::move(work)] { work(*l); },
      [this, done = std::move(done)] {
        --work_in_flight_;
        done();
      });
}

void SiteCore::send_controls(const wire::Controls& c) {
  if (controls_sent_ && controls_sent_->session_events == c.session_events &&
      controls_sent_->site_events == c.site_events)
    return;
  controls_sent_ = c;
  send_control(0, kLeaderStream, c);
}

// Each controller is loaded on every lane (the commands it exposes must be in every lane's
// sandbox); the first lane's copy is the one whose policy handlers run. A controller that
// fails to load is reported, and the site then denies every event it would have vetted:
// a broken policy fails closed.
void SiteCore::load_controllers() {
  controllers_loaded_ = true;
  struct Controller {
    std::uint64_t agent;
    const std::string* code;
    const char* what;
  };
  std::vector<Controller> list;
  if (options_.self == 0 && !options_.session_controller.empty())
    list.push_back({kSessionControllerAgent, &options_.session_controller, "session controller"});
  if (!options_.controller.empty())
    list.push_back({kSiteControllerAgent, &options_.controller, "site controller"});
  if (list.empty()) return;
  // Until the first lane has loaded them, the leader asks about every event: they answer
  // once loaded (the lane runs its work in order), and nothing slips past meanwhile.
  wire::Controls provisional;
  for (const Controller& c : list)
    (c.agent == kSessionControllerAgent ? provisional.session_events : provisional.site_events) =
        kAllEvents;
  send_controls(provisional);
  struct Load {
    std::vector<Loading> loads;
    wire::Controls controls;
  };
  for (std::size_t lane = 0; lane < lanes_.size(); ++lane) {
    auto l = std::make_shared<Load>();
    for (const Controller& c : list) {
      Loading& one = l->loads.emplace_back();
      one.agent = c.agent;
      one.code = wire::Code{
          c.agent, 0, {}, *c.code, {}, wire::kAgentController | wire::kAgentTrusted, options_.self};
      one.run.ctx = tcl::HandlerContext{{}, {}, c.agent};
    }
    submit_lane(
        lane,
        [l](Lane& ln) {
          for (Loading& one : l->loads) load_on(ln, one);
          l->controls = controls_of(ln.runner());
        },
        [this, l, lane, list] {
          for (std::size_t i = 0; i < l->loads.size(); ++i) {
            Loading& one = l->loads[i];
            carry_out(nullptr, 0, one.run);
            if (lane != 0) continue;
            if (!one.status.ok()) {
              broken_controllers_[one.agent] = error_text(one.status.message(), one.error_info);
              report_error("site " + std::to_string(options_.self) + ": the " + list[i].what +
                           " failed to load; every event it would check is denied: " +
                           broken_controllers_[one.agent]);
              (one.agent == kSessionControllerAgent ? l->controls.session_events
                                                    : l->controls.site_events) = kAllEvents;
            }
          }
          if (lane == 0) send_controls(l->controls);
        });
  }
}

void SiteCore::on_policy_check(const wire::PolicyCheck& m) {
  auto answer = [&](Status::Code code, std::string text) {
    send_control(0, kLeaderStream,
                 wire::PolicyVerdict{m.check, static_cast<std::uint64_t>(code), std::move(text)});
  };
  if (m.event >= wire::kPolicyEventCount || m.level >= wire::kPolicyLevelCount)
    return answer(Status::Code::kMalformed, "unknown policy check");
  if (m.level == wire::kPolicyStream) {
    auto it = hosted_.find(m.stream);
    if (it == hosted_.end() || std::find(it->second->agents.begin(), it->second->agents.end(),
                                         m.agent) == it->second->agents.end())
      return answer(Status::Code::kNotFound,
                    "the stream's controller is not at site " + std::to_string(options_.self));
    // Between two of the stream's handlers, on its lane (the atomic handler model).
    queue_op(*it->second, PendingOp{PendingOp::Kind::kPolicy, {}, m.agent, m});
    return;
  }
  const bool session = m.level == wire::kPolicySession;
  const std::uint64_t agent = session ? kSessionControllerAgent : kSiteControllerAgent;
  if (auto broken = broken_controllers_.find(agent); broken != broken_controllers_.end())
    return answer(Status::Code::kUnavailable, "site " + std::to_string(options_.self) + "'s " +
                                                  (session ? "session" : "site") +
                                                  " controller failed to load: " + broken->second);
  const std::string& code = session ? options_.session_controller : options_.controller;
  if (code.empty() || (session && options_.self != 0))
    return answer(Status::Code::kOk, {});  // no such controller here: nothing to check
  run_policy(0, agent, m);
}

// Runs a controller's policy handler: a stream's (stream != 0), on the stream's lane, or the
// session's or site's, on the first lane. The verdict: `allow`, or why not.
void SiteCore::run_policy(StreamId stream, std::uint64_t agent, const wire::PolicyCheck& m) {
  struct Run {
    HandlerRun run;
    tcl::HandlerOutcome out;
    wire::Controls controls;
  };
  auto r = std::make_shared<Run>();
  const bool own = stream == 0;
  if (!own) r->run.ctx.stream = hosted_.at(stream)->rec.name;
  r->run.ctx.agent = agent;
  const tcl::Event event = tcl_event(m.event);
  auto work = [r, agent, event, own, argv = tcl::merge_list(m.args)](Lane& lane) {
    r->out = lane.with(
        &r->run, [&](AgentRunner& runner) { return runner.run(agent, event, r->run.ctx, argv); });
    if (own) r->controls = controls_of(lane.runner());
  };
  auto done = [this, r, stream, own, check = m.check] {
    auto it = own ? hosted_.end() : hosted_.find(stream);
    carry_out(it == hosted_.end() ? nullptr : it->second.get(), stream, r->run);
    wire::PolicyVerdict v{check, 0, {}};
    if (r->out.ran && !r->out.ok) {
      v.code = static_cast<std::uint64_t>(Status::Code::kPermissionDenied);
      v.text = r->out.result;
    } else if (r->out.ran && r->out.result != "allow") {
      v.code = static_cast<std::uint64_t>(Status::Code::kPermissionDenied);
      v.text = "the policy handler returned \"" + r->out.result +
               "\" (a policy handler returns allow, or raises an error to deny)";
    }
    send_control(0, kLeaderStream, v);
    if (own) send_controls(r->controls);
  };
  if (own)
    submit_lane(0, std::move(work), std::move(done));
  else
    submit(stream, std::move(work), std::move(done));
}

}  // namespace mstream::site
