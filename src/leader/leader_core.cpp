#include "leader/leader_core.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <limits>

#include "leader/leader_state.hpp"
#include "site/directory.hpp"
#include "site/ids.hpp"
#include "wire/fields.hpp"

namespace mstream::leader {
namespace {
constexpr auto kOk = 0u;
std::uint64_t code_of(Status::Code c) { return static_cast<std::uint64_t>(c); }
}  // namespace

LeaderCore::LeaderCore(LeaderOptions options, Send send, Admit admit)
    : options_(options),
      send_(std::move(send)),
      admit_(std::move(admit)),
      next_shell_(site::kFirstShellId) {
  wire::PeerRecord self;
  self.site = 0;
  self.live = 1;
  peers_[0] = self;
}

void LeaderCore::set_own_address(std::string address, std::uint64_t pid) {
  peers_[0].address = std::move(address);
  peers_[0].pid = pid;
}

bool LeaderCore::on_join(const wire::JoinMessage& m, const std::string& from,
                         wire::JoinMessage* reply, Time now) {
  if (m.op != wire::JoinMessage::Op::kRequest) return false;
  reply->op = wire::JoinMessage::Op::kAccept;
  reply->nonce = m.nonce;
  auto known = join_nonces_.find(m.nonce);
  if (known != join_nonces_.end()) {  // a repeat: its answer was lost
    reply->site = known->second;
    return true;
  }
  const bool shell = m.role == wire::JoinMessage::Role::kShell;
  if ((shell && next_shell_ == 0xFFFFFFFEu) || (!shell && next_site_ >= site::kFirstShellId)) {
    reply->op = wire::JoinMessage::Op::kRefuse;
    reply->reason = "the session is full";
    return true;
  }
  const SiteId id = shell ? next_shell_++ : next_site_++;
  join_nonces_[m.nonce] = id;
  reply->site = id;
  wire::PeerRecord p;
  p.site = id;
  p.address = from;
  p.pid = m.pid;
  p.live = 1;
  p.shell = shell ? 1 : 0;
  peers_[id] = p;
  touch_peer(id);
  admitted_at_[id] = now;
  admit_(id);
  if (options_.failure_timeout > 0 && next_liveness_check_ == proto::kNever)
    next_liveness_check_ = now + options_.failure_timeout / 8;
  if (session_events() & wire::policy_bit(wire::kPolicyNewPeer)) {
    // The session controller decides first; the newcomer hears nothing until it has.
    const std::uint64_t check = (std::uint64_t{boot_} << 40) | ++next_check_;
    peer_checks_[check] = id;
    send(0, wire::PolicyCheck{check,
                              wire::kPolicySession,
                              wire::kPolicyNewPeer,
                              0,
                              0,
                              {"event", "new_peer", "peer", std::to_string(id), "address", from,
                               "shell", shell ? "1" : "0"}});
    return true;
  }
  welcome(id);
  return true;
}

// Everyone learns of the newcomer before it hears of them, then it gets the whole directory.
void LeaderCore::welcome(SiteId id) {
  const wire::PeerRecord& p = peers_[id];
  const bool shell = p.shell != 0;
  broadcast(wire::PeerUpdate{p}, id);
  wire::Welcome w;
  w.you = id;
  for (const auto& [sid, peer] : peers_) w.peers.push_back(peer);
  for (const auto& [sid, rec] : streams_) w.streams.push_back(rec);
  w.failure_timeout_us = static_cast<std::uint64_t>(options_.failure_timeout / proto::kMicrosecond);
  if (options_.state && options_.failure_timeout > 0)
    w.resume_timeout_us = static_cast<std::uint64_t>(
        std::max(options_.resume_timeout, options_.failure_timeout) / proto::kMicrosecond);
  send(id, w);
  // A wave under way waits for every live site's answer: a site joining during it (a crashed
  // one restarting, say) is asked too, or the wave never ends (sim seed 6634).
  if (wave_open_ && !shell) send(id, wire::Probe{wave_});
}

bool LeaderCore::live_site(SiteId s) const {
  auto it = peers_.find(s);
  return it != peers_.end() && it->second.live && !it->second.shell;
}

// Nothing goes to a peer that failed or left: its channel would retransmit to nobody.
void LeaderCore::send(SiteId to, const wire::ControlMessage& m) {
  auto it = peers_.find(to);
  if (it == peers_.end() || !it->second.live) return;
  touch_peer(to);  // its channel's state
  send_(to, m);
}

void LeaderCore::done_request(SiteId requester) {
  if (requester != wire::kNoSite && !site::is_shell(requester)) ++requests_done_by_[requester];
  meta_dirty_ = true;
}

void LeaderCore::broadcast(const wire::ControlMessage& m, SiteId except) {
  for (const auto& [id, p] : peers_)
    if (p.live && id != except) send(id, m);
}

void LeaderCore::reply(SiteId to, std::uint64_t req, std::uint64_t code, std::string text) {
  send(to, wire::Reply{req, code, std::move(text)});
}

bool LeaderCore::poll_log(std::string* line) {
  if (log_.empty()) return false;
  *line = std::move(log_.front());
  log_.pop_front();
  return true;
}

std::size_t LeaderCore::queued_ops() const {
  std::size_t n = 0;
  for (const auto& [id, st] : state_) n += st.queue.size();
  return n;
}

Status LeaderCore::check_new_name(const std::string& name) const {
  if (name.empty() || name.size() > wire::kMaxNameBytes)
    return Status::error(Status::Code::kInvalidArgument, "bad stream name \"" + name + "\"");
  if (Status s = site::Directory::check_user_stream(name); !s.ok()) return s;
  if (by_name_.contains(name) || reserved_names_.contains(name))
    return Status::error(Status::Code::kAlreadyExists, "stream \"" + name + "\" exists");
  return Status::ok_status();
}

// ---------------------------------------------------------------------------------------

void LeaderCore::on_message(SiteId from, const wire::ControlMessage& m, Time now) {
  if (const auto* o = std::get_if<wire::OpenReq>(&m); o && o->opener == 0) {
    wire::OpenReq own = *o;  // the requester's own control stream opens (a shell)
    own.opener = site::control_stream(from);
    return on_message(from, own, now);
  }
  auto peer = peers_.find(from);
  if (peer == peers_.end() || !peer->second.live) return;  // not admitted, or fenced
  for (const auto& [check, waiting] : peer_checks_)
    if (waiting == from) return;  // the session controller has not let it in yet
  touch_peer(from);  // its channel's state, and what the message changes of ours
  if (!sender_allowed(from, m)) {
    // An answer from a site that was asked, come after its operation ended otherwise, is no
    // forgery: dropped all the same, but not counted as one.
    if (stale_answer(from, m)) {
      ++stats_.stale_answers;
    } else {
      ++refused_control_[m.index()];
    }
    return;
  }
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, wire::CreateReq> || std::is_same_v<T, wire::DestroyReq> ||
                      std::is_same_v<T, wire::MoveReq> || std::is_same_v<T, wire::AttachReq> ||
                      std::is_same_v<T, wire::DetachReq> || std::is_same_v<T, wire::OpenReq>) {
          accept(from, m);
        } else if constexpr (std::is_same_v<T, wire::PolicyVerdict>) {
          on_verdict(v, now);
        } else if constexpr (std::is_same_v<T, wire::Controls>) {
          on_controls(from, v);
        } else if constexpr (std::is_same_v<T, wire::Installed>) {
          on_installed(v, now);
        } else if constexpr (std::is_same_v<T, wire::Watch>) {
          on_watch(from, v);
        } else if constexpr (std::is_same_v<T, wire::Settled>) {
          on_settled(from, v, now);
        } else if constexpr (std::is_same_v<T, wire::QuiesceReq>) {
          // A shell waits for one quiescence at a time: a second request replaces its first
          // (it asks again when messages it counted were refused meanwhile, ShellApi).
          auto w = std::find_if(waiters_.begin(), waiters_.end(),
                                [&](const Waiter& x) { return x.shell == from; });
          if (w != waiters_.end()) {
            *w = Waiter{from, v.req, v.appended};
          } else {
            waiters_.push_back({from, v.req, v.appended});
          }
          if (!wave_open_ && next_probe_ == proto::kNever) {
            start_wave(now);
          } else if (wave_open_ && failures_seen_) {
            // After a failure a wave waits for every waiting shell's answer: one that came
            // during the wave is asked too.
            send(from, wire::Probe{wave_});
          }
        } else if constexpr (std::is_same_v<T, wire::ProbeReply>) {
          on_probe_reply(from, v, now);
        } else if constexpr (std::is_same_v<T, wire::ErrorReport>) {
          if (options_.log_forwarded_errors) log_.push_back(v.text);
          for (const auto& [id, p] : peers_)
            if (p.live && p.shell && id != v.told) send(id, v);
        } else if constexpr (std::is_same_v<T, wire::Leave>) {
          on_leave(from);
        } else {
          log_.push_back(std::string("leader: unexpected ") + wire::control_name(m) +
                         " from site " + std::to_string(from));
        }
      },
      m);
}

// Every request gets its place in the session-wide order here, on arrival; requests on one
// stream then run one at a time in that order (guarantee 5).
void LeaderCore::accept(SiteId from, const wire::ControlMessage& m) {
  Op op;
  op.requester = from;
  op.request = m;
  std::visit(
      [&](const auto& v) {
        if constexpr (requires { v.req; }) op.req = v.req;
      },
      m);
  auto fail = [&](Status::Code c, std::string text) {
    done_request(from);
    reply(from, op.req, code_of(c), std::move(text));
  };
  auto find = [&](const std::string& name) -> StreamId {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? 0 : it->second;
  };
  if (const auto* c = std::get_if<wire::CreateReq>(&m)) {
    if (Status s = check_new_name(c->name); !s.ok()) return fail(s.code(), s.message());
    const SiteId site = c->site == wire::kNoSite ? (site::is_shell(from) ? 0 : from) : c->site;
    if (!live_site(site))
      return fail(Status::Code::kNotFound, "no such site " + std::to_string(site));
    const SiteId fm = c->failure_manager == wire::kNoSite ? 0 : c->failure_manager;
    if (!live_site(fm)) return fail(Status::Code::kNotFound, "no such site " + std::to_string(fm));
    op.stream = next_stream_++;
    op.target = site;
    reserved_names_.insert(c->name);
    StreamState& st = state_[op.stream];
    if (c->flags & wire::kStreamTemp && site::is_shell(from)) st.temp_owner = from;
    st.busy = true;
    touch(op.stream);
    start(std::move(op));
    return;
  }
  std::string name;
  if (const auto* d = std::get_if<wire::DestroyReq>(&m)) name = d->name;
  if (const auto* mv = std::get_if<wire::MoveReq>(&m)) name = mv->name;
  if (const auto* a = std::get_if<wire::AttachReq>(&m)) name = a->stream;
  if (const auto* o = std::get_if<wire::OpenReq>(&m)) name = o->name;
  StreamId id = 0;
  if (const auto* dt = std::get_if<wire::DetachReq>(&m)) {
    id = streams_.contains(dt->stream) ? dt->stream : 0;
    if (!id) return fail(Status::Code::kNotFound, "no such stream");
  } else {
    if (Status s = site::Directory::check_user_stream(name); !s.ok())
      return fail(s.code(), s.message());
    id = find(name);
    if (!id) return fail(Status::Code::kNotFound, "no such stream \"" + name + "\"");
  }
  if (const auto* mv = std::get_if<wire::MoveReq>(&m)) {
    if (!live_site(mv->site))
      return fail(Status::Code::kNotFound, "no such site " + std::to_string(mv->site));
  }
  if (const auto* a = std::get_if<wire::AttachReq>(&m)) {
    if (a->body.size() > wire::kMaxCodeBytes)
      return fail(Status::Code::kTooLarge,
                  "agent code exceeds " + std::to_string(wire::kMaxCodeBytes) + " bytes");
    // Trusted code is what a site's owner installs there from a file, never what arrives.
    if (a->flags & ~wire::kAgentController)
      return fail(Status::Code::kInvalidArgument, "register_agent: bad agent flags");
  }
  op.stream = id;
  touch(id);
  StreamState& st = state_[id];
  if (st.busy) {
    st.queue.push_back(std::move(op));
    return;
  }
  st.busy = true;
  start(std::move(op));
}

void LeaderCore::start(Op op) {
  const StreamId id = op.stream;
  touch(id);
  if (!op.vetted) {
    // The controllers concerned vet it first (seed 004 figure 3), each in turn.
    if (plan_checks(op)) {
      ask(op);
      if (op.asking != wire::kNoSite) in_flight_[id] = std::move(op);
      return;
    }
    op.vetted = true;
  }
  if (const auto* c = std::get_if<wire::CreateReq>(&op.request)) {
    if (Status room = check_room(op.target, id); !room.ok()) {
      reserved_names_.erase(c->name);
      finish(id, op, code_of(room.code()), "stream_create \"" + c->name + "\": " + room.message());
      next_op(id);
      return;
    }
    op.epoch = 1;
    send(op.target, wire::Install{new_record(id, *c, op.target)});
    in_flight_[id] = std::move(op);
    return;
  }
  auto sit = streams_.find(id);
  if (sit == streams_.end()) {  // destroyed while this op waited
    finish(id, op, code_of(Status::Code::kNotFound), "no such stream");
    next_op(id);
    return;
  }
  wire::StreamRecord& rec = sit->second;
  StreamState& st = state_[id];
  if (const auto* o = std::get_if<wire::OpenReq>(&op.request)) {  // every level allowed it
    if (st.opened.contains(o->opener)) {
      finish(id, op, kOk, rec.name);
      next_op(id);
      return;
    }
    // The stream's site learns of the opener before the opener hears yes: its first message
    // then finds it known (site/opens.cpp).
    op.target = rec.site;
    send(rec.site, wire::Opened{id, o->opener});
    in_flight_[id] = std::move(op);
    return;
  }
  if (const auto* mv = std::get_if<wire::MoveReq>(&op.request)) {
    if (!live_site(mv->site)) {
      finish(id, op, code_of(Status::Code::kNotFound), "no such site " + std::to_string(mv->site));
      next_op(id);
      return;
    }
    if (mv->site == rec.site) {  // a move to where the stream is does nothing
      finish(id, op, kOk, std::to_string(mv->site));
      next_op(id);
      return;
    }
    if (Status room = check_room(mv->site, id); !room.ok()) {
      finish(id, op, code_of(room.code()), "stream_move \"" + rec.name + "\": " + room.message());
      next_op(id);
      return;
    }
    op.epoch = std::max(rec.epoch, st.max_epoch) + 1;
    st.max_epoch = op.epoch;
    op.target = mv->site;
    op.source = rec.site;
    // Code goes to the target once per agent; the stream's state goes straight from the
    // source at its next handler boundary.
    for (std::uint64_t agent : st.agents) ship_code(agent, op.target);
    // The target installs only the Arrive it was told to expect (a member could send it one
    // of another's stream).
    send(op.target, wire::Expect{id, op.epoch, rec.site});
    send(rec.site, wire::MoveOut{id, op.epoch, op.target, op.requester, op.req});
    in_flight_[id] = std::move(op);
    return;
  }
  if (const auto* a = std::get_if<wire::AttachReq>(&op.request)) {
    if ((a->flags & wire::kAgentController) && !st.agents.empty()) {
      finish(id, op, code_of(Status::Code::kInvalidArgument),
             "register_agent -controller: stream \"" + rec.name +
                 "\" has agents already; its controller must be its first agent");
      next_op(id);
      return;
    }
    if (options_.max_agents_per_stream && st.agents.size() >= options_.max_agents_per_stream) {
      finish(id, op, code_of(Status::Code::kLimit),
             "register_agent: stream \"" + rec.name + "\" has " + std::to_string(st.agents.size()) +
                 " agents, its limit");
      next_op(id);
      return;
    }
    op.agent = next_agent_++;
    AgentInfo& info = agents_[op.agent];
    info.code = wire::Code{op.agent, id, a->args, a->body, a->cpp_type, a->flags, op.requester};
    ship_code(op.agent, rec.site);
    send(rec.site, wire::Attach{id, op.agent});
    op.target = rec.site;
    in_flight_[id] = std::move(op);
    return;
  }
  if (std::holds_alternative<wire::DestroyReq>(op.request)) {
    send(rec.site, wire::DestroyStream{id});
    op.target = rec.site;
    in_flight_[id] = std::move(op);
    return;
  }
  if (const auto* dt = std::get_if<wire::DetachReq>(&op.request)) {
    // The agent was finalized at its stream's site already; the other sites it visited
    // finalize it now.
    auto ag = agents_.find(dt->agent);
    if (ag != agents_.end()) {
      for (SiteId s : ag->second.visited)
        if (s != rec.site && live_site(s)) send(s, wire::Finalize{dt->agent, id});
      agents_.erase(ag);
    }
    std::erase(st.agents, dt->agent);
    finish(id, op, kOk, {});
    next_op(id);
    return;
  }
}

wire::StreamRecord LeaderCore::new_record(StreamId id, const wire::CreateReq& c, SiteId site) {
  wire::StreamRecord rec;
  rec.id = id;
  rec.name = c.name;
  rec.site = site;
  rec.epoch = 1;
  rec.creator = site;  // the site where the stream was created
  rec.failure_manager = c.failure_manager == wire::kNoSite ? 0 : c.failure_manager;
  rec.flags = c.flags;
  return rec;
}

void LeaderCore::ship_code(std::uint64_t agent, SiteId site) {
  auto it = agents_.find(agent);
  if (it == agents_.end() || it->second.visited.contains(site)) return;
  it->second.visited.insert(site);
  touch(it->second.code.stream);
  send(site, it->second.code);
}

void LeaderCore::finish(StreamId, Op& op, std::uint64_t code, std::string text) {
  if (op.requester == wire::kNoSite) return;  // the leader's own (a recovery)
  if (code != kOk && !site::is_shell(op.requester)) {
    // A handler's request: the handler could not wait for it, so its error goes where the
    // handler's own errors go, to the shells, ahead of any answer to their waits.
    const wire::ErrorReport report{"site " + std::to_string(op.requester) + ": " + text};
    if (options_.log_forwarded_errors) log_.push_back(report.text);
    for (const auto& [id, p] : peers_)
      if (p.live && p.shell) send(id, report);
  }
  done_request(op.requester);
  reply(op.requester, op.req, code, std::move(text));
}

void LeaderCore::next_op(StreamId stream) {
  auto it = state_.find(stream);
  if (it == state_.end()) return;
  touch(stream);
  StreamState& st = it->second;
  st.busy = false;
  if (st.queue.empty()) {
    if (!streams_.contains(stream)) state_.erase(it);
    return;
  }
  Op op = std::move(st.queue.front());
  st.queue.pop_front();
  st.busy = true;
  start(std::move(op));
}

void LeaderCore::on_installed(const wire::Installed& m, Time now) {
  auto fit = in_flight_.find(m.stream);
  if (fit == in_flight_.end()) return;
  Op op = std::move(fit->second);
  // Not the answer we wait for (a move settled otherwise after a failure may still report its
  // arrival): stale. (That it came from the site asked, sender_allowed checked.)
  const bool moving = std::holds_alternative<wire::MoveReq>(op.request) ||
                      std::holds_alternative<wire::Recover>(op.request);
  const bool attaching = std::holds_alternative<wire::AttachReq>(op.request);
  if ((moving && m.epoch != op.epoch) || (attaching && m.agent != op.agent) ||
      (!attaching && m.agent != 0) || op.settle_with != wire::kNoSite) {
    fit->second = std::move(op);
    return;
  }
  in_flight_.erase(fit);
  const StreamId id = m.stream;
  touch(id);
  if (const auto* c = std::get_if<wire::CreateReq>(&op.request)) {
    reserved_names_.erase(c->name);
    const wire::StreamRecord rec = new_record(id, *c, op.target);
    streams_[id] = rec;
    count_hosted(wire::kNoSite, rec.site);
    by_name_[rec.name] = id;
    broadcast(wire::Location{rec});
    finish(id, op, kOk, rec.name);
  } else if (std::holds_alternative<wire::MoveReq>(op.request)) {
    move_took_effect(id, op, now);
  } else if (const auto* r = std::get_if<wire::Recover>(&op.request)) {
    if (m.code != kOk) {
      log_.push_back("recovery of stream \"" + r->stream.name + "\" at site " +
                     std::to_string(op.target) + " failed: " + m.text);
    } else {
      auto old = streams_.find(id);
      count_hosted(old == streams_.end() ? wire::kNoSite : old->second.site, r->stream.site);
      if (options_.max_streams_per_site && hosted_[r->stream.site] > options_.max_streams_per_site)
        log_.push_back("leader: site " + std::to_string(r->stream.site) + " hosts " +
                       std::to_string(hosted_[r->stream.site]) +
                       " streams, over its limit, after recovering stream \"" + r->stream.name +
                       "\" (a recovery is never refused)");
      if (old != streams_.end()) moved(id, old->second.site);
      streams_[id] = r->stream;
      flush_locations_of(id);
      // Every sender re-sends there at once, from what it knows was consumed.
      broadcast(wire::Location{r->stream}, op.target);
    }
  } else if (std::holds_alternative<wire::AttachReq>(op.request)) {
    if (m.code != kOk) {
      agents_.erase(op.agent);
      finish(id, op, m.code, m.text);
    } else {
      state_[id].agents.push_back(op.agent);
      finish(id, op, kOk, std::to_string(op.agent));
    }
  } else if (std::holds_alternative<wire::DestroyReq>(op.request)) {
    complete_destroy(id, m.final_in);
    finish(id, op, kOk, {});
  } else if (const auto* o = std::get_if<wire::OpenReq>(&op.request)) {
    if (m.code == kOk) {
      state_[id].opened.insert(o->opener);
      finish(id, op, kOk, streams_[id].name);
    } else {
      finish(id, op, m.code, m.text);
    }
  }
  next_op(id);
}

// A move took effect: the target has the stream (it said Installed, or Settled when asked
// after the source failed). The target answers the requester itself, when the stream's
// relocation handlers have run; should it fail before that answer gets through, the leader
// answers instead (sim seed 15). A repeat is dropped there. That holds for a move settled
// with its target too: its answer may still be on its way, or die with it (sim seeds
// 40003902, 127078: a restarted leader settled moves from site 0 whose targets then failed
// with the answer unsent behind a partition, and the shell waited for ever).
void LeaderCore::move_took_effect(StreamId id, const Op& op, Time now) {
  wire::StreamRecord& rec = streams_[id];
  count_hosted(rec.site, op.target);
  moved(id, rec.site);
  rec.site = op.target;
  rec.epoch = op.epoch;
  publish_move(rec, op.requester, now);
  done_request(op.requester);
  if (options_.failure_timeout > 0 && op.requester != wire::kNoSite && op.requester != op.target)
    delegated_[op.target].push_back({op.requester, op.req, rec, now});
}

void LeaderCore::complete_destroy(StreamId id, const std::vector<wire::InChannel>& final_in) {
  touch(id);
  auto sit = streams_.find(id);
  if (sit != streams_.end()) {
    wire::StreamRecord rec = sit->second;
    for (std::uint64_t agent : state_[id].agents) {
      auto ag = agents_.find(agent);
      if (ag == agents_.end()) continue;
      for (SiteId s : ag->second.visited)
        if (s != rec.site && live_site(s)) send(s, wire::Finalize{agent, id});
      agents_.erase(ag);
    }
    by_name_.erase(rec.name);
    count_hosted(rec.site, wire::kNoSite);
    streams_.erase(sit);
    rec.site = wire::kNoSite;
    rec.epoch = std::max(rec.epoch, state_[id].max_epoch) + 1;
    flush_locations_of(id);
    broadcast(wire::Location{rec, final_in});
  }
  state_[id].agents.clear();
}

// Senders must hear of a move at once (they re-send there); the other replicas serve queries,
// which may lag a little, so they get moves in batches: a fast-moving stream then costs a hop
// four messages on its critical path and a datagram per sender site, not one per site.
void LeaderCore::publish_move(const wire::StreamRecord& rec, SiteId requester, Time now) {
  const StreamState& st = state_[rec.id];
  bool batched = false;
  for (const auto& [id, p] : peers_) {
    // The target installed it and told the requester (MoveOut::requester); not site 0, this
    // process: it may have restarted since it asked, and then takes no word from the target
    // for a request of its old process (SiteCore::admit_control). Telling it costs no datagram.
    if (!p.live || id == rec.site || (id == requester && id != 0)) continue;
    // A durable stream's failure manager takes its checkpoints only from the host it knows
    // (SiteCore::admit_checkpoint): it hears of each move at once.
    const bool manages = (rec.flags & wire::kStreamDurable) && id == rec.failure_manager;
    if (p.shell || id == 0 || manages || st.watchers.contains(id)) {
      send(id, wire::Location{rec});
    } else {
      batched = true;
    }
  }
  if (!batched) return;
  // Not only the latest: every site the stream was at is told, so that a receiver whose word
  // is batched can place the copies such a site sent (a copy from a site its receiver never
  // heard of would be taken for a lie: Transport::on_placed). One record per site, the
  // latest: a stream bouncing between two sites costs two.
  std::vector<wire::StreamRecord>& pending = batched_locations_[rec.id];
  std::erase_if(pending, [&](const wire::StreamRecord& r) { return r.site == rec.site; });
  pending.push_back(rec);
  if (locations_due_ == proto::kNever) locations_due_ = now + options_.location_batch;
}

void LeaderCore::flush_locations() {
  locations_due_ = proto::kNever;
  while (!batched_locations_.empty()) flush_locations_of(batched_locations_.begin()->first);
}

void LeaderCore::flush_locations_of(StreamId stream) {
  auto pending = batched_locations_.find(stream);
  if (pending == batched_locations_.end()) return;
  auto st = state_.find(stream);
  for (const wire::StreamRecord& rec : pending->second) {
    for (const auto& [id, p] : peers_) {
      if (!p.live || p.shell || id == 0 || id == rec.site) continue;
      if (st != state_.end() && st->second.watchers.contains(id)) continue;
      send(id, wire::Location{rec});
    }
  }
  batched_locations_.erase(pending);
}

void LeaderCore::on_watch(SiteId from, const wire::Watch& m) {
  if (site::is_shell(from)) return;
  auto rec = streams_.find(m.stream);
  if (rec != streams_.end() && state_[m.stream].watchers.insert(from).second) {
    touch(m.stream);
    // Its replica may be a batch behind, which it will not get now that it watches: a sender
    // must start from where the stream is, and a receiver place every site it was at.
    auto pending = batched_locations_.find(m.stream);
    if (pending != batched_locations_.end())
      for (const wire::StreamRecord& r : pending->second)
        if (r.site != from) send(from, wire::Location{r});
  }
  // After every word the site was owed (a watcher got each move at once, the others in the
  // batches sent before): whatever came to it before it asked is judged against what it now
  // knows, and the site a move in flight goes to (destroyed or unknown streams included).
  if (m.ask != 0) send(from, wire::Placed{m.stream, m.ask, moving_to(m.stream)});
}

SiteId LeaderCore::moving_to(StreamId stream) const {
  auto it = in_flight_.find(stream);
  if (it == in_flight_.end() || it->second.asking != wire::kNoSite) return wire::kNoSite;
  const Op& op = it->second;
  const bool hands_over = std::holds_alternative<wire::CreateReq>(op.request) ||
                          std::holds_alternative<wire::MoveReq>(op.request) ||
                          std::holds_alternative<wire::Recover>(op.request);
  return hands_over ? op.target : wire::kNoSite;
}

// Only a shell says Leave (its sender rule, kShell): a site leaves by failing.
void LeaderCore::on_leave(SiteId shell) {
  auto it = peers_.find(shell);
  if (it == peers_.end()) return;
  it->second.live = 0;
  touch_peer(shell);
  drop_temp_streams(shell);
  broadcast(wire::PeerUpdate{it->second});
}

// A shell's -temp streams go with it.
void LeaderCore::drop_temp_streams(SiteId shell) {
  std::erase_if(waiters_, [shell](const Waiter& w) { return w.shell == shell; });
  for (auto& [id, st] : state_) {
    if (st.temp_owner != shell || !streams_.contains(id)) continue;
    touch(id);
    Op op;
    op.requester = wire::kNoSite;
    op.req = 0;
    op.stream = id;
    op.vetted = true;  // the session's own doing, as its -temp contract says
    op.request = wire::DestroyReq{0, streams_[id].name};
    if (st.busy) {
      st.queue.push_back(std::move(op));
    } else {
      st.busy = true;
      start(std::move(op));
    }
  }
}

void LeaderCore::shutdown_session() { broadcast(wire::Shutdown{0}); }

// ---------------------------------------------------------------------------------------
// Termination detection

void LeaderCore::start_wave(Time now) {
  (void)now;
  ++wave_;
  wave_open_ = true;
  next_probe_ = proto::kNever;
  wave_replies_.clear();
  for (const auto& [id, p] : peers_)
    if (p.live && !p.shell) send(id, wire::Probe{wave_});
  // After a failure the waiting shells are asked too: what they still hold is the only
  // account of their messages left (some were consumed at the failed site, and may be again).
  if (failures_seen_)
    for (const Waiter& w : waiters_) send(w.shell, wire::Probe{wave_});
}

void LeaderCore::on_probe_reply(SiteId from, const wire::ProbeReply& m, Time now) {
  if (!wave_open_ || m.wave != wave_) return;
  wave_replies_[from] = m;
  maybe_complete_wave(now);
}

void LeaderCore::maybe_complete_wave(Time now) {
  if (!wave_open_) return;
  for (const auto& [id, p] : peers_)
    if (p.live && !p.shell && !wave_replies_.contains(id)) return;
  if (failures_seen_)
    for (const Waiter& w : waiters_)
      if (!wave_replies_.contains(w.shell)) return;
  wave_open_ = false;
  bool all_idle = idle();
  bool requests_balanced = true;
  WaveTotals sums;
  for (const auto& [id, r] : wave_replies_) {
    auto p = peers_.find(id);
    if (p == peers_.end() || !p->second.live) continue;  // failed since it answered
    all_idle = all_idle && r.idle;
    sums.appended += r.appended;
    sums.consumed += r.consumed;
    sums.requests += r.requests;
    sums.held += r.held;
    for (const auto& sc : r.shells) sums.from_shell[sc.shell] += sc.consumed;
    if (!p->second.shell) {
      const std::uint64_t done = requests_done_by_[id];
      sums.requests_done += done;
      requests_balanced = requests_balanced && r.requests == done;
    }
  }
  // Balanced: every message the sites' handlers appended was consumed, every message each
  // waiting shell appended was consumed, and every request a handler sent was completed here.
  // Counters only grow, so the same balanced totals in two consecutive waves with everyone
  // idle mean nothing was in flight between them (Mattern's four-counter method).
  // After a failure the counts cannot balance (the failed site's are gone, and messages it
  // consumed without acknowledging are consumed again elsewhere), but every message not yet
  // consumed is still held by its sender until it is: nothing held anywhere, twice with the
  // same counters, means the same.
  bool balanced = requests_balanced;
  if (failures_seen_) {
    balanced = balanced && sums.held == 0;
  } else {
    balanced = balanced && sums.appended == sums.consumed;
    for (const Waiter& w : waiters_)
      balanced = balanced && sums.from_shell[w.shell] == w.appended;
  }
  if (all_idle && balanced && last_wave_ && *last_wave_ == sums) {
    for (const Waiter& w : waiters_) reply(w.shell, w.req, kOk, "quiescent");
    waiters_.clear();
    meta_dirty_ = true;
    last_wave_.reset();
    return;
  }
  last_wave_.reset();
  if (all_idle && balanced) last_wave_ = std::move(sums);
  if (waiters_.empty()) return;
  // A balanced wave is confirmed at once; an unbalanced one waits a little.
  next_probe_ = last_wave_ ? now : now + options_.probe_interval;
}

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

// ---------------------------------------------------------------------------------------
// Failures

void LeaderCore::check_liveness(Time now) {
  next_liveness_check_ = now + options_.failure_timeout / 8;
  // A target failing after its Installed is declared failed within the failure timeout
  // (and a check) of it; one alive that long has its answer through (a partition that long
  // would have it declared failed).
  for (auto it = delegated_.begin(); it != delegated_.end();) {
    std::erase_if(it->second,
                  [&](const Delegated& a) { return now - a.at > 2 * options_.failure_timeout; });
    it = it->second.empty() ? delegated_.erase(it) : std::next(it);
  }
  std::vector<SiteId> silent;
  for (const auto& [id, p] : peers_) {
    if (id == 0 || !p.live) continue;
    Time heard = last_heard_ ? last_heard_(id) : now;
    auto at = admitted_at_.find(id);
    if (at != admitted_at_.end()) heard = std::max(heard, at->second);
    if (now - heard > options_.failure_timeout) silent.push_back(id);
  }
  for (SiteId id : silent) declare_failed(id, now);
}

void LeaderCore::declare_failed(SiteId peer, Time now) {
  auto it = peers_.find(peer);
  if (peer == 0 || it == peers_.end() || !it->second.live) return;
  it->second.live = 0;
  touch_peer(peer);
  const bool first_failure = !failures_seen_;
  failures_seen_ = true;
  const bool shell = it->second.shell != 0;
  // Answers it owed (moves it was the target of) come from here.
  if (auto d = delegated_.find(peer); d != delegated_.end()) {
    for (const Delegated& a : d->second) {
      send(a.requester, wire::Location{a.rec});
      send(a.requester, wire::Reply{a.req, kOk, std::to_string(peer)});
      ++stats_.answers_repeated;
    }
    delegated_.erase(d);
  }
  log_.push_back(std::string(shell ? "shell " : "site ") + std::to_string(peer) +
                 " failed: not heard from for " +
                 std::to_string(options_.failure_timeout / proto::kMillisecond) + " ms");
  // Everyone fences it first (PeerUpdate goes ahead of any relocation on every channel), so
  // nothing it still sends is taken once its streams live elsewhere.
  broadcast(wire::PeerUpdate{it->second});
  if (shell) {
    drop_temp_streams(peer);
  } else {
    fail_site_ops(peer);
  }
  // A wave under way goes on without the failed peer; but the first failure changes what a
  // wave asks (the waiting shells too), and shells not probed would keep it open for ever
  // (sim seed 66): it starts again instead.
  if (wave_open_ && first_failure) {
    last_wave_.reset();
    start_wave(now);
    return;
  }
  maybe_complete_wave(now);
}

// The state site `peer` kept is gone: operations it was an end of fail, its streams go to
// their failure managers, and what it had cached or watched is forgotten.
void LeaderCore::fail_site_ops(SiteId peer) {
  touch_all();
  // First: a restarted site 0 is where its streams may be recovered, and needs their code.
  for (auto& [id, st] : state_) st.watchers.erase(peer);
  for (auto& [agent, info] : agents_) info.visited.erase(peer);
  // Site 0 "fails" only when this process restarted: it runs the same controllers again.
  if (peer != 0) controls_.erase(peer);
  std::vector<StreamId> affected;
  for (const auto& [id, op] : in_flight_) {
    if (!op.vetted) {  // still being checked: nothing happened yet anywhere
      auto rec = streams_.find(id);
      const bool create = std::holds_alternative<wire::CreateReq>(op.request);
      if (op.asking == peer || (rec != streams_.end() && rec->second.site == peer) ||
          (create && op.target == peer))
        affected.push_back(id);
      continue;
    }
    if (op.target == peer || op.source == peer || op.settle_with == peer) affected.push_back(id);
  }
  for (StreamId id : affected) fail_op(id, peer);
  std::vector<StreamId> lost;
  for (const auto& [id, rec] : streams_)
    if (rec.site == peer && !in_flight_.contains(id)) lost.push_back(id);
  for (StreamId id : lost) {
    StreamState& st = state_[id];
    if (st.busy) continue;  // a queued op cannot be waiting without one in flight
    st.busy = true;
    recover(id, peer);
  }
}

void LeaderCore::touch_all() {
  meta_dirty_ = true;
  for (const auto& [id, st] : state_) dirty_streams_.insert(id);
}

// An operation in flight on stream `id` lost one of its ends (`failed`). The outcomes are
// those doc/session.md "Failures" lists.
void LeaderCore::fail_op(StreamId id, SiteId failed) {
  auto fit = in_flight_.find(id);
  if (fit == in_flight_.end()) return;
  touch(id);
  Op& op = fit->second;
  const std::string why = "site " + std::to_string(failed) + " failed";
  if (!op.vetted) {
    Op done = std::move(op);
    in_flight_.erase(fit);
    checks_.erase(done.check);
    if (const auto* c = std::get_if<wire::CreateReq>(&done.request)) reserved_names_.erase(c->name);
    finish(id, done, code_of(Status::Code::kUnavailable),
           why + (done.asking == failed ? " during the policy check" : ""));
    auto rec = streams_.find(id);
    if (rec != streams_.end() && rec->second.site == failed)
      recover(id, failed);
    else
      next_op(id);
    return;
  }
  if (const auto* c = std::get_if<wire::CreateReq>(&op.request)) {
    reserved_names_.erase(c->name);
    Op done = std::move(op);
    in_flight_.erase(fit);
    finish(id, done, code_of(Status::Code::kUnavailable), why + " before stream \"" + c->name +
                                                               "\" was created there");
    next_op(id);
    return;
  }
  if (const auto* o = std::get_if<wire::OpenReq>(&op.request)) {
    // The stream's site failed before it acknowledged the open: its failure manager hosts it
    // now, and learns of every opener from the recovery (Recover::opened), this one too.
    Op done = std::move(op);
    in_flight_.erase(fit);
    state_[id].opened.insert(o->opener);
    finish(id, done, kOk, streams_[id].name);
    recover(id, failed);
    return;
  }
  if (std::holds_alternative<wire::Recover>(op.request)) {  // the failure manager failed too
    in_flight_.erase(fit);
    recover(id, failed);
    return;
  }
  if (std::holds_alternative<wire::AttachReq>(op.request)) {
    Op done = std::move(op);
    in_flight_.erase(fit);
    agents_.erase(done.agent);
    finish(id, done, code_of(Status::Code::kUnavailable), why + " during the attach");
    recover(id, failed);
    return;
  }
  if (std::holds_alternative<wire::DestroyReq>(op.request)) {
    // Its finalization handlers cannot run there; it is destroyed all the same.
    Op done = std::move(op);
    in_flight_.erase(fit);
    complete_destroy(id, {});
    finish(id, done, kOk, {});
    next_op(id);
    return;
  }
  if (std::holds_alternative<wire::MoveReq>(op.request)) {
    const SiteId other = failed == op.source ? op.target : op.source;
    if (op.settle_with == wire::kNoSite && other != failed && live_site(other)) {
      // Only the other end knows whether the stream got out (target) or is still in (source).
      op.settle_with = other;
      send(other, wire::Settle{id, op.epoch});
      return;
    }
    // Both ends failed: the stream is lost with them.
    Op done = std::move(op);
    in_flight_.erase(fit);
    finish(id, done, code_of(Status::Code::kUnavailable), why + " during the move");
    recover(id, failed);
    return;
  }
}

void LeaderCore::on_settled(SiteId from, const wire::Settled& m, Time now) {
  auto fit = in_flight_.find(m.stream);
  // From the site asked: sender_allowed.
  if (fit == in_flight_.end() || fit->second.epoch != m.epoch) return;
  Op op = std::move(fit->second);
  in_flight_.erase(fit);
  const StreamId id = m.stream;
  touch(id);
  const SiteId failed = from == op.target ? op.source : op.target;
  const std::string why = "site " + std::to_string(failed) + " failed during the move";
  if (m.present && from == op.target) {  // it got out in time: the move took effect
    ++stats_.moves_settled_at_target;
    move_took_effect(id, op, now);
    next_op(id);
    return;
  }
  if (m.present) {  // still at the source: the move is off, the stream goes on there
    finish(id, op, code_of(Status::Code::kUnavailable),
           why + "; stream \"" + streams_[id].name + "\" stays at site " + std::to_string(from));
    next_op(id);
    return;
  }
  finish(id, op, code_of(Status::Code::kUnavailable), why);
  recover(id, failed);
}

// The stream's state died with `failed`: it starts over at its failure manager (site 0 if
// that is the failed site or gone too), under a new epoch and a new numbering of its
// outgoing channels. The stream stays busy until the failure manager reports it installed.
void LeaderCore::recover(StreamId id, SiteId failed) {
  touch(id);
  auto sit = streams_.find(id);
  if (sit == streams_.end()) {
    next_op(id);
    return;
  }
  StreamState& st = state_[id];
  st.busy = true;
  wire::Recover r;
  r.stream = sit->second;
  r.failed_site = failed;
  const SiteId fm = r.stream.failure_manager;
  r.stream.site = live_site(fm) ? fm : 0;
  st.max_epoch = std::max(st.max_epoch, r.stream.epoch) + 1;
  r.stream.epoch = st.max_epoch;
  // A durable stream resumes from its checkpoint, numbering included: its receivers drop what
  // they already have. Any other starts over, and so does its numbering.
  if (!(r.stream.flags & wire::kStreamDurable))
    r.stream.origin = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(r.stream.epoch, std::numeric_limits<std::uint32_t>::max()));
  r.agents = st.agents;
  r.opened.assign(st.opened.begin(), st.opened.end());
  for (std::uint64_t agent : r.agents) ship_code(agent, r.stream.site);
  Op op;
  op.requester = wire::kNoSite;
  op.stream = id;
  op.vetted = true;  // a recovery is no one's request: no policy stops it
  op.epoch = r.stream.epoch;
  op.target = r.stream.site;
  send(op.target, r);
  op.request = std::move(r);
  in_flight_[id] = std::move(op);
}

void LeaderCore::on_timeout(Time now) {
  if (now >= next_liveness_check_) {
    meta_dirty_ = true;  // delegated answers expire
    check_liveness(now);
  }
  if (locations_due_ != proto::kNever && now >= locations_due_) flush_locations();
  if (next_probe_ != proto::kNever && now >= next_probe_) start_wave(now);
}

// ---------------------------------------------------------------------------------------
// Durable state

namespace {

SavedOp save_op(SiteId requester, std::uint64_t req, const wire::ControlMessage& request,
                StreamId stream, std::uint64_t agent, std::uint64_t epoch, SiteId target,
                SiteId settle_with, SiteId source) {
  SavedOp o{requester, req, {}, stream, agent, epoch, target, settle_with, source};
  wire::encode_control(request, &o.request);
  return o;
}

template <class T>
proto::StoredRecord make_record(std::uint64_t key, std::uint32_t boot, std::uint64_t version,
                                const T& v) {
  proto::StoredRecord r;
  r.key = key;
  r.epoch = boot;
  r.version = version;
  wire::encode_fields(v, &r.value);
  return r;
}

}  // namespace

void LeaderCore::take_changes(std::vector<proto::StoredRecord>* records,
                              std::vector<SiteId>* peers) {
  if (!meta_dirty_) return;
  meta_dirty_ = false;
  auto saved = [](const Op& op) {
    SavedOp o = save_op(op.requester, op.req, op.request, op.stream, op.agent, op.epoch, op.target,
                        op.settle_with, op.source);
    o.vetted = op.vetted ? 1 : 0;
    return o;
  };
  for (StreamId id : dirty_streams_) {
    const std::uint64_t key = kStreamKeys | id;
    auto st = state_.find(id);
    auto rec = streams_.find(id);
    auto op = in_flight_.find(id);
    if (st == state_.end() && rec == streams_.end() && op == in_flight_.end()) {
      records->push_back({key, boot_, ++writes_, {}});  // gone
      continue;
    }
    SavedStream ss;
    if (rec != streams_.end()) {
      ss.created = 1;
      ss.record = rec->second;
    }
    std::vector<std::uint64_t> agents;
    if (st != state_.end()) {
      const StreamState& s = st->second;
      ss.agents = s.agents;
      agents = s.agents;
      for (const Op& q : s.queue) ss.queue.push_back(saved(q));
      ss.busy = s.busy ? 1 : 0;
      ss.temp_owner = s.temp_owner;
      ss.watchers.assign(s.watchers.begin(), s.watchers.end());
      ss.opened.assign(s.opened.begin(), s.opened.end());
      ss.max_epoch = s.max_epoch;
    }
    if (op != in_flight_.end()) {
      ss.in_flight.push_back(saved(op->second));
      if (op->second.agent) agents.push_back(op->second.agent);
    }
    for (std::uint64_t agent : agents) {
      auto a = agents_.find(agent);
      if (a == agents_.end()) continue;
      const std::set<SiteId>& visited = a->second.visited;
      ss.code.push_back({a->second.code, std::vector<SiteId>(visited.begin(), visited.end())});
    }
    records->push_back(make_record(key, boot_, ++writes_, ss));
  }
  dirty_streams_.clear();
  for (SiteId site : dirty_peers_) {
    auto p = peers_.find(site);
    if (p == peers_.end()) continue;
    SavedPeer sp{p->second, 0, {}};
    if (auto c = controls_.find(site); c != controls_.end()) sp.controls = c->second;
    for (const auto& [nonce, id] : join_nonces_)
      if (id == site) sp.nonce = nonce;
    records->push_back(make_record(kPeerKeys | site, boot_, ++writes_, sp));
    peers->push_back(site);
  }
  dirty_peers_.clear();
  SavedMeta meta;
  meta.boot = boot_;
  meta.next_site = next_site_;
  meta.next_shell = next_shell_;
  meta.next_stream = next_stream_;
  meta.next_agent = next_agent_;
  meta.failures_seen = failures_seen_ ? 1 : 0;
  for (const Waiter& w : waiters_) meta.waiters.push_back({w.shell, w.req, w.appended});
  for (const auto& [target, list] : delegated_)
    for (const Delegated& d : list) meta.delegated.push_back({target, d.requester, d.req, d.rec});
  for (const auto& [site, n] : requests_done_by_) meta.requests_done.push_back({site, n});
  records->push_back(make_record(kMetaKey, boot_, ++writes_, meta));
}

Status LeaderCore::restore(const std::vector<proto::StoredRecord>& records) {
  auto bad = [](const char* what, std::uint64_t key) {
    return Status::error(Status::Code::kMalformed, std::string("leader state: unreadable ") + what +
                                                       " record " + std::to_string(key));
  };
  auto op_of = [](const SavedOp& o, Op* op) {
    auto m = wire::decode_control(o.request);
    if (!m.ok()) return false;
    *op = Op{o.requester, o.req,    std::move(*m), o.stream, o.agent,
             o.epoch,     o.target, o.settle_with, o.source};
    op->vetted = o.vetted != 0;
    return true;
  };
  bool have_meta = false;
  for (const proto::StoredRecord& r : records) {
    const std::uint64_t kind = r.key & kKeyKind;
    const std::uint64_t id = r.key & ~kKeyKind;
    if (kind == kChannelKeys) continue;
    if (kind == kMetaKey && id == 0) {
      SavedMeta meta;
      if (!wire::decode_fields(r.value, &meta).ok()) return bad("meta", r.key);
      have_meta = true;
      boot_ = meta.boot;
      next_site_ = meta.next_site;
      next_shell_ = meta.next_shell;
      next_stream_ = meta.next_stream;
      next_agent_ = meta.next_agent;
      failures_seen_ = meta.failures_seen != 0;
      for (const SavedWaiter& w : meta.waiters) waiters_.push_back({w.shell, w.req, w.appended});
      for (const SavedDelegated& d : meta.delegated)
        delegated_[d.target].push_back({d.requester, d.req, d.rec, 0});
      for (const SavedCount& c : meta.requests_done) requests_done_by_[c.site] = c.count;
    } else if (kind == kPeerKeys) {
      SavedPeer sp;
      if (!wire::decode_fields(r.value, &sp).ok()) return bad("peer", r.key);
      // Site 0's controllers are those of this process's site 0 too (the same files): their
      // checks go on from the start, before it tells them again.
      if (sp.controls.session_events || sp.controls.site_events)
        controls_[sp.peer.site] = sp.controls;
      if (sp.peer.site == 0) continue;  // this process's own: set_own_address()
      peers_[sp.peer.site] = sp.peer;
      if (sp.nonce) join_nonces_[sp.nonce] = sp.peer.site;
    } else if (kind == kStreamKeys) {
      if (r.value.empty()) continue;  // gone
      SavedStream ss;
      if (!wire::decode_fields(r.value, &ss).ok()) return bad("stream", r.key);
      const StreamId sid = id;
      if (ss.created) {
        streams_[sid] = ss.record;
        count_hosted(wire::kNoSite, ss.record.site);
        by_name_[ss.record.name] = sid;
      }
      StreamState& st = state_[sid];
      st.agents = ss.agents;
      for (const SavedOp& o : ss.queue)
        if (!op_of(o, &st.queue.emplace_back())) return bad("stream", r.key);
      st.busy = ss.busy != 0;
      st.temp_owner = ss.temp_owner;
      st.watchers.insert(ss.watchers.begin(), ss.watchers.end());
      st.opened.insert(ss.opened.begin(), ss.opened.end());
      st.max_epoch = ss.max_epoch;
      for (const SavedOp& o : ss.in_flight) {
        Op op;
        if (!op_of(o, &op)) return bad("stream", r.key);
        if (const auto* c = std::get_if<wire::CreateReq>(&op.request))
          reserved_names_.insert(c->name);
        in_flight_[sid] = std::move(op);
      }
      for (const SavedAgent& a : ss.code) {
        AgentInfo& info = agents_[a.code.agent];
        info.code = a.code;
        info.visited.insert(a.visited.begin(), a.visited.end());
      }
    }
  }
  if (!have_meta) return Status::error(Status::Code::kMalformed, "leader state: no meta record");
  ++boot_;
  return Status::ok_status();
}

void LeaderCore::resume(Time now) {
  meta_dirty_ = true;
  for (const auto& [id, p] : peers_) {
    dirty_peers_.insert(id);
    if (id == 0 || !p.live) continue;
    admitted_at_[id] = now;
    admit_(id);
  }
  if (options_.failure_timeout > 0) next_liveness_check_ = now + options_.failure_timeout / 8;
  for (auto& [target, list] : delegated_)
    for (Delegated& d : list) d.at = now;
  // Site 0's process is new: whatever its old one held is gone, as if it had failed. Its
  // peers need no telling (it is the same site, and a newer boot resets their paths to it).
  failures_seen_ = true;
  // Its counters start again from 0 (quiescence compares them with these), and the requests
  // its old process's handlers made are nobody's now: their answers go nowhere.
  requests_done_by_.erase(0);
  for (auto& [id, op] : in_flight_)
    if (op.requester == 0) op.requester = wire::kNoSite;
  for (auto& [id, st] : state_)
    for (Op& op : st.queue)
      if (op.requester == 0) op.requester = wire::kNoSite;
  if (auto d = delegated_.find(0); d != delegated_.end()) {
    for (const Delegated& a : d->second) {
      send(a.requester, wire::Location{a.rec});
      send(a.requester, wire::Reply{a.req, kOk, "0"});
    }
    delegated_.erase(d);
  }
  // Moves the old process had not yet told every replica (batched_locations_, not kept) are
  // told now: every replica hears where every stream is.
  for (const auto& [id, rec] : streams_) broadcast(wire::Location{rec});
  fail_site_ops(0);
  retry_checks();
  log_.push_back("leader: resumed the session from its durable state (boot " +
                 std::to_string(boot_) + ", " + std::to_string(streams_.size()) + " streams, " +
                 std::to_string(peers_.size() - 1) + " peers)");
  if (!waiters_.empty()) start_wave(now);
}

}  // namespace mstream::leader
