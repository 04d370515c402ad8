// Handler errors: where each one goes (COMMANDS.md stream_append -sync and stream_move). A
// handler error is reported from the site where it happened as an ErrorReport to the leader,
// which forwards it to every shell but the one the site told itself: the shell whose message
// (or move) the handler ran for. That shell hears of it directly, ahead of the message's
// consumption, or, when it waits for the operation (a -sync append, a move), in the answer it
// waits for (SyncResult, Reply), where the first failure in attach order becomes the
// command's Tcl error.

#include "site/handler_errors.hpp"

#include <algorithm>

#include "site/site_core.hpp"

namespace mstream::site {

std::string error_text(std::string_view message, std::string_view error_info) {
  std::string text(message);
  if (error_info.empty() || error_info == message) return text;
  if (error_info.substr(0, message.size()) == message &&
      error_info.substr(message.size(), 1) == "\n") {
    text.append(error_info.substr(message.size()));
  } else {
    text.append("\n").append(error_info);
  }
  return text;
}

namespace {
// The shell that `sender` (a control stream) is, or kNoSite.
SiteId shell_of(StreamId sender) {
  return is_control(sender) && is_shell(control_site(sender)) ? control_site(sender)
                                                              : wire::kNoSite;
}
}  // namespace

// Raised: the shell gets it in the answer it waits for; a report to it would say it twice.
void SiteCore::tell_shells(wire::ErrorReport report, StreamId sender, bool raised) {
  report.told = shell_of(sender);
  if (options_.log_forwarded_errors) report_error(report.text);
  if (report.told != wire::kNoSite && !raised) send_control(report.told, sender, report);
  send_control(0, kLeaderStream, report);
}

void SiteCore::report_handler_error(StreamId id, const std::string& stream, std::uint64_t agent,
                                    const char* event, const tcl::HandlerOutcome& out,
                                    StreamId sender, bool raised) {
  ++counters_.handler_errors;
  std::string text = "error in " + std::string(event) + " handler: stream \"" + stream +
                     "\", agent " + std::to_string(agent) + ", site " +
                     std::to_string(options_.self) + ": " + error_text(out.result, out.error_info);
  tell_shells(wire::ErrorReport{std::move(text), id, agent}, sender, raised);
}

wire::SyncResult SiteCore::sync_result(
    StreamId id, const std::string& stream, proto::Seq seq, StreamId sender,
    std::vector<std::pair<std::uint64_t, tcl::HandlerOutcome*>> ran) {
  wire::SyncResult answer{id, seq, {}, {}};
  bool failed = false;
  for (auto& [agent, out] : ran) {
    if (out->ok) continue;
    // The first in attach order names the -sync append's error; the others are reported.
    const bool raised = !failed;
    if (raised) answer.failure = wire::HandlerFailure{agent, "append", out->result};
    failed = true;
    report_handler_error(id, stream, agent, "append", *out, sender, raised);
  }
  std::vector<std::string> results;  // COMMANDS.md stream_append: the error's -results
  for (auto& [agent, out] : ran) {
    if (!out->ok) continue;
    if (failed) results.push_back(std::to_string(agent));
    results.push_back(std::move(out->result));
  }
  answer.result = tcl::merge_list(results);
  return answer;
}

wire::HandlerFailure SiteCore::report_arrival_failures(StreamId id, const std::string& stream,
                                                       const std::vector<std::uint64_t>& agents,
                                                       std::vector<ArrivalFailure> failures,
                                                       SiteId requester) {
  const auto position = [&](std::uint64_t agent) {
    return std::find(agents.begin(), agents.end(), agent) - agents.begin();
  };
  std::stable_sort(failures.begin(), failures.end(), [&](const auto& a, const auto& b) {
    return position(a.agent) < position(b.agent);
  });
  // A shell that waits for the move raises the first; a handler that moved it hears nothing
  // (its request was carried out), so its errors go to every shell.
  const bool shell_waits = requester != wire::kNoSite && is_shell(requester);
  const StreamId sender = shell_waits ? control_stream(requester) : 0;
  wire::HandlerFailure first;
  for (std::size_t i = 0; i < failures.size(); ++i) {
    const ArrivalFailure& f = failures[i];
    const bool raised = shell_waits && i == 0;
    if (raised) first = wire::HandlerFailure{f.agent, f.event, f.out->result};
    report_handler_error(id, stream, f.agent, f.event, *f.out, sender, raised);
  }
  return first;
}

}  // namespace mstream::site
