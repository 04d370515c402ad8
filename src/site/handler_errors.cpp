// Handler errors: how each is reported from the site where it happened (an ErrorReport to the
// leader, which forwards it to every shell but the one the site told itself: the shell whose
// message the handler ran for, which hears of it directly, ahead of the message's
// consumption).

#include "site/handler_errors.hpp"

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

void SiteCore::report_handler_error(StreamId id, const std::string& stream, std::uint64_t agent,
                                    const char* event, const tcl::HandlerOutcome& out,
                                    StreamId sender) {
  ++counters_.handler_errors;
  std::string text = "error in " + std::string(event) + " handler: stream \"" + stream +
                     "\", agent " + std::to_string(agent) + ", site " +
                     std::to_string(options_.self) + ": " + error_text(out.result, out.error_info);
  if (options_.log_forwarded_errors) report_error(text);
  wire::ErrorReport report{text, id, agent};
  // The shell whose message it was hears it straight from here, ahead of the message's
  // consumption ack: through the leader it could come after the shell stopped waiting.
  if (is_control(sender) && is_shell(control_site(sender))) {
    report.told = control_site(sender);
    send_control(report.told, sender, report);
  }
  send_control(0, kLeaderStream, report);
}

}  // namespace mstream::site
