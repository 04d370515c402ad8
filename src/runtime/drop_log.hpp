#pragma once
// What the daemons (`mstream leader`, `mstream site`) say on stderr about what they dropped
// because someone lied (doc/security.md): datagrams that did not authenticate (forged or
// tampered with, replayed, unsealed), control messages their sender may not send (the sender
// rules), and DATA a member sent in the name of a stream its site does not host (a control
// stream: impostor_frames; a user stream the leader places elsewhere: wrong_site_frames).
// Each of these is 0 in an honest session, so any of them is worth a line: an attack, or a
// peer with another session's secret. A line says the totals so far, at most once a second,
// and only when one of them grew.
// Thread-safety: none; one per daemon loop.

#include <cstdint>
#include <optional>
#include <string>

#include "proto/transport.hpp"
#include "proto/types.hpp"

namespace mstream::runtime {

class DropLog {
 public:
  // The line to print at `now` (ending in a newline), if any. `who`: "leader" or "site".
  std::optional<std::string> check(const proto::TransportStats& s, std::uint64_t refused_control,
                                   const char* who, proto::Time now);

 private:
  std::uint64_t said_ = 0;
  proto::Time last_ = 0;
  bool said_any_ = false;
};

}  // namespace mstream::runtime
