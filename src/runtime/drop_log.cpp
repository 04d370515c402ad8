#include "runtime/drop_log.hpp"

#include <cinttypes>
#include <cstdio>

namespace mstream::runtime {

std::optional<std::string> DropLog::check(const proto::TransportStats& s,
                                          std::uint64_t refused_control, const char* who,
                                          proto::Time now) {
  const std::uint64_t total = s.forged_in + s.replayed_in + s.unsealed_in + refused_control +
                              s.impostor_frames + s.wrong_site_frames;
  if (total == said_) return std::nullopt;
  if (said_any_ && now - last_ < proto::kSecond) return std::nullopt;
  said_any_ = true;
  last_ = now;
  said_ = total;
  char line[512];
  std::snprintf(line, sizeof line,
                "mstream %s: dropped datagrams that did not authenticate: %" PRIu64
                " forged or tampered with, %" PRIu64 " replayed, %" PRIu64
                " unsealed; control messages their sender may not send: %" PRIu64
                "; DATA a member sent in the name of a stream its site does not host: %" PRIu64
                " of control streams, %" PRIu64 " of user streams (so far)\n",
                who, s.forged_in, s.replayed_in, s.unsealed_in, refused_control,
                s.impostor_frames, s.wrong_site_frames);
  return std::string(line);
}

}  // namespace mstream::runtime
