#pragma once
// How simulator summaries print times and counters: one format for every scenario.

#include <cstdint>
#include <cstdio>
#include <string>

#include "proto/types.hpp"

namespace mstream::sim {

inline std::string ms(proto::Time t) {
  if (t == proto::kNever) return "never";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fms", static_cast<double>(t) / proto::kMillisecond);
  return buf;
}

inline std::string kv(const char* name, std::uint64_t v) {
  return std::string(" ") + name + "=" + std::to_string(v);
}

}  // namespace mstream::sim
