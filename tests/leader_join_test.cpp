// Joining a secured session (wire/join.hpp, doc/security.md): a joiner that holds the session
// secret gets an id and its key with the leader after hello, challenge and sealed request, in
// an accept only it can open, from the leader whose public key it pinned; one that does not,
// or joins unsecured, or replays or swaps someone's request, gets a clear refusal or nothing.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "leader/leader_node.hpp"
#include "proto/joiner.hpp"
#include "sim/memory_store.hpp"
#include "wire/control.hpp"
#include "wire/datagram.hpp"

namespace mstream::leader {
namespace {

using Kind = proto::Joiner::Outcome::Kind;

wire::Key key_of(std::uint8_t b) {
  wire::Key k;
  k.fill(b);
  return k;
}

const wire::Key kSecret = key_of(0x11);
const wire::Key kMaster = key_of(0x22);
const wire::KxKeyPair kLeaderPair = wire::kx_seed_keypair(key_of(0x77));

// A joiner's secrets: the session's, the leader's public key pinned, a pair of its own.
proto::JoinSecrets secrets(const wire::Key& secret = kSecret, std::uint8_t own = 0xA1,
                           const wire::KxPublicKey& leader = kLeaderPair.public_key) {
  return proto::JoinSecrets{wire::join_key_of(secret), leader, wire::kx_seed_keypair(key_of(own))};
}

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
  return JoinSecurity{wire::join_key_of(kSecret), kMaster, key_of(cookie), kLeaderPair};
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

TEST(SecuredJoin, AJoinerWithTheSecretGetsAnIdAndItsKeyWithTheLeader) {
  auto leader = make_leader(keys());
  proto::Joiner j(1, wire::JoinMessage::Role::kSite, 100, secrets());
  EXPECT_EQ(wire::decode_join(j.request())->op, wire::JoinMessage::Op::kHello);
  proto::Joiner::Outcome out = run_join(*leader, j);
  ASSERT_EQ(out.kind, Kind::kAccepted) << out.reason;
  EXPECT_EQ(out.site, 1u);
  ASSERT_TRUE(out.leader_key.has_value());
  EXPECT_EQ(*out.leader_key, wire::pair_key(kMaster, 0, 1));
  EXPECT_NE(*out.leader_key, kMaster);  // the master never leaves the leader
  EXPECT_TRUE(leader->leader().peers().contains(1));
}

// The accept is sealed for the joiner's key exchange: a member that holds the session secret
// (and so the join key, and could read the request with the joiner's public key in it) can
// open neither it nor, with a key pair of its own, an accept meant for another.
TEST(SecuredJoin, AMemberHoldingTheSecretCannotOpenAnothersAccept) {
  auto leader = make_leader(keys());
  proto::Joiner j(11, wire::JoinMessage::Role::kSite, 100, secrets());
  wire::Bytes request;
  ASSERT_EQ(run_join(*leader, j, &request).kind, Kind::kAccepted);
  wire::Bytes accept;
  ASSERT_TRUE(leader->on_join(request, "127.0.0.1:9", 0, &accept));
  ASSERT_EQ(wire::datagram_kind(accept), wire::kKindSealedJoin);
  EXPECT_FALSE(wire::decode_sealed_join(accept, wire::join_key_of(kSecret)).ok());
  const wire::KxKeyPair insider = wire::kx_seed_keypair(key_of(0xB2));
  auto insider_key = wire::kx_joiner_open_key(insider, kLeaderPair.public_key);
  ASSERT_TRUE(insider_key.ok());
  EXPECT_FALSE(wire::decode_sealed_join(accept, *insider_key).ok());
  // The insider's own joiner, handed the accept meant for the other, takes nothing from it.
  proto::Joiner other(11, wire::JoinMessage::Role::kSite, 100, secrets(kSecret, 0xB2));
  EXPECT_NE(other.on_reply(accept).kind, Kind::kAccepted);
  // And the same join (its nonce, from its address, with its cookie) with the insider's public
  // key instead is refused: nobody swaps a joiner's key exchange.
  auto m = wire::decode_sealed_join(request, wire::join_key_of(kSecret));
  ASSERT_TRUE(m.ok());
  m->public_key = insider.public_key;
  wire::Bytes swapped, reply;
  wire::encode_sealed_join(*m, wire::join_key_of(kSecret), &swapped);
  ASSERT_TRUE(leader->on_join(swapped, "127.0.0.1:9", 0, &reply));
  auto answer = wire::decode_join(reply);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->op, wire::JoinMessage::Op::kRefuse);
  EXPECT_EQ(leader->leader().peers().size(), 2u);
}

TEST(SecuredJoin, AJoinerPinningAnotherLeaderKeyRefusesTheAccept) {
  auto leader = make_leader(keys());
  const wire::KxKeyPair impostor = wire::kx_seed_keypair(key_of(0xC3));
  proto::Joiner j(12, wire::JoinMessage::Role::kSite, 100,
                  secrets(kSecret, 0xA1, impostor.public_key));
  proto::Joiner::Outcome out = run_join(*leader, j);
  ASSERT_EQ(out.kind, Kind::kDoubted);
  EXPECT_FALSE(out.leader_key.has_value());
  EXPECT_NE(out.reason.find("secret file"), std::string::npos) << out.reason;
  // Every answer is doubted the same way, so the driver gives up with that reason.
  for (std::uint32_t n = 2; n <= 3; ++n) {
    wire::Bytes reply;
    ASSERT_TRUE(leader->on_join(j.request(), "127.0.0.1:9", 0, &reply));
    EXPECT_EQ(j.on_reply(reply).kind, Kind::kDoubted);
    EXPECT_EQ(j.doubts_in_a_row(), n);
  }
}

TEST(SecuredJoin, AnotherSecretIsRefusedClearlyAndAdmitsNobody) {
  auto leader = make_leader(keys());
  proto::Joiner j(2, wire::JoinMessage::Role::kSite, 100, secrets(key_of(0x99)));
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
  proto::Joiner sealed(4, wire::JoinMessage::Role::kSite, 100, secrets());
  out = run_join(*unsecured, sealed);
  ASSERT_EQ(out.kind, Kind::kRefused);
  EXPECT_NE(out.reason.find("--insecure"), std::string::npos) << out.reason;
  EXPECT_EQ(secured->leader().peers().size(), 1u);
  EXPECT_EQ(unsecured->leader().peers().size(), 1u);
}

TEST(SecuredJoin, AReplayedRequestGainsNothing) {
  auto leader = make_leader(keys());
  proto::Joiner j(5, wire::JoinMessage::Role::kSite, 100, secrets());
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
  // joiner only.
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

// The Welcome gives a newcomer its keys with the live members, the PeerUpdate each member its
// key with the newcomer: the key of the same pair, which only its two ends are sent.
TEST(SecuredJoin, TheWelcomeAndPeerUpdatesHandOutEachPairsKeyToItsEnds) {
  auto leader = make_leader(keys());
  proto::Joiner j1(21, wire::JoinMessage::Role::kSite, 100, secrets());
  ASSERT_EQ(run_join(*leader, j1).kind, Kind::kAccepted);
  proto::OutDatagram d;
  while (leader->poll_transmit(0, &d)) {
  }  // its Welcome: no member but the leader yet
  proto::Joiner j2(22, wire::JoinMessage::Role::kShell, 100, secrets(kSecret, 0xA2));
  const proto::Joiner::Outcome out = run_join(*leader, j2);
  ASSERT_EQ(out.kind, Kind::kAccepted);
  const SiteId shell = out.site;
  const std::string key12 = [&] {
    const wire::Key k = wire::pair_key(kMaster, 1, shell);
    return std::string(k.begin(), k.end());
  }();
  // Both go out in the same step: the PeerUpdate to site 1, the Welcome to the shell.
  std::vector<proto::OutDatagram> all;
  while (leader->poll_transmit(0, &d)) all.push_back(d);
  bool update = false, welcome = false;
  for (const proto::OutDatagram& dg : all) {
    wire::SealedHeader h;
    wire::Bytes plain;
    ASSERT_TRUE(wire::open_datagram(wire::pair_key(kMaster, 0, dg.to), dg.bytes, &h, &plain).ok());
    wire::DecodedDatagram dd;
    ASSERT_TRUE(wire::decode_datagram(plain, &dd, wire::Integrity::kSealed).ok());
    for (const wire::Frame& f : dd.frames) {
      if (f.type != wire::FrameType::kData) continue;
      auto m = wire::decode_control(f.payload);
      if (!m.ok()) continue;
      if (const auto* u = std::get_if<wire::PeerUpdate>(&*m); u && dg.to == 1) {
        EXPECT_EQ(u->peer.site, shell);
        EXPECT_EQ(u->key, key12);
        update = true;
      }
      if (const auto* w = std::get_if<wire::Welcome>(&*m); w && dg.to == shell) {
        ASSERT_EQ(w->keys.size(), 1u);  // site 1's; the leader's came with the accept
        EXPECT_EQ(w->keys[0].site, 1u);
        EXPECT_EQ(w->keys[0].key, key12);
        welcome = true;
      }
    }
  }
  EXPECT_TRUE(update);
  EXPECT_TRUE(welcome);
}

TEST(SecuredJoin, ARestartedLeaderKeepsTheSessionsKeys) {
  auto state = std::make_shared<sim::MemoryStore>();
  SiteId first = 0;
  {
    auto leader = make_leader(keys(), state);
    proto::Joiner j(6, wire::JoinMessage::Role::kSite, 100, secrets());
    proto::Joiner::Outcome out = run_join(*leader, j);
    ASSERT_EQ(out.kind, Kind::kAccepted);
    first = out.site;
  }
  JoinSecurity fresh = keys(0x55);
  fresh.master_key = key_of(0x66);                 // what a new process would have drawn
  fresh.kx = wire::kx_seed_keypair(key_of(0x67));  // and a pair it was wrongly given
  auto leader = make_leader(fresh, state);
  ASSERT_TRUE(leader->resumed());
  // Its site derives the keys the members hold, and it answers joins with the pinned pair.
  EXPECT_EQ(leader->site().transport().pair_key(first), wire::pair_key(kMaster, 0, first));
  proto::Joiner j(7, wire::JoinMessage::Role::kSite, 100, secrets());
  proto::Joiner::Outcome out = run_join(*leader, j);
  ASSERT_EQ(out.kind, Kind::kAccepted) << out.reason;
  EXPECT_EQ(*out.leader_key, wire::pair_key(kMaster, 0, out.site));
  // And a secured session's state is not resumed unsecured.
  LeaderOptions o;
  o.state = state;
  LeaderNode plain(site::SiteOptions::with_mtu(0, 1400), o, std::nullopt);
  EXPECT_FALSE(plain.open_state(0).ok());
}

}  // namespace
}  // namespace mstream::leader
