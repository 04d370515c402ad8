#include "site/site_core.hpp"

#include "tcl/tcl_host.hpp"

#include <algorithm>
#include <cstring>

namespace mstream::site {
namespace {

Status not_found_stream(const std::string& name) {
  return Status::error(Status::Code::kNotFound, "no such stream \"" + name + "\"");
}

wire::Bytes encode(const wire::ControlMessage& m) {
  wire::Bytes b;
  encode_control(m, &b);
  return b;
}

// How long a sender waits before re-sending to a site that refused a stream it believes is
// there (the stream is still being installed, or our replica is a step behind).
constexpr Time kRejectRetry = 20 * proto::kMillisecond;

}  // namespace

// The AgentContext of C++ agents: the same operations as the Tcl commands, for the handler
// that is running.
class SiteCore::CppContext final : public AgentContext {
 public:
  explicit CppContext(SiteCore* core) : core_(core) {}
  std::string_view stream_name() const override {
    return core_->current_ ? std::string_view(core_->current_->ctx.stream) : std::string_view();
  }
  std::string_view sender_name() const override {
    return core_->current_ ? std::string_view(core_->current_->ctx.sender) : std::string_view();
  }
  std::uint32_t site_id() const override { return core_->options_.self; }
  Status append(std::string_view stream, std::string_view message) override {
    auto r = core_->stream_append(std::string(stream), std::string(message), false);
    return r.ok() ? Status::ok_status() : r.status();
  }
  Status relocate(std::uint32_t site) override {
    if (!core_->current_) return Status::error(Status::Code::kInvalidArgument, "not in a handler");
    auto r = core_->stream_move(core_->current_->ctx.stream, site);
    return r.ok() ? Status::ok_status() : r.status();
  }
  void print(std::string_view text) override { core_->write_stdout(text, false); }

 private:
  SiteCore* core_;
};

SiteCore::SiteCore(SiteOptions options)
    : options_(std::move(options)), transport_(options_.self, options_.transport) {
  cpp_context_ = std::make_unique<CppContext>(this);
  runner_ = std::make_unique<AgentRunner>(this, cpp_context_.get());
  (void)transport_.open_stream(control_stream(options_.self));
  transport_.admit_site(0);
  transport_.admit_site(options_.self);
}

SiteCore::~SiteCore() = default;

// ---------------------------------------------------------------------------------------
// Network and time

void SiteCore::on_datagram(wire::ByteView bytes, Time now) {
  now_ = now;
  last_source_ = proto::kNoSource;
  if (transport_.on_datagram(bytes, now).ok()) last_source_ = transport_.last_source();
}

Time SiteCore::next_timeout() const {
  Time t = transport_.next_timeout();
  if (!retry_at_.empty()) {
    for (const auto& [stream, at] : retry_at_) t = std::min(t, at);
  }
  return t;
}

void SiteCore::on_timeout(Time now) {
  now_ = now;
  transport_.on_timeout(now);
  for (auto it = retry_at_.begin(); it != retry_at_.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    StreamId to = it->first;
    it = retry_at_.erase(it);
    const wire::StreamRecord* rec = directory_.find(to);
    if (rec) {
      transport_.relocate_receiver(to, rec->site);
    } else if (!directory_.destroyed(to)) {
      retry_at_[to] = now + kRejectRetry;  // our replica has not heard of it yet
    }
  }
}

bool SiteCore::poll_transmit(Time now, proto::OutDatagram* out) {
  return transport_.poll_transmit(now, out);
}

std::optional<std::string> SiteCore::peer_address(SiteId site) const {
  const wire::PeerRecord* p = directory_.peer(site);
  if (!p || p->address.empty()) return std::nullopt;
  return p->address;
}

bool SiteCore::has_work() const { return !ready_.empty(); }

bool SiteCore::idle() const {
  if (!ready_.empty() || !parked_.empty()) return false;
  for (const auto& [id, h] : hosted_)
    if (!h->inbox.empty() || !h->ops.empty()) return false;
  for (const auto& [key, q] : overflow_)
    if (!q.empty()) return false;
  return true;
}

void SiteCore::step(Time now) {
  now_ = now;
  proto::Delivery d;
  while (transport_.poll_delivery(&d)) route(d);
  proto::Released r;
  while (transport_.poll_released(&r)) {
    if (!is_control(r.key.to)) flush_overflow(r.key);
  }
  proto::Rejected j;
  while (transport_.poll_rejected(&j)) {
    if (is_control(j.key.to)) continue;  // control streams never move
    const wire::StreamRecord* rec = directory_.find(j.key.to);
    if (directory_.destroyed(j.key.to)) {
      drop_channels_to(j.key.to);
    } else if (!rec) {
      if (!retry_at_.contains(j.key.to)) retry_at_[j.key.to] = now + kRejectRetry;
    } else if (rec->site != j.site) {
      // Every in-flight message to the old site comes back refused; the channel is re-sent
      // once, when it is not already headed where the directory says.
      const proto::SendChannel* ch = transport_.send_channel(j.key);
      if (ch && ch->dest != rec->site) transport_.relocate_receiver(j.key.to, rec->site);
    } else if (!retry_at_.contains(j.key.to)) {
      retry_at_[j.key.to] = now + kRejectRetry;
    }
  }
  run_ready();
}

// ---------------------------------------------------------------------------------------
// Deliveries

void SiteCore::route(proto::Delivery& d) {
  const StreamId to = d.key.to;
  if (to == kLeaderStream) {
    if (leader_inbox_) leader_inbox_(d.key.from, d.payload);
    (void)transport_.consume(d.key, d.seq, now_);
    return;
  }
  if (to == control_stream(options_.self)) {
    Result<wire::ControlMessage> m = wire::decode_control(d.payload);
    (void)transport_.consume(d.key, d.seq, now_);
    if (!m.ok()) {
      report_error("site " + std::to_string(options_.self) +
                   ": dropped a malformed control message: " + m.status().message());
      return;
    }
    if (!is_control(d.key.from)) return;  // only control streams may send control
    on_control(control_site(d.key.from), m.value());
    return;
  }
  auto it = hosted_.find(to);
  if (it == hosted_.end()) return;  // left meanwhile: unconsumed, so its sender re-sends it
  Hosted& h = *it->second;
  h.in_peers.insert(d.key.from);
  h.inbox.push_back(std::move(d));
  mark_ready(h);
}

void SiteCore::mark_ready(Hosted& h) {
  if (h.ready) return;
  h.ready = true;
  ready_.push_back(h.rec.id);
}

void SiteCore::run_ready() {
  std::size_t budget = options_.step_budget;
  while (budget > 0 && !ready_.empty()) {
    StreamId id = ready_.front();
    ready_.pop_front();
    auto it = hosted_.find(id);
    if (it == hosted_.end()) continue;
    Hosted& h = *it->second;
    h.ready = false;
    // Control first: a move, attach or destroy requested during the last handler takes effect
    // at this boundary, before the next delivery (DESIGN.md guarantee 3).
    if (!h.ops.empty()) {
      PendingOp op = std::move(h.ops.front());
      h.ops.pop_front();
      apply_op(h, std::move(op));  // may destroy h
    } else if (!h.inbox.empty() && h.held_by == 0) {
      deliver_one(h);
    }
    --budget;
    it = hosted_.find(id);
    if (it != hosted_.end() &&
        (!it->second->ops.empty() || (!it->second->inbox.empty() && it->second->held_by == 0)))
      mark_ready(*it->second);
  }
}

void SiteCore::deliver_one(Hosted& h) {
  proto::Delivery d = std::move(h.inbox.front());
  h.inbox.pop_front();
  if (d.payload.empty()) {  // no envelope: not from an mstream sender; consumed, not run
    (void)transport_.consume(d.key, d.seq, now_);
    count_consumed(d.key.from, 1);
    return;
  }
  const bool sync = (d.payload[0] & kMessageSync) != 0;
  std::string_view message(reinterpret_cast<const char*>(d.payload.data()) + 1,
                           d.payload.size() - 1);
  if (trace_)
    trace_({HandlerTrace::Kind::kAppend, h.rec.id, d.key.from, d.seq, h.rec.epoch, message});
  std::vector<std::string> results;  // one per agent that has an append handler
  const std::string sender = sender_name(d.key.from);
  const std::vector<std::uint64_t> agents = h.agents;  // a handler may detach one
  for (std::uint64_t agent : agents) {
    tcl::HandlerOutcome out = run_handler(h, agent, tcl::Event::kAppend, sender, message);
    if (!out.ran) continue;
    if (!out.ok) report_handler_error(h, agent, "append", out);
    if (sync) results.push_back(std::move(out.result));
  }
  // Consumed: every append handler returned (DESIGN.md guarantee 2).
  (void)transport_.consume(d.key, d.seq, now_);
  count_consumed(d.key.from, 1);
  if (sync && is_control(d.key.from)) {
    send_control(control_site(d.key.from), d.key.from,
                 wire::SyncResult{h.rec.id, d.seq, tcl::merge_list(results)});
  }
}

tcl::HandlerOutcome SiteCore::run_handler(Hosted& h, std::uint64_t agent, tcl::Event ev,
                                          const std::string& sender, std::string_view argv) {
  Running run;
  run.stream = &h;
  run.ctx.stream = h.rec.name;
  run.ctx.sender = sender;
  run.ctx.agent = agent;
  Running* saved = current_;
  current_ = &run;
  tcl::HandlerOutcome out = runner_->run(agent, ev, run.ctx, argv);
  current_ = saved;
  if (run.exit_agent) {
    PendingOp op{PendingOp::Kind::kDetach, {}, agent};
    h.ops.push_back(op);
    mark_ready(h);
  }
  return out;
}

void SiteCore::report_handler_error(const Hosted& h, std::uint64_t agent, const char* event,
                                    const tcl::HandlerOutcome& out) {
  ++counters_.handler_errors;
  std::string text = "error in " + std::string(event) + " handler: stream \"" + h.rec.name +
                     "\", agent " + std::to_string(agent) + ", site " +
                     std::to_string(options_.self) + ": " + out.result;
  if (!out.error_info.empty() && out.error_info != out.result) text += "\n" + out.error_info;
  if (options_.log_forwarded_errors) report_error(text);
  send_control(0, kLeaderStream, wire::ErrorReport{text});
}

void SiteCore::report_error(std::string text) { errors_.push_back(std::move(text)); }

std::uint64_t SiteCore::not_consumed(const proto::SendState& st, proto::Seq final_consumed) {
  const proto::Seq last = st.next_seq - 1;
  const proto::Seq done = std::max(st.consumed_up_to, final_consumed);
  return last > done ? last - done : 0;
}

// Termination detection balances what each sender appended against what was consumed from
// it; a shell's messages are tallied per shell, as only the waiting shell's count is known.
void SiteCore::count_consumed(StreamId from, std::uint64_t n) {
  if (is_control(from) && is_shell(control_site(from))) {
    counters_.consumed_from_shell[control_site(from)] += n;
  } else {
    counters_.consumed += n;
  }
}

void SiteCore::count_discarded(StreamId from, std::uint64_t n) {
  if (from == sender_id() && options_.shell) {
    counters_.discarded_own += n;
  } else {
    counters_.consumed += n;
  }
}

std::string SiteCore::sender_name(StreamId from) const {
  if (is_control(from)) {
    SiteId s = control_site(from);
    return is_shell(s) ? "shell:" + std::to_string(s) : "site:" + std::to_string(s);
  }
  const wire::StreamRecord* rec = directory_.find(from);
  if (rec) return rec->name;
  auto it = hosted_.find(from);
  if (it != hosted_.end()) return it->second->rec.name;
  return "stream:" + std::to_string(from);
}

// ---------------------------------------------------------------------------------------
// Control

void SiteCore::send_control(SiteId to, StreamId to_stream, const wire::ControlMessage& m) {
  wire::Bytes b = encode(m);
  (void)append_raw(control_stream(options_.self), to_stream, to, std::move(b));
}

void SiteCore::send_from_leader(SiteId to, const wire::ControlMessage& m) {
  wire::Bytes b = encode(m);
  (void)append_raw(kLeaderStream, control_stream(to), to, std::move(b));
}

void SiteCore::reply_installed(const wire::Installed& i) { send_control(0, kLeaderStream, i); }

std::uint64_t SiteCore::send_request(wire::ControlMessage m) {
  std::uint64_t req = next_req_++;
  std::visit(
      [req](auto& v) {
        if constexpr (requires { v.req; }) v.req = req;
      },
      m);
  send_control(0, kLeaderStream, m);
  return req;
}

std::optional<wire::Reply> SiteCore::take_reply(std::uint64_t req) {
  auto it = replies_.find(req);
  if (it == replies_.end()) return std::nullopt;
  wire::Reply r = std::move(it->second);
  replies_.erase(it);
  return r;
}

void SiteCore::on_control(SiteId from_site, const wire::ControlMessage& msg) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, wire::Welcome>) {
          for (const auto& p : m.peers) {
            directory_.apply(p);
            transport_.admit_site(p.site);
          }
          for (const auto& s : m.streams) on_location(s);
          welcomed_ = true;
        } else if constexpr (std::is_same_v<T, wire::PeerUpdate>) {
          directory_.apply(m.peer);
          transport_.admit_site(m.peer.site);
        } else if constexpr (std::is_same_v<T, wire::Location>) {
          on_location(m.stream, m.final_in);
        } else if constexpr (std::is_same_v<T, wire::Install>) {
          auto h = std::make_unique<Hosted>();
          h->rec = m.stream;
          h->rec.site = options_.self;
          (void)transport_.open_stream(m.stream.id);
          directory_.apply(h->rec);
          hosted_[m.stream.id] = std::move(h);
          reply_installed(wire::Installed{m.stream.id, m.stream.epoch, 0, 0, {}});
        } else if constexpr (std::is_same_v<T, wire::Code>) {
          code_[m.agent] = m;
          try_install_parked();
        } else if constexpr (std::is_same_v<T, wire::Attach>) {
          auto it = hosted_.find(m.stream);
          if (it == hosted_.end()) {
            reply_installed(wire::Installed{m.stream, 0, m.agent,
                                            static_cast<std::uint64_t>(Status::Code::kNotFound),
                                            "stream not at site " + std::to_string(options_.self)});
            return;
          }
          it->second->ops.push_back(PendingOp{PendingOp::Kind::kAttach, {}, m.agent});
          mark_ready(*it->second);
        } else if constexpr (std::is_same_v<T, wire::MoveOut>) {
          auto it = hosted_.find(m.stream);
          if (it == hosted_.end()) return;  // the leader orders moves; cannot happen
          it->second->ops.push_back(PendingOp{PendingOp::Kind::kMoveOut, m, 0});
          mark_ready(*it->second);
        } else if constexpr (std::is_same_v<T, wire::DestroyStream>) {
          auto it = hosted_.find(m.stream);
          if (it == hosted_.end()) {
            reply_installed(wire::Installed{m.stream, 0, 0, 0, {}});
            return;
          }
          it->second->ops.push_back(PendingOp{PendingOp::Kind::kDestroy, {}, 0});
          mark_ready(*it->second);
        } else if constexpr (std::is_same_v<T, wire::Finalize>) {
          if (runner_->loaded(m.agent)) {
            tcl::HandlerContext ctx;
            const wire::StreamRecord* rec = directory_.find(m.stream);
            ctx.stream = rec ? rec->name : std::string();
            ctx.agent = m.agent;
            tcl::HandlerOutcome out = runner_->finalize(m.agent, ctx);
            if (out.ran && !out.ok)
              report_error("error in finalize handler of agent " + std::to_string(m.agent) + ": " +
                           out.result);
          }
          code_.erase(m.agent);
        } else if constexpr (std::is_same_v<T, wire::Arrive>) {
          (void)from_site;
          on_arrive(m);
        } else if constexpr (std::is_same_v<T, wire::Probe>) {
          wire::ProbeReply r{
              m.wave, idle() ? 1u : 0u, counters_.appended, counters_.consumed, counters_.requests,
              {}};
          for (const auto& [shell, n] : counters_.consumed_from_shell)
            r.shells.push_back({shell, n});
          send_control(0, kLeaderStream, r);
        } else if constexpr (std::is_same_v<T, wire::Reply>) {
          auto hold = holds_.find(m.req);
          if (hold != holds_.end()) {
            auto h = hosted_.find(hold->second);
            if (h != hosted_.end() && h->second->held_by == m.req) {
              h->second->held_by = 0;
              mark_ready(*h->second);
            }
            holds_.erase(hold);
          }
          if (handler_requests_.erase(m.req)) {
            if (m.code != 0) report_error("site " + std::to_string(options_.self) + ": " + m.text);
          } else {
            replies_[m.req] = m;
          }
        } else if constexpr (std::is_same_v<T, wire::SyncResult>) {
          sync_results_[{m.stream, m.seq}] = m.result;
        } else if constexpr (std::is_same_v<T, wire::ErrorReport>) {
          report_error(m.text);
        } else if constexpr (std::is_same_v<T, wire::Shutdown>) {
          finished_ = true;
        } else {
          report_error(std::string("site ") + std::to_string(options_.self) +
                       ": unexpected control message " + wire::control_name(msg));
        }
      },
      msg);
}

void SiteCore::on_location(const wire::StreamRecord& rec,
                           const std::vector<wire::InChannel>& final_in) {
  if (!directory_.apply(rec, final_in)) return;
  if (rec.site == wire::kNoSite) {
    drop_channels_to(rec.id);
    watching_.erase(rec.id);
    return;
  }
  if (!senders_to_.contains(rec.id)) return;
  // Re-send what was not consumed to where the receiver now is (seed 004 §2.3:
  // sender-initiated re-delivery, no forwarding).
  retry_at_.erase(rec.id);
  transport_.relocate_receiver(rec.id, rec.site);
}

void SiteCore::drop_channels_to(StreamId to) {
  auto it = senders_to_.find(to);
  if (it == senders_to_.end()) return;
  for (StreamId from : it->second) {
    proto::ChannelKey key{from, to};
    auto st = transport_.take_send_state(key);
    // Messages to a destroyed stream are discarded, but only those it did not consume: the
    // others were counted where they were consumed (termination detection balances).
    if (st.ok()) count_discarded(from, not_consumed(*st, directory_.final_consumed(to, from)));
    auto ov = overflow_.find(key);
    if (ov != overflow_.end()) {
      count_discarded(from, ov->second.size());
      overflow_.erase(ov);
    }
    auto h = hosted_.find(from);
    if (h != hosted_.end()) h->second->out_peers.erase(to);
  }
  senders_to_.erase(it);
  retry_at_.erase(to);
}

// ---------------------------------------------------------------------------------------
// Appends

Result<proto::Seq> SiteCore::append_raw(StreamId from, StreamId to, SiteId to_site,
                                        wire::Bytes payload) {
  proto::ChannelKey key{from, to};
  auto ov = overflow_.find(key);
  if (ov != overflow_.end() && !ov->second.empty()) {
    ov->second.push_back(std::move(payload));
    return proto::Seq{0};
  }
  Result<proto::Seq> r = transport_.append(from, to, to_site, payload, now_);
  if (!r.ok() && r.status().code() == Status::Code::kWouldBlock) {
    // Accepted all the same: kept here in order and sent as the channel drains, so a handler
    // never blocks (it could deadlock two streams appending to each other).
    overflow_[key].push_back(std::move(payload));
    return proto::Seq{0};
  }
  return r;
}

void SiteCore::flush_overflow(proto::ChannelKey key) {
  auto it = overflow_.find(key);
  if (it == overflow_.end()) return;
  const wire::StreamRecord* rec = directory_.find(key.to);
  SiteId site = rec ? rec->site : options_.self;
  while (!it->second.empty()) {
    Result<proto::Seq> r = transport_.append(key.from, key.to, site, it->second.front(), now_);
    if (!r.ok()) break;
    it->second.pop_front();
  }
  if (it->second.empty()) overflow_.erase(it);
}

Result<proto::Seq> SiteCore::append_from(StreamId from, const std::string& to,
                                         std::string_view message, bool sync) {
  const wire::StreamRecord* rec = directory_.find(to);
  if (!rec) return not_found_stream(to);
  if (message.size() > options_.max_message_bytes)
    return Status::error(Status::Code::kTooLarge,
                         "message of " + std::to_string(message.size()) + " bytes exceeds the " +
                             std::to_string(options_.max_message_bytes) + "-byte limit");
  wire::Bytes payload(message.size() + 1);
  payload[0] = sync ? kMessageSync : 0;
  if (!message.empty()) std::memcpy(payload.data() + 1, message.data(), message.size());
  const StreamId to_id = rec->id;
  // A shell waits and retries on a full buffer (its script blocks); a handler never blocks,
  // so its appends overflow into an ordered local queue instead.
  Result<proto::Seq> r = options_.shell ? transport_.append(from, to_id, rec->site, payload, now_)
                                        : append_raw(from, to_id, rec->site, std::move(payload));
  if (!r.ok()) return r;
  ++counters_.appended;
  add_sender(from, to_id);
  auto h = hosted_.find(from);
  if (h != hosted_.end()) h->second->out_peers.insert(to_id);
  return r;
}

// The leader pushes a receiver's moves at once only to the sites that watch it; a shell hears
// of every move anyway.
void SiteCore::add_sender(StreamId from, StreamId to) {
  senders_to_[to].insert(from);
  if (!options_.shell && watching_.insert(to).second)
    send_control(0, kLeaderStream, wire::Watch{to});
}

std::optional<std::string> SiteCore::take_sync_result(StreamId to, proto::Seq seq) {
  auto it = sync_results_.find({to, seq});
  if (it == sync_results_.end()) return std::nullopt;
  std::string s = std::move(it->second);
  sync_results_.erase(it);
  return s;
}

bool SiteCore::all_released() const {
  const StreamId me = sender_id();
  for (const auto& [to, froms] : senders_to_) {
    if (!froms.contains(me)) continue;
    const proto::SendChannel* ch = transport_.send_channel({me, to});
    if (ch && ch->unconsumed_count() > 0) return false;
    auto ov = overflow_.find({me, to});
    if (ov != overflow_.end() && !ov->second.empty()) return false;
  }
  return true;
}

bool SiteCore::poll_output(std::string* line, Time* stamp) {
  if (output_.empty()) return false;
  *line = std::move(output_.front().second);
  if (stamp) *stamp = output_.front().first;
  output_.pop_front();
  return true;
}

bool SiteCore::poll_error(std::string* line) {
  if (errors_.empty()) return false;
  *line = std::move(errors_.front());
  errors_.pop_front();
  return true;
}

// ---------------------------------------------------------------------------------------
// Pending operations at a handler boundary

void SiteCore::apply_op(Hosted& h, PendingOp op) {
  switch (op.kind) {
    case PendingOp::Kind::kMoveOut:
      depart(h, op.move);
      return;
    case PendingOp::Kind::kDestroy:
      destroy_here(h);
      return;
    case PendingOp::Kind::kAttach: {
      std::string error_info;
      Status s = load_agent(h, op.agent, &error_info);
      if (s.ok()) {
        h.agents.push_back(op.agent);
        h.has_append_handler =
            h.has_append_handler || runner_->has_handler(op.agent, tcl::Event::kAppend);
        reply_installed(wire::Installed{h.rec.id, h.rec.epoch, op.agent, 0, {}});
      } else {
        std::string text = s.message();
        if (!error_info.empty() && error_info != text) text += "\n" + error_info;
        reply_installed(wire::Installed{h.rec.id, h.rec.epoch, op.agent,
                                        static_cast<std::uint64_t>(s.code()), text});
      }
      return;
    }
    case PendingOp::Kind::kDetach: {
      auto it = std::find(h.agents.begin(), h.agents.end(), op.agent);
      if (it == h.agents.end()) return;
      h.agents.erase(it);
      tcl::HandlerContext ctx{h.rec.name, {}, op.agent};
      (void)runner_->finalize(op.agent, ctx);
      code_.erase(op.agent);
      ++counters_.requests;
      std::uint64_t req = send_request(wire::DetachReq{0, h.rec.id, op.agent});
      handler_requests_.insert(req);
      return;
    }
  }
}

Status SiteCore::load_agent(Hosted& h, std::uint64_t agent, std::string* error_info) {
  if (runner_->loaded(agent)) return Status::ok_status();
  auto it = code_.find(agent);
  if (it == code_.end())
    return Status::error(Status::Code::kInternal,
                         "agent " + std::to_string(agent) + " has no code here");
  Running run;
  run.stream = &h;
  run.ctx = tcl::HandlerContext{h.rec.name, {}, agent};
  Running* saved = current_;
  current_ = &run;
  Status s = runner_->load(it->second, run.ctx, error_info);
  current_ = saved;
  return s;
}

void SiteCore::depart(Hosted& h, const wire::MoveOut& m) {
  if (trace_) trace_({HandlerTrace::Kind::kDepart, h.rec.id, 0, 0, m.epoch, {}});
  wire::Arrive a;
  a.stream = h.rec;
  a.stream.site = m.target;
  a.stream.epoch = m.epoch;
  a.agents = h.agents;
  a.requester = m.requester;
  a.req = m.req;
  for (std::uint64_t agent : h.agents)
    a.briefcases.push_back({agent, runner_->save_briefcase(agent)});
  for (StreamId from : h.in_peers) {
    auto st = transport_.export_recv_state({from, h.rec.id});
    if (st.ok()) a.in.push_back({from, st->consumed_up_to, st->reply_site, st->reply_incarnation});
  }
  for (StreamId to : h.out_peers) {
    proto::ChannelKey key{h.rec.id, to};
    auto st = transport_.take_send_state(key);
    if (!st.ok()) continue;
    wire::OutChannel oc;
    oc.to = to;
    oc.dest = st->dest;
    oc.consumed_up_to = st->consumed_up_to;
    oc.next_seq = st->next_seq;
    oc.incarnation = st->incarnation;
    for (auto& b : st->unconsumed) oc.unconsumed.emplace_back(b.begin(), b.end());
    auto ov = overflow_.find(key);
    if (ov != overflow_.end()) {
      // Refused by the full buffer but accepted from the handler: they take the next numbers.
      for (auto& b : ov->second) {
        oc.unconsumed.emplace_back(b.begin(), b.end());
        ++oc.next_seq;
      }
      overflow_.erase(ov);
    }
    a.out.push_back(std::move(oc));
    auto s = senders_to_.find(to);
    if (s != senders_to_.end()) {
      s->second.erase(h.rec.id);
      if (s->second.empty()) senders_to_.erase(s);
    }
  }
  // Nothing of the stream stays here but cached code and agent globals (guarantee 4). Messages
  // delivered but not consumed are dropped: their senders re-send them to the new site.
  const StreamId id = h.rec.id;
  (void)transport_.close_stream(id);
  ++counters_.moves_out;
  hosted_.erase(id);  // h is gone
  send_control(m.target, control_stream(m.target), a);
}

void SiteCore::on_arrive(wire::Arrive a) {
  parked_.push_back(std::move(a));
  try_install_parked();
}

void SiteCore::try_install_parked() {
  // An arrival may overtake the code the leader sent for it (they come on different
  // channels): it waits here until every agent's code is in.
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (install_arrival(*it)) {
      it = parked_.erase(it);
    } else {
      ++it;
    }
  }
}

bool SiteCore::install_arrival(wire::Arrive& a) {
  for (std::uint64_t agent : a.agents)
    if (!runner_->loaded(agent) && !code_.contains(agent)) return false;
  const StreamId id = a.stream.id;
  auto owned = std::make_unique<Hosted>();
  Hosted& h = *owned;
  h.rec = a.stream;
  h.rec.site = options_.self;
  hosted_[id] = std::move(owned);
  directory_.apply(h.rec);
  (void)transport_.open_stream(id);
  for (const auto& in : a.in) {
    (void)transport_.import_recv_state(
        {in.from, id}, proto::RecvState{in.consumed_up_to, in.reply_site, in.reply_incarnation});
    h.in_peers.insert(in.from);
  }
  for (auto& oc : a.out) {
    proto::SendState st;
    st.next_seq = oc.next_seq;
    st.consumed_up_to = oc.consumed_up_to;
    st.incarnation = oc.incarnation;
    for (auto& m : oc.unconsumed) st.unconsumed.emplace_back(m.begin(), m.end());
    const wire::StreamRecord* to = directory_.find(oc.to);
    st.dest = to ? to->site : oc.dest;
    if (directory_.destroyed(oc.to)) {
      // The receiver is gone (destroyed while we moved): what it did not consume is discarded.
      count_discarded(id, not_consumed(st, directory_.final_consumed(oc.to, id)));
      continue;
    }
    if (transport_.import_send_state({id, oc.to}, std::move(st)).ok()) {
      h.out_peers.insert(oc.to);
      add_sender(id, oc.to);
    }
  }
  // The leader does not tell the target of its own arrival: this site's senders to the
  // stream, now that its channels' states are in, re-send to it here.
  if (senders_to_.contains(id)) {
    retry_at_.erase(id);
    transport_.relocate_receiver(id, options_.self);
  }
  ++counters_.moves_in;
  if (trace_) trace_({HandlerTrace::Kind::kInstall, id, 0, 0, h.rec.epoch, {}});
  // First visit: initialization, then the arriving briefcase wins, then relocation handlers,
  // all before any further append handler (COMMANDS.md; guarantee 4).
  for (std::uint64_t agent : a.agents) {
    std::string error_info;
    Status s = load_agent(h, agent, &error_info);
    if (!s.ok()) {
      tcl::HandlerOutcome out;
      out.ok = false;
      out.result = s.message();
      out.error_info = error_info;
      report_handler_error(h, agent, "initialization", out);
      continue;
    }
    h.agents.push_back(agent);
    if (runner_->has_handler(agent, tcl::Event::kAppend)) h.has_append_handler = true;
  }
  for (const auto& b : a.briefcases) {
    if (!runner_->loaded(b.agent)) continue;
    Status s = runner_->restore_briefcase(b.agent, b.briefcase);
    if (!s.ok())
      report_error("site " + std::to_string(options_.self) + ": briefcase of agent " +
                   std::to_string(b.agent) + " not restored: " + s.message());
  }
  if (trace_) trace_({HandlerTrace::Kind::kRelocation, id, 0, 0, h.rec.epoch, {}});
  const std::vector<std::uint64_t> agents = h.agents;
  for (std::uint64_t agent : agents) {
    tcl::HandlerOutcome out = run_handler(h, agent, tcl::Event::kRelocation, {}, {});
    if (out.ran && !out.ok) report_handler_error(h, agent, "relocation", out);
  }
  reply_installed(wire::Installed{id, h.rec.epoch, 0, 0, {}});
  if (a.requester != wire::kNoSite) {
    // The requester learns the new location and gets its answer from here, one hop sooner
    // than through the leader; the leader tells everyone else. Its next request on this
    // stream still waits at the leader behind this move's Installed, so order is kept.
    const SiteId r = a.requester;
    send_control(r, control_stream(r), wire::Location{h.rec});
    send_control(r, control_stream(r), wire::Reply{a.req, 0, std::to_string(options_.self)});
  }
  if (!h.ops.empty()) mark_ready(h);
  return true;
}

void SiteCore::destroy_here(Hosted& h) {
  const StreamId id = h.rec.id;
  for (std::uint64_t agent : h.agents) {
    tcl::HandlerContext ctx{h.rec.name, {}, agent};
    tcl::HandlerOutcome out = runner_->finalize(agent, ctx);
    if (out.ran && !out.ok) report_handler_error(h, agent, "finalize", out);
  }
  // Messages delivered but not consumed die with the stream. They are not counted here: their
  // senders still hold them and count them as discarded when they learn of the destruction.
  // What the stream appended before it died is still delivered (nothing accepted is lost): its
  // outgoing channels stay until consumed, followed through receiver moves.
  wire::Installed done{id, 0, 0, 0, {}, {}};
  for (StreamId from : h.in_peers) {
    auto st = transport_.export_recv_state({from, id});
    if (st.ok())
      done.final_in.push_back({from, st->consumed_up_to, st->reply_site, st->reply_incarnation});
  }
  (void)transport_.close_stream(id);
  hosted_.erase(id);
  reply_installed(done);
}

// ---------------------------------------------------------------------------------------
// tcl::ScriptApi for handlers: control on the handler's own stream is deferred; everything
// else is sent to the leader without waiting; queries read the replica.

Result<std::string> SiteCore::stream_create(const std::string& name,
                                            const tcl::CreateOptions& options) {
  if (name.empty() || name.size() > wire::kMaxNameBytes)
    return Status::error(Status::Code::kInvalidArgument, "bad stream name \"" + name + "\"");
  if (directory_.find(name))
    return Status::error(Status::Code::kAlreadyExists, "stream \"" + name + "\" exists");
  wire::CreateReq r;
  r.name = name;
  r.site = options.site.value_or(options_.self);
  r.failure_manager = options.failure_manager.value_or(wire::kNoSite);
  r.flags = (options.temp ? wire::kStreamTemp : 0) | (options.durable ? wire::kStreamDurable : 0);
  ++counters_.requests;
  handler_requests_.insert(send_request(r));
  return name;
}

Status SiteCore::stream_open(const std::string& name) {
  if (!directory_.find(name)) return not_found_stream(name);
  return Status::ok_status();
}

Result<std::string> SiteCore::stream_append(const std::string& name, std::string message,
                                            bool sync) {
  if (sync)
    return Status::error(Status::Code::kInvalidArgument,
                         "stream_append -sync is not available in a handler: waiting there would "
                         "stall every stream of the site");
  StreamId from = current_ ? current_->stream->rec.id : sender_id();
  Result<proto::Seq> r = append_from(from, name, message, false);
  if (!r.ok()) return r.status();
  return std::string();
}

Result<tcl::SiteNumber> SiteCore::stream_move(const std::string& name, tcl::SiteNumber site) {
  const wire::StreamRecord* rec = directory_.find(name);
  if (!rec) return not_found_stream(name);
  const wire::PeerRecord* p = directory_.peer(site);
  if (!p || !p->live || p->shell)
    return Status::error(Status::Code::kNotFound, "no such site " + std::to_string(site));
  if (current_ && rec->id == current_->stream->rec.id && site == options_.self) return site;
  ++counters_.requests;
  std::uint64_t req = send_request(wire::MoveReq{0, name, site});
  handler_requests_.insert(req);
  hold_if_own(rec->id, req);
  return site;
}

Result<tcl::SiteNumber> SiteCore::stream_location(const std::string& name) {
  const std::string& n = name.empty() && current_ ? current_->ctx.stream : name;
  if (current_ && n == current_->ctx.stream) return options_.self;
  const wire::StreamRecord* rec = directory_.find(n);
  if (!rec) return not_found_stream(n);
  return rec->site;
}

Status SiteCore::stream_destroy(const std::string& name) {
  const wire::StreamRecord* rec = directory_.find(name);
  if (!rec) return not_found_stream(name);
  ++counters_.requests;
  std::uint64_t req = send_request(wire::DestroyReq{0, name});
  handler_requests_.insert(req);
  hold_if_own(rec->id, req);
  return Status::ok_status();
}

void SiteCore::hold_if_own(StreamId id, std::uint64_t req) {
  if (!current_ || current_->stream->rec.id != id) return;
  current_->stream->held_by = req;
  holds_[req] = id;
}

bool SiteCore::stream_exists(const std::string& name) { return directory_.find(name) != nullptr; }

std::vector<tcl::StreamInfo> SiteCore::list_streams() {
  std::vector<tcl::StreamInfo> out;
  for (const auto& [name, id] : directory_.names()) {
    const wire::StreamRecord* rec = directory_.find(id);
    if (rec) out.push_back({name, rec->site});
  }
  return out;
}

Result<tcl::SiteNumber> SiteCore::stream_creator(const std::string& name) {
  const wire::StreamRecord* rec = directory_.find(name);
  if (!rec) return not_found_stream(name);
  return rec->creator;
}

Result<std::string> SiteCore::register_agent(const std::string& stream, const std::string& args,
                                             const std::string& body, const std::string& cpp_type) {
  if (!directory_.find(stream)) return not_found_stream(stream);
  if (!cpp_type.empty() && !find_agent_type(cpp_type))
    return Status::error(Status::Code::kNotFound, "no such agent type \"" + cpp_type + "\"");
  ++counters_.requests;
  std::uint64_t req = send_request(wire::AttachReq{0, stream, args, body, cpp_type});
  handler_requests_.insert(req);
  // The id is the leader's to give; a handler gets the request's number to log.
  return "pending:" + std::to_string(req);
}

Status SiteCore::agent_exit() {
  if (!current_)
    return Status::error(Status::Code::kInvalidArgument, "agent_exit: not in a handler");
  current_->exit_agent = true;
  return Status::ok_status();
}

std::vector<tcl::SiteNumber> SiteCore::site_list() {
  std::vector<tcl::SiteNumber> out;
  for (const auto& [id, p] : directory_.peers())
    if (p.live && !p.shell) out.push_back(id);
  return out;
}

std::vector<tcl::PeerInfo> SiteCore::peer_map() {
  std::vector<tcl::PeerInfo> out;
  for (const auto& [id, p] : directory_.peers())
    if (!p.shell) out.push_back({id, p.address, p.live != 0});
  return out;
}

void SiteCore::write_stdout(std::string_view text, bool nonewline) {
  partial_line_.append(text);
  if (nonewline) return;
  // Stamped with the time of this step, which began before anything the handler caused was
  // sent: a line another process prints in reaction comes out after it.
  if (options_.keep_output) output_.push_back({now_, std::move(partial_line_)});
  partial_line_.clear();
}

}  // namespace mstream::site
