// Joining a secured session (wire/join.hpp, doc/security.md): a joiner that holds the session
// secret gets an id and the traffic key after hello, challenge and sealed request; one that
// does not, or joins unsecured, or replays someone's request, gets a clear refusal or nothing.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "leader/leader_node.hpp"
#include "proto/joiner.hpp"
#include "sim/memory_store.hpp"

namespace mstream::leader {
namespace {

using Kind = proto::Joiner::Outcome::Kind;

wire::Key key_of(std::uint8_t b) {
  wire::Key k;
  k.fill(b);
  return k;
}

const wire::Key kSecret = key_of(0x11);

std::unique_ptr<LeaderNode> make_leader(std::optional<JoinSecurity> security,
                                        std::shared_ptr<proto::DurableStore> state = nullptr) {
  LeaderOptions o;
  o.failure_timeout = 0;
  o.state = std::move(state);
  auto node = std::make_unique<LeaderNode>(site::SiteOptions::with_mtu(0, 1400), o, security);
  EXPECT_TRUE(node->open_state(0).ok());
  return node;
}

JoinSecurity keys(std::uint8_t cookie = 0x33) {
  return JoinSecurity{wire::join_key_of(kSecret), key_of(0x22), key_of(cookie)};
}

// Runs the exchange to its end (at most a few round trips); the last request sent goes to
// *last_request.
proto::Joiner::Outcome run_join(LeaderNode& leader, proto::Joiner& j,
                                wire::Bytes* last_request = nullptr) {
  for (int round = 0; round < 4; ++round) {
    wire::Bytes reply;
    if (last_request) *last_request = j.request();
    if (!leader.on_join(j.request(), "127.0.0.1:9", 0, &reply)) return {};
    proto::Joiner::Outcome out = j.on_reply(reply);
    if (out.kind != Kind::kResend) return out;
  }
  return {};
}

TEST(SecuredJoin, AJoinerWithTheSecretGetsAnIdAndTheTrafficKey) {
  auto leader = make_leader(keys());
  proto::Joiner j(1, wire::JoinMessage::Role::kSite, 100, wire::join_key_of(kSecret));
  EXPECT_EQ(wire::decode_join(j.request())->op, wire::JoinMessage::Op::kHello);
  proto::Joiner::Outcome out = run_join(*leader, j);
  ASSERT_EQ(out.kind, Kind::kAccepted) << out.reason;
  EXPECT_EQ(out.site, 1u);
  ASSERT_TRUE(out.traffic_key.has_value());
  EXPECT_EQ(*out.traffic_key, key_of(0x22));
  EXPECT_TRUE(leader->leader().peers().contains(1));
}

TEST(SecuredJoin, AnotherSecretIsRefusedClearlyAndAdmitsNobody) {
  auto leader = make_leader(keys());
  proto::Joiner j(2, wire::JoinMessage::Role::kSite, 100, wire::join_key_of(key_of(0x99)));
  proto::Joiner::Outcome out = run_join(*leader, j);
  ASSERT_EQ(out.kind, Kind::kDoubted);
  EXPECT_NE(out.reason.find("did not authenticate"), std::string::npos) << out.reason;
  EXPECT_EQ(j.doubts_in_a_row(), 1u);
  // Asking again gets the same answer, counted, and admits nobody either.
  for (std::uint32_t n = 2; n <= 3; ++n) {
    wire::Bytes reply;
    ASSERT_TRUE(leader->on_join(j.request(), "127.0.0.1:9", 0, &reply));
    EXPECT_EQ(j.on_reply(reply).kind, Kind::kDoubted);
    EXPECT_EQ(j.doubts_in_a_row(), n);
  }
  EXPECT_EQ(leader->leader().peers().size(), 1u);  // site 0 alone
}

TEST(SecuredJoin, SecuredAndUnsecuredDoNotMix) {
  auto secured = make_leader(keys());
  proto::Joiner plain(3, wire::JoinMessage::Role::kShell, 100, std::nullopt);
  proto::Joiner::Outcome out = run_join(*secured, plain);
  ASSERT_EQ(out.kind, Kind::kRefused);
  EXPECT_NE(out.reason.find("secured"), std::string::npos) << out.reason;

  auto unsecured = make_leader(std::nullopt);
  proto::Joiner sealed(4, wire::JoinMessage::Role::kSite, 100, wire::join_key_of(kSecret));
  out = run_join(*unsecured, sealed);
  ASSERT_EQ(out.kind, Kind::kRefused);
  EXPECT_NE(out.reason.find("--insecure"), std::string::npos) << out.reason;
  EXPECT_EQ(secured->leader().peers().size(), 1u);
  EXPECT_EQ(unsecured->leader().peers().size(), 1u);
}

TEST(SecuredJoin, AReplayedRequestGainsNothing) {
  auto leader = make_leader(keys());
  proto::Joiner j(5, wire::JoinMessage::Role::kSite, 100, wire::join_key_of(kSecret));
  wire::Bytes request;
  ASSERT_EQ(run_join(*leader, j, &request).kind, Kind::kAccepted);
  const std::size_t peers = leader->leader().peers().size();
  // To the same leader process from another address: the cookie was the joiner's, so only
  // a challenge of its own, and the joiner's place in the directory stays its own.
  wire::Bytes reply;
  ASSERT_TRUE(leader->on_join(request, "10.0.0.66:1", 0, &reply));
  EXPECT_EQ(wire::decode_join(reply)->op, wire::JoinMessage::Op::kChallenge);
  EXPECT_EQ(leader->leader().peers().size(), peers);
  for (const auto& [id, p] : leader->leader().peers()) EXPECT_NE(p.address, "10.0.0.66:1") << id;
  // From the joiner's own address (its answer was lost): the same id again, sealed for the
  // secret's holder only.
  ASSERT_TRUE(leader->on_join(request, "127.0.0.1:9", 0, &reply));
  EXPECT_EQ(leader->leader().peers().size(), peers);
  EXPECT_EQ(wire::datagram_kind(reply), wire::kKindSealedJoin);
  // To another leader process (its cookies differ): only a fresh challenge.
  auto later = make_leader(keys(0x44));
  ASSERT_TRUE(later->on_join(request, "10.0.0.66:1", 0, &reply));
  auto answer = wire::decode_join(reply);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->op, wire::JoinMessage::Op::kChallenge);
  EXPECT_EQ(later->leader().peers().size(), 1u);
}

TEST(SecuredJoin, ARestartedLeaderKeepsTheSessionsTrafficKey) {
  auto state = std::make_shared<sim::MemoryStore>();
  {
    auto leader = make_leader(keys(), state);
    proto::Joiner j(6, wire::JoinMessage::Role::kSite, 100, wire::join_key_of(kSecret));
    ASSERT_EQ(run_join(*leader, j).kind, Kind::kAccepted);
  }
  JoinSecurity fresh = keys(0x55);
  fresh.traffic_key = key_of(0x66);  // what a new process would have drawn
  auto leader = make_leader(fresh, state);
  ASSERT_TRUE(leader->resumed());
  proto::Joiner j(7, wire::JoinMessage::Role::kSite, 100, wire::join_key_of(kSecret));
  proto::Joiner::Outcome out = run_join(*leader, j);
  ASSERT_EQ(out.kind, Kind::kAccepted);
  EXPECT_EQ(*out.traffic_key, key_of(0x22));
  // And a secured session's state is not resumed unsecured.
  LeaderOptions o;
  o.state = state;
  LeaderNode plain(site::SiteOptions::with_mtu(0, 1400), o, std::nullopt);
  EXPECT_FALSE(plain.open_state(0).ok());
}

}  // namespace
}  // namespace mstream::leader
