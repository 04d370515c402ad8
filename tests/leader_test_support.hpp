#pragma once
// A LeaderCore driven by hand in a test: members join it as its join exchange would.

#include <cstdint>

#include <gtest/gtest.h>

#include "leader/leader_core.hpp"
#include "wire/join.hpp"

namespace mstream::leader {

// Joins a member with `nonce` in `role` and returns the site id the leader gave it.
inline proto::SiteId join_leader(LeaderCore& leader, std::uint64_t nonce,
                                 wire::JoinMessage::Role role) {
  wire::JoinMessage m;
  m.op = wire::JoinMessage::Op::kRequest;
  m.nonce = nonce;
  m.role = role;
  wire::JoinMessage reply;
  EXPECT_TRUE(leader.on_join(m, "127.0.0.1:1", &reply));
  return reply.site;
}

}  // namespace mstream::leader
