#pragma once
// What leader_core.cpp and the files beside it (quiescence, policy, failures, durable_state)
// share inside the leader.

#include <cstdint>

#include "mstream/status.hpp"

namespace mstream::leader {

inline constexpr std::uint64_t kOk = 0;
inline std::uint64_t code_of(Status::Code c) { return static_cast<std::uint64_t>(c); }

}  // namespace mstream::leader
