#pragma once
// What site_core.cpp and the files beside it (deliveries, operations, durable, policy) share
// inside the site layer.

#include <string>

#include "proto/types.hpp"
#include "tcl/tcl_host.hpp"
#include "wire/control.hpp"

namespace mstream::site {

inline wire::Bytes encode(const wire::ControlMessage& m) {
  wire::Bytes b;
  encode_control(m, &b);
  return b;
}

// How long a sender waits before re-sending to a site that refused a stream it believes is
// there (the stream is still being installed, or our replica is a step behind).
inline constexpr proto::Time kRejectRetry = 20 * proto::kMillisecond;

// A privileged handler (the stream controller's) that ran and did not return `allow` keeps
// the event from the other agents' handlers (COMMANDS.md, Policy).
inline bool vetoes(const tcl::HandlerOutcome& out) {
  return out.ran && (!out.ok || out.result != "allow");
}

}  // namespace mstream::site
