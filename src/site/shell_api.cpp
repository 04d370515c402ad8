#include "site/shell_api.hpp"

#include <algorithm>
#include <chrono>

namespace mstream::site {

ShellApi::ShellApi(SiteCore* core, Pump pump, Write write, std::chrono::nanoseconds timeout)
    : core_(core), pump_(std::move(pump)), write_(std::move(write)), timeout_(timeout) {}

// A wait that ended without its answer: a timeout says what was awaited; a failure of the
// session (a local site died) says that instead.
Status ShellApi::waited(const Status& why, const std::string& timeout_text) {
  if (why.code() == Status::Code::kUnavailable && why.message().empty())
    return Status::error(Status::Code::kUnavailable, timeout_text);
  return why;
}

Result<wire::Reply> ShellApi::call(wire::ControlMessage request) {
  const std::uint64_t req = core_->send_request(std::move(request));
  std::optional<wire::Reply> reply;
  Status st = pump_([&] { return (reply = core_->take_reply(req)).has_value(); }, timeout_);
  if (!st.ok()) return waited(st, "no answer from the session leader");
  if (reply->code != 0) return Status::error(static_cast<Status::Code>(reply->code), reply->text);
  return *reply;
}

Result<std::string> ShellApi::stream_create(const std::string& name,
                                            const tcl::CreateOptions& options) {
  wire::CreateReq r;
  r.name = name;
  r.site = options.site.value_or(0);  // a shell's streams default to site 0
  r.failure_manager = options.failure_manager.value_or(wire::kNoSite);
  r.flags = (options.temp ? wire::kStreamTemp : 0) | (options.durable ? wire::kStreamDurable : 0);
  auto reply = call(r);
  if (!reply.ok()) return reply.status();
  return name;
}

// The leader has the session's, the stream's site's and the stream's controllers vet it
// (seed 004 figure 3); an open handle is kept, as a handle is, until the stream goes.
Status ShellApi::stream_open(const std::string& name) {
  if (Status s = Directory::check_user_stream(name); !s.ok()) return s;
  const wire::StreamRecord* rec = core_->directory().find(name);
  if (rec && core_->opened(rec->id)) return Status::ok_status();
  auto reply = call(wire::OpenReq{0, name, core_->sender_id()});
  if (!reply.ok()) return reply.status();
  if ((rec = core_->directory().find(name))) core_->note_opened(rec->id);
  return Status::ok_status();
}

Result<tcl::AppendAnswer> ShellApi::stream_append(const std::string& name, std::string message,
                                                  bool sync) {
  // Appending goes through an open, as in the paper: append_from opens the stream first,
  // and this waits for the answer as for room in a full buffer; a denial is the error.
  Result<proto::Seq> seq = core_->append_from(core_->sender_id(), name, message, sync);
  if (!seq.ok() && seq.status().code() == Status::Code::kWouldBlock) {
    // The channel's buffer is full of unconsumed messages: the script waits for room.
    Status ok = pump_(
        [&] {
          seq = core_->append_from(core_->sender_id(), name, message, sync);
          return seq.ok() || seq.status().code() != Status::Code::kWouldBlock;
        },
        timeout_);
    if (!ok.ok()) return waited(ok, "stream \"" + name + "\" consumes nothing: append timed out");
  }
  if (!seq.ok()) return seq.status();
  if (!sync) return tcl::AppendAnswer{};
  const wire::StreamRecord* rec = core_->directory().find(name);
  const StreamId to = rec ? rec->id : 0;
  std::optional<SiteCore::SyncAnswer> result;
  // A stream destroyed before it consumed the message never answers: the wait ends when the
  // directory says so (the message was discarded).
  Status got = pump_(
      [&] {
        return (result = core_->take_sync_result(to, *seq)).has_value() ||
               core_->directory().destroyed(to);
      },
      timeout_);
  if (!got.ok()) return waited(got, "no result for the -sync append to \"" + name + "\"");
  if (!result) return Directory::no_such_stream(name);
  tcl::AppendAnswer answer{std::move(result->result), {}};
  answer.failure = failure_of(name, result->site, std::move(result->failure));
  return answer;
}

std::optional<tcl::HandlerFailure> ShellApi::failure_of(const std::string& stream,
                                                        tcl::SiteNumber site,
                                                        wire::HandlerFailure f) {
  if (f.agent == 0) return std::nullopt;
  return tcl::HandlerFailure{stream, f.agent, site, std::move(f.event), std::move(f.message)};
}

Result<tcl::MoveAnswer> ShellApi::stream_move(const std::string& name, tcl::SiteNumber site) {
  auto reply = call(wire::MoveReq{0, name, site});
  if (!reply.ok()) return reply.status();
  // From the target, which ran the arrival's handlers (the leader's own answer has none).
  return tcl::MoveAnswer{site, failure_of(name, site, std::move(reply->failure))};
}

Result<tcl::SiteNumber> ShellApi::stream_location(const std::string& name) {
  if (name.empty())
    return Status::error(Status::Code::kInvalidArgument,
                         "stream_location: give a stream name (a shell has no stream of its own)");
  return core_->directory().location_of(name);
}

// A script runs top to bottom: the destroy takes effect after the stream consumed every
// message this shell appended to it before (the FIFO its appends have among themselves).
Status ShellApi::stream_destroy(const std::string& name) {
  if (const wire::StreamRecord* rec = core_->directory().find(name)) {
    const StreamId id = rec->id;
    Status drained = pump_(
        [&] {
          return !core_->has_unconsumed(core_->sender_id(), id) ||
                 core_->directory().destroyed(id);
        },
        timeout_);
    if (!drained.ok())
      return waited(drained, "stream_destroy: stream \"" + name +
                                 "\" has not consumed this shell's earlier messages");
  }
  auto reply = call(wire::DestroyReq{0, name});
  return reply.ok() ? Status::ok_status() : reply.status();
}

Result<std::string> ShellApi::register_agent(const std::string& stream, const std::string& args,
                                             const std::string& body, const std::string& cpp_type,
                                             bool controller) {
  if (!cpp_type.empty() && !find_agent_type(cpp_type))
    return Status::error(Status::Code::kNotFound, "no such agent type \"" + cpp_type + "\"");
  auto reply = call(
      wire::AttachReq{0, stream, args, body, cpp_type, controller ? wire::kAgentController : 0});
  if (!reply.ok()) return reply.status();
  return reply->text;
}

Status ShellApi::agent_exit() {
  return Status::error(Status::Code::kInvalidArgument, "agent_exit: not in a handler");
}

void ShellApi::write_stdout(std::string_view text, bool nonewline) {
  partial_.append(text);
  if (nonewline) return;
  write_(partial_);
  partial_.clear();
}

Status ShellApi::wait_quiescent(std::chrono::nanoseconds timeout) {
  const auto& c = core_->counters();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // The leader waits until the sites consumed as many of our messages as we say; messages
    // refused by a stream destroyed while we wait are never consumed: we say so again.
    const std::uint64_t discarded = c.discarded_own;
    const std::uint64_t req = core_->send_request(wire::QuiesceReq{0, c.appended - discarded});
    std::optional<wire::Reply> reply;
    const auto left = std::max<std::chrono::nanoseconds>(
        deadline - std::chrono::steady_clock::now(), std::chrono::nanoseconds{0});
    Status st = pump_(
        [&] {
          return (reply = core_->take_reply(req)).has_value() || c.discarded_own != discarded;
        },
        left);
    if (!st.ok()) return waited(st, "the session did not become quiescent in time");
    if (reply) return Status::ok_status();
  }
}

Status ShellApi::wait_released(std::chrono::nanoseconds timeout) {
  Status st = pump_([&] { return core_->all_released(); }, timeout);
  return st.ok() ? st : waited(st, "messages still unconsumed");
}

void ShellApi::leave() { core_->send_request(wire::Leave{0}); }

}  // namespace mstream::site
