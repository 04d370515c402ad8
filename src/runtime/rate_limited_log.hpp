#pragma once
// Logs network complaints (malformed datagrams, rejected frames) to stderr at most once per
// interval, with a count of what was suppressed: hostile traffic must not turn into a flood
// of log lines, nor cost a write() per datagram (DESIGN.md guarantee 7: counted and logged).
// Thread-safety: none.

#include <cstdint>
#include <cstdio>
#include <string_view>

#include "proto/types.hpp"

namespace mstream::runtime {

class RateLimitedLog {
 public:
  RateLimitedLog(const char* what, proto::Time interval) : what_(what), interval_(interval) {}

  void note(std::string_view detail, proto::Time now) {
    ++pending_;
    if (now < next_allowed_) return;
    std::fprintf(stderr, "mstream: %s: %.*s (%llu since last report)\n", what_,
                 static_cast<int>(detail.size()), detail.data(),
                 static_cast<unsigned long long>(pending_));
    pending_ = 0;
    next_allowed_ = now + interval_;
  }

 private:
  const char* what_;
  proto::Time interval_;
  proto::Time next_allowed_ = 0;
  std::uint64_t pending_ = 0;
};

}  // namespace mstream::runtime
