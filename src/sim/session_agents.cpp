// The simulator's C++ agent types. They keep their state in briefcases (so it travels with
// every move, and the checker can tell when it does not) and leave every decision to the run
// on this thread (SessionDriver::current()), so that a run stays a function of its seed.
// Outside a simulated run they consume messages and do nothing.
#include <charconv>
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
    if (sender_) {
      run->on_sender_append(context, message, &sent_);
    } else {
      run->on_receiver_append(context, message, ++handled_, &sent_);
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

  // "HANDLED\n" (the append handler runs), then "STREAM=COUNT\n" per stream it appended to
  // (the number of its last message there).
  std::string save_briefcase() const override {
    std::string s = std::to_string(handled_) + "\n";
    for (const auto& [to, count] : sent_) s += to + "=" + std::to_string(count) + "\n";
    return s;
  }

  Status restore_briefcase(std::string_view saved) override {
    const Status bad = Status::error(Status::Code::kInvalidArgument, "not a sim agent briefcase");
    std::size_t eol = saved.find('\n');
    std::uint64_t handled = 0;
    if (eol == std::string_view::npos || !number(saved.substr(0, eol), &handled)) return bad;
    saved.remove_prefix(eol + 1);
    std::map<std::string, std::uint64_t> sent;
    while (!saved.empty()) {
      eol = saved.find('\n');
      const std::size_t eq = saved.rfind('=', eol);
      if (eol == std::string_view::npos || eq == std::string_view::npos) return bad;
      if (!number(saved.substr(eq + 1, eol - eq - 1), &sent[std::string(saved.substr(0, eq))]))
        return bad;
      saved.remove_prefix(eol + 1);
    }
    handled_ = handled;
    sent_ = std::move(sent);
    return Status::ok_status();
  }

 private:
  static bool number(std::string_view s, std::uint64_t* out) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && end == s.data() + s.size() && !s.empty();
  }

  bool sender_;
  std::uint64_t handled_ = 0;
  std::map<std::string, std::uint64_t> sent_;
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
