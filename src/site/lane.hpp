#pragma once
// Lane: the agents of one worker thread at a site (DESIGN.md "Threads"): an AgentRunner (its Tcl
// interpreter and C++ agents) and the script API its handlers call. A stream's agents are
// pinned to one lane, so its handlers always run on the same thread and interpreter.
//
// Handlers run on the lane's thread while the site goes on serving the network, so what a
// handler does to the session is recorded, not done: appends, control requests and output
// become Effects that the site carries out, in order, on its own thread once the handler has
// returned (before the message counts as consumed). Queries read the site's directory replica
// under SiteView::mu. Errors a caller can see at once (no such stream, too large, a bad name)
// are found while recording, so a handler gets them as Tcl errors as before.
//
// Thread-safety: a Lane is used by its own lane's thread only (created on the site's thread
// before any work runs). SiteView is shared: see there.

#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "mstream/agent.hpp"
#include "site/agent_runner.hpp"
#include "site/directory.hpp"
#include "tcl/script_api.hpp"
#include "wire/control.hpp"

namespace mstream::site {

// What the lanes of a site share with it. The site's thread alone writes `directory`, holding
// `mu` exclusively; lanes read it holding `mu` shared. The rest is fixed, or atomic.
struct SiteView {
  std::uint32_t self = 0;
  std::size_t max_message_bytes = 0;
  // What a stream's handlers may have appended and not yet handed to the transport (waiting
  // for room in a full channel, SiteCore::overflow_), in bytes: beyond it stream_append fails.
  std::uint64_t max_held_bytes = 0;
  tcl::HandlerLimits handler_limits;                            // of sandboxed agents' runs
  std::unordered_map<std::uint64_t, std::uint64_t> held_bytes;  // per sending stream id
  Directory directory;
  mutable std::shared_mutex mu;
  std::atomic<std::uint64_t> next_req{1};  // control request numbers, for shell and handlers
};

struct AppendEffect {
  std::string to;
  std::string message;
};
struct RequestEffect {
  std::uint64_t req = 0;
  wire::ControlMessage message;
  // A move or destroy of the handler's own stream: nothing more is delivered to it until the
  // leader's order arrives (the atomic handler model, DESIGN.md guarantee 3).
  bool holds_own_stream = false;
};
struct OutputEffect {
  std::string text;
  bool nonewline = false;
};
using Effect = std::variant<AppendEffect, RequestEffect, OutputEffect>;

// One handler (or initialization) run: its context in, what it did out.
struct HandlerRun {
  tcl::HandlerContext ctx;
  std::vector<Effect> effects;
  std::uint64_t appended_bytes = 0;  // of the AppendEffects
  bool exit_agent = false;
  bool holds_own_stream = false;

  // Makes this the record of another run, keeping its buffers (a lane runs many in a row).
  void restart(std::string_view stream, std::string_view sender, std::uint64_t agent) {
    ctx.stream.assign(stream);
    ctx.sender.assign(sender);
    ctx.agent = agent;
    ctx.result_wanted = true;
    effects.clear();
    appended_bytes = 0;
    exit_agent = false;
    holds_own_stream = false;
  }
};

class Lane {
 public:
  // `view` must outlive the lane.
  explicit Lane(SiteView* view);
  ~Lane();
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;

  // Runs f(runner) with `run` as the handler being run: commands it calls see run->ctx and
  // record into run->effects.
  template <class F>
  auto with(HandlerRun* run, F&& f) {
    HandlerRun* saved = current_;
    current_ = run;
    struct Restore {
      Lane* lane;
      HandlerRun* saved;
      ~Restore() { lane->current_ = saved; }
    } restore{this, saved};
    return f(*runner_);
  }
  AgentRunner& runner() { return *runner_; }
  const AgentRunner& runner() const { return *runner_; }

 private:
  class Api;
  SiteView* view_;
  HandlerRun* current_ = nullptr;
  std::unique_ptr<Api> api_;
  std::unique_ptr<AgentRunner> runner_;
};

}  // namespace mstream::site
