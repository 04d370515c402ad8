#include "site/lane.hpp"

#include <mutex>

namespace mstream::site {
// The script commands (and C++ AgentContext) of the handlers of one lane: control on the
// handler's own stream is deferred to the handler's return; everything else is recorded for
// the site to send without waiting; queries read the replica.
class Lane::Api final : public tcl::ScriptApi, public AgentContext {
 public:
  explicit Api(Lane* lane) : lane_(lane), view_(*lane->view_) {}

  // ---- tcl::ScriptApi
  const tcl::HandlerContext* context() const override {
    return lane_->current_ ? &lane_->current_->ctx : nullptr;
  }

  Result<std::string> stream_create(const std::string& name,
                                    const tcl::CreateOptions& options) override {
    if (name.empty() || name.size() > wire::kMaxNameBytes)
      return Status::error(Status::Code::kInvalidArgument, "bad stream name \"" + name + "\"");
    if (Status s = Directory::check_user_stream(name); !s.ok()) return s;
    {
      std::shared_lock lock(view_.mu);
      if (view_.directory.find(name))
        return Status::error(Status::Code::kAlreadyExists, "stream \"" + name + "\" exists");
    }
    wire::CreateReq r;
    r.name = name;
    r.site = options.site.value_or(view_.self);
    r.failure_manager = options.failure_manager.value_or(wire::kNoSite);
    r.flags = (options.temp ? wire::kStreamTemp : 0) | (options.durable ? wire::kStreamDurable : 0);
    (void)request(std::move(r), false);
    return name;
  }

  Status stream_open(const std::string& name) override {
    if (Status s = Directory::check_user_stream(name); !s.ok()) return s;
    std::shared_lock lock(view_.mu);
    if (!view_.directory.find(name)) return Directory::no_such_stream(name);
    // The controllers' check cannot be waited for here: a denial comes as this handler's
    // error report, as for its other requests.
    (void)request(wire::OpenReq{0, name}, false);
    return Status::ok_status();
  }

  Result<tcl::AppendAnswer> stream_append(const std::string& name, std::string message,
                                          bool sync) override {
    if (sync)
      return Status::error(Status::Code::kInvalidArgument,
                           "stream_append -sync is not available in a handler: waiting there "
                           "would stall every stream of the site");
    if (!lane_->current_)
      return Status::error(Status::Code::kInvalidArgument, "stream_append: not in a handler");
    if (Status s = Directory::check_user_stream(name); !s.ok()) return s;
    HandlerRun& run = *lane_->current_;
    {
      std::shared_lock lock(view_.mu);
      if (!view_.directory.find(name)) return Directory::no_such_stream(name);
      // Refused now, while the handler can hear it, rather than accepted and dropped later.
      std::uint64_t held = run.appended_bytes + message.size();
      // Most of the time nothing waits for room: no lookup of the stream on every append.
      if (!view_.held_bytes.empty())
        if (const wire::StreamRecord* self = view_.directory.find(run.ctx.stream)) {
          auto it = view_.held_bytes.find(self->id);
          if (it != view_.held_bytes.end()) held += it->second;
        }
      if (view_.max_held_bytes > 0 && held > view_.max_held_bytes)
        return Status::error(
            Status::Code::kWouldBlock,
            "stream_append: stream \"" + run.ctx.stream + "\" would hold " + std::to_string(held) +
                " bytes of messages not yet sent, over its limit of " +
                std::to_string(view_.max_held_bytes) + " (its receivers consume too slowly)");
    }
    if (message.size() > view_.max_message_bytes)
      return Status::error(Status::Code::kTooLarge,
                           "message of " + std::to_string(message.size()) + " bytes exceeds the " +
                               std::to_string(view_.max_message_bytes) + "-byte limit");
    run.appended_bytes += message.size();
    run.effects.push_back(AppendEffect{name, std::move(message)});
    return tcl::AppendAnswer{};
  }

  Result<tcl::MoveAnswer> stream_move(const std::string& name, tcl::SiteNumber site) override {
    if (Status s = Directory::check_user_stream(name); !s.ok()) return s;
    bool own = false;
    {
      std::shared_lock lock(view_.mu);
      if (!view_.directory.find(name)) return Directory::no_such_stream(name);
      const wire::PeerRecord* p = view_.directory.peer(site);
      if (!p || !p->live || p->shell)
        return Status::error(Status::Code::kNotFound, "no such site " + std::to_string(site));
    }
    own = lane_->current_ && name == lane_->current_->ctx.stream;
    if (own && site == view_.self) return tcl::MoveAnswer{site, {}};
    (void)request(wire::MoveReq{0, name, site}, own);
    return tcl::MoveAnswer{site, {}};
  }

  Result<tcl::SiteNumber> stream_location(const std::string& name) override {
    const HandlerRun* run = lane_->current_;
    const std::string& n = name.empty() && run ? run->ctx.stream : name;
    if (run && n == run->ctx.stream) return view_.self;
    std::shared_lock lock(view_.mu);
    return view_.directory.location_of(n);
  }

  Status stream_destroy(const std::string& name) override {
    if (Status s = Directory::check_user_stream(name); !s.ok()) return s;
    {
      std::shared_lock lock(view_.mu);
      if (!view_.directory.find(name)) return Directory::no_such_stream(name);
    }
    const bool own = lane_->current_ && name == lane_->current_->ctx.stream;
    (void)request(wire::DestroyReq{0, name}, own);
    return Status::ok_status();
  }

  bool stream_exists(const std::string& name) override {
    std::shared_lock lock(view_.mu);
    return view_.directory.exists(name);
  }

  std::vector<tcl::StreamInfo> list_streams() override {
    std::shared_lock lock(view_.mu);
    return view_.directory.stream_list();
  }

  Result<tcl::SiteNumber> stream_creator(const std::string& name) override {
    std::shared_lock lock(view_.mu);
    return view_.directory.creator_of(name);
  }

  Result<std::string> register_agent(const std::string& stream, const std::string& args,
                                     const std::string& body, const std::string& cpp_type,
                                     bool controller) override {
    if (Status s = Directory::check_user_stream(stream); !s.ok()) return s;
    {
      std::shared_lock lock(view_.mu);
      if (!view_.directory.find(stream)) return Directory::no_such_stream(stream);
    }
    if (!cpp_type.empty() && !find_agent_type(cpp_type))
      return Status::error(Status::Code::kNotFound, "no such agent type \"" + cpp_type + "\"");
    const std::uint64_t req = request(
        wire::AttachReq{0, stream, args, body, cpp_type, controller ? wire::kAgentController : 0},
        false);
    // The id is the leader's to give; a handler gets the request's number to log.
    return "pending:" + std::to_string(req);
  }

  Status agent_exit() override {
    if (!lane_->current_)
      return Status::error(Status::Code::kInvalidArgument, "agent_exit: not in a handler");
    lane_->current_->exit_agent = true;
    return Status::ok_status();
  }

  tcl::SiteNumber my_id() override { return view_.self; }

  std::vector<tcl::SiteNumber> site_list() override {
    std::shared_lock lock(view_.mu);
    return view_.directory.live_sites();
  }

  std::vector<tcl::PeerInfo> peer_map() override {
    std::shared_lock lock(view_.mu);
    return view_.directory.peer_list();
  }

  void write_stdout(std::string_view text, bool nonewline) override {
    // Output outside a handler run (there is none at a site) has nowhere to go.
    if (lane_->current_)
      lane_->current_->effects.push_back(OutputEffect{std::string(text), nonewline});
  }

  // ---- AgentContext, for C++ agents.
  std::string_view stream_name() const override {
    return lane_->current_ ? std::string_view(lane_->current_->ctx.stream) : std::string_view();
  }
  std::string_view sender_name() const override {
    return lane_->current_ ? std::string_view(lane_->current_->ctx.sender) : std::string_view();
  }
  std::uint32_t site_id() const override { return view_.self; }
  Status append(std::string_view stream, std::string_view message) override {
    auto r = stream_append(std::string(stream), std::string(message), false);
    return r.ok() ? Status::ok_status() : r.status();
  }
  Status relocate(std::uint32_t site) override {
    if (!lane_->current_) return Status::error(Status::Code::kInvalidArgument, "not in a handler");
    auto r = stream_move(lane_->current_->ctx.stream, site);
    return r.ok() ? Status::ok_status() : r.status();
  }
  void print(std::string_view text) override { write_stdout(text, false); }

 private:
  std::uint64_t request(wire::ControlMessage m, bool own) {
    const std::uint64_t req = view_.next_req.fetch_add(1, std::memory_order_relaxed);
    if (lane_->current_) {
      lane_->current_->effects.push_back(RequestEffect{req, std::move(m), own});
      if (own) lane_->current_->holds_own_stream = true;
    }
    return req;
  }

  Lane* lane_;
  SiteView& view_;
};

Lane::Lane(SiteView* view) : view_(view) {
  api_ = std::make_unique<Api>(this);
  runner_ = std::make_unique<AgentRunner>(api_.get(), api_.get());
  runner_->set_limits(view->handler_limits);
}

Lane::~Lane() = default;

}  // namespace mstream::site
