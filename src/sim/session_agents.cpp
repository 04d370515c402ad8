// The simulator's C++ agent types. They keep their state in briefcases (so it travels with
// every move, and the checker can tell when it does not) and leave every decision to the run
// on this thread (SessionDriver::current()), so that a run stays a function of its seed.
// Outside a simulated run they consume messages and do nothing.
#include <mutex>

#include "sim/session_driver.hpp"

namespace mstream::sim::detail {
namespace {

class SimAgent final : public Agent {
 public:
  explicit SimAgent(bool sender) : sender_(sender) {}

  Status on_append(AgentContext& context, std::string_view message, std::string*) override {
    SessionDriver* run = SessionDriver::current();
    if (!run) return Status::ok_status();
    ++state_.handled;
    if (const std::optional<SessionMessage> m = parse_session_message(message)) {
      state_.hash += session_gid_hash(m->gid);
      state_.consumed.push_back(m->gid);
    }
    if (sender_) {
      run->on_sender_append(context, message, state_.handled, state_.hash, &state_.sent);
    } else {
      run->on_receiver_append(context, message, state_.handled, state_.hash, &state_.sent);
    }
    return Status::ok_status();
  }

  Status on_relocation(AgentContext& context) override {
    if (SessionDriver* run = SessionDriver::current()) run->on_agent_relocated(context);
    return Status::ok_status();
  }

  Status on_failure(AgentContext& context) override {
    if (SessionDriver* run = SessionDriver::current()) run->on_agent_failed(context);
    return Status::ok_status();
  }

  std::string save_briefcase() const override { return session_briefcase(state_); }

  Status restore_briefcase(std::string_view saved) override {
    std::optional<SessionBriefcase> b = parse_session_briefcase(saved);
    if (!b) return Status::error(Status::Code::kInvalidArgument, "not a sim agent briefcase");
    state_ = std::move(*b);
    return Status::ok_status();
  }

 private:
  bool sender_;
  SessionBriefcase state_;
};

}  // namespace

void register_session_agents() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (const bool sender : {false, true}) {
      // Already registered by someone else: theirs stays (a test may register its own).
      (void)register_agent_type(sender ? "sim.sender" : "sim.receiver",
                                [sender](std::string_view) -> Result<std::unique_ptr<Agent>> {
                                  return std::unique_ptr<Agent>(std::make_unique<SimAgent>(sender));
                                });
    }
  });
}

}  // namespace mstream::sim::detail
