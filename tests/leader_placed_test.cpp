// The leader's side of the user-stream pin (proto/sender_pins.hpp, doc/security.md): a
// batch of moves tells every site the stream was at, not only the last, and a Watch with an
// ask is answered (wire::Placed) after every word the site was owed, with where a move in
// flight goes. A site judges against that answer what came from a site it could not place.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "leader/leader_core.hpp"
#include "leader_test_support.hpp"
#include "sim/memory_store.hpp"

namespace mstream::leader {
namespace {

struct Sent {
  SiteId to;
  wire::ControlMessage m;
};

class LeaderPlaced : public ::testing::Test {
 protected:
  void SetUp() override {
    LeaderOptions o;
    o.failure_timeout = 0;
    leader_ = std::make_unique<LeaderCore>(
        o,
        [this](SiteId to, const wire::ControlMessage& m) {
          sent_.push_back({to, m});
        },
        [](SiteId) {});
    for (std::uint64_t nonce = 1; nonce <= 5; ++nonce) sites_.push_back(join(nonce));
    shell_ = join(9, wire::JoinMessage::Role::kShell);
    leader_->on_message(shell_, wire::CreateReq{1, "s", sites_[0], wire::kNoSite, 0}, 0);
    for (const Sent& s : sent_)
      if (const auto* i = std::get_if<wire::Install>(&s.m)) stream_ = i->stream.id;
    ASSERT_NE(stream_, 0u);
    leader_->on_message(sites_[0], wire::Installed{stream_, 1, 0, 0, {}, {}}, 0);
    sent_.clear();
  }

  SiteId join(std::uint64_t nonce, wire::JoinMessage::Role role = wire::JoinMessage::Role::kSite) {
    return join_leader(*leader_, nonce, role);
  }

  // The shell moves the stream to `to`; with `settle`, the target reports it installed.
  void move(SiteId to, bool settle = true) {
    leader_->on_message(shell_, wire::MoveReq{++req_, "s", to}, now_);
    std::uint64_t epoch = 0;
    for (const Sent& s : sent_)
      if (const auto* e = std::get_if<wire::Expect>(&s.m)) epoch = e->epoch;
    ASSERT_NE(epoch, 0u);
    if (settle) leader_->on_message(to, wire::Installed{stream_, epoch, 0, 0, {}, {}}, now_);
  }

  // What `site` was sent since the last call: Locations of the stream as their sites, then a
  // Placed as -1 - its moving_to (so that the order shows).
  std::vector<std::int64_t> told(SiteId site) {
    std::vector<std::int64_t> out;
    for (const Sent& s : sent_) {
      if (s.to != site) continue;
      if (const auto* l = std::get_if<wire::Location>(&s.m); l && l->stream.id == stream_)
        out.push_back(l->stream.site);
      if (const auto* p = std::get_if<wire::Placed>(&s.m)) {
        EXPECT_EQ(p->stream, stream_);
        EXPECT_EQ(p->ask, 77u);
        out.push_back(-1 - static_cast<std::int64_t>(p->moving_to));
      }
    }
    return out;
  }

  std::unique_ptr<LeaderCore> leader_;
  std::vector<Sent> sent_;
  std::vector<SiteId> sites_;
  SiteId shell_ = 0;
  proto::StreamId stream_ = 0;
  std::uint64_t req_ = 0;
  Time now_ = 0;
};

constexpr std::int64_t placed(SiteId moving_to) {
  return -1 - static_cast<std::int64_t>(moving_to);
}

// Seed 7 of `mstream sim --scenario session` counted 22 honest frames: the receiver's batch
// held only the stream's last site, so a site it was at in between sent copies no word ever
// named.
TEST_F(LeaderPlaced, ABatchTellsEverySiteTheStreamWasAtOnceEach) {
  const SiteId a = sites_[0], b = sites_[1], c = sites_[2], d = sites_[3];
  move(b);
  move(c);
  move(b);
  sent_.clear();
  leader_->on_timeout(now_ + LeaderOptions{}.location_batch);
  // Site D watches nothing: it hears of B and C once each, in the order of their last moves.
  EXPECT_EQ(told(d), (std::vector<std::int64_t>{c, b}));
  EXPECT_EQ(told(a), (std::vector<std::int64_t>{c, b}));
  EXPECT_FALSE(leader_->locations_pending());
}

TEST_F(LeaderPlaced, AnAskIsAnsweredAfterTheWordsTheSiteWasOwed) {
  const SiteId b = sites_[1], c = sites_[2], d = sites_[3];
  move(b);
  move(c);
  sent_.clear();
  // Before the batch goes: D gets what it was owed, then the answer; the batch skips it.
  leader_->on_message(d, wire::Watch{stream_, 77}, now_);
  EXPECT_EQ(told(d), (std::vector<std::int64_t>{b, c, placed(wire::kNoSite)}));
  sent_.clear();
  leader_->on_timeout(now_ + LeaderOptions{}.location_batch);
  EXPECT_TRUE(told(d).empty());
  // Watching, it is told the next move at once, and a later ask is answered at once.
  move(sites_[4]);
  leader_->on_message(d, wire::Watch{stream_, 77}, now_);
  EXPECT_EQ(told(d), (std::vector<std::int64_t>{sites_[4], placed(wire::kNoSite)}));
}

// Seed 4255: the asking site was the stream's site again; the batch naming the site between
// must still reach it, now that it watches.
TEST_F(LeaderPlaced, TheStreamsOwnSiteIsToldTheSitesBetweenToo) {
  const SiteId a = sites_[0], b = sites_[1];
  move(b);
  move(a);
  sent_.clear();
  leader_->on_message(a, wire::Watch{stream_, 77}, now_);
  EXPECT_EQ(told(a), (std::vector<std::int64_t>{b, placed(wire::kNoSite)}));
}

// A move's target installs the stream and may send in its name before the leader hears of it.
TEST_F(LeaderPlaced, TheAnswerNamesWhereAMoveInFlightGoes) {
  const SiteId c = sites_[2], d = sites_[3];
  move(c, false);
  sent_.clear();
  leader_->on_message(d, wire::Watch{stream_, 77}, now_);
  EXPECT_EQ(told(d), (std::vector<std::int64_t>{placed(c)}));
}

// An ask of 0 (a sender starting to send to the stream) is not answered; a shell's is not
// either (it watches nothing, and hosts no stream).
TEST_F(LeaderPlaced, OnlyASitesAskIsAnswered) {
  leader_->on_message(sites_[3], wire::Watch{stream_, 0}, now_);
  leader_->on_message(shell_, wire::Watch{stream_, 77}, now_);
  EXPECT_TRUE(sent_.empty());
}

// A destroyed stream's messages still go out from the site it was destroyed at. A site that
// never had the word of that site (it joined, or its process restarted, after the destroy)
// asks, and the answer names it, across a restart of the leader too (sim seeds 300005,
// 300628: the receiver's site refused them for ever). Only the last kRetiredKept are kept.
TEST(LeaderRetired, TheAnswerAboutADestroyedStreamNamesTheSiteItWasDestroyedAt) {
  std::vector<Sent> sent;
  auto make = [&sent] {
    LeaderOptions o;
    o.failure_timeout = 0;
    o.state = std::make_shared<sim::MemoryStore>();
    return std::make_unique<LeaderCore>(
        o,
        [&sent](SiteId to, const wire::ControlMessage& m) {
          sent.push_back({to, m});
        },
        [](SiteId) {});
  };
  auto placed_for = [&sent](SiteId site) {
    std::optional<wire::Placed> p;
    for (const Sent& s : sent)
      if (const auto* q = std::get_if<wire::Placed>(&s.m); q && s.to == site) p = *q;
    return p;
  };
  auto l = make();
  const SiteId a = join_leader(*l, 1, wire::JoinMessage::Role::kSite);
  const SiteId b = join_leader(*l, 2, wire::JoinMessage::Role::kSite);
  const SiteId shell = join_leader(*l, 9, wire::JoinMessage::Role::kShell);
  auto create = [&](const std::string& name, std::uint64_t req) {
    sent.clear();
    l->on_message(shell, wire::CreateReq{req, name, a, wire::kNoSite, 0}, 0);
    proto::StreamId id = 0;
    for (const Sent& s : sent)
      if (const auto* i = std::get_if<wire::Install>(&s.m)) id = i->stream.id;
    EXPECT_NE(id, 0u);
    l->on_message(a, wire::Installed{id, 1, 0, 0, {}, {}}, 0);
    return id;
  };
  auto destroy = [&](const std::string& name, proto::StreamId id, std::uint64_t req) {
    l->on_message(shell, wire::DestroyReq{req, name}, 0);
    l->on_message(a, wire::Installed{id, 0, 0, 0, {}, {}}, 0);
  };
  auto create_and_destroy = [&](const std::string& name, std::uint64_t req) {
    const proto::StreamId id = create(name, req);
    destroy(name, id, req + 1);
    return id;
  };
  const proto::StreamId id = create_and_destroy("s", 1);
  sent.clear();
  l->on_message(b, wire::Watch{id, 77}, 0);
  std::optional<wire::Placed> p = placed_for(b);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->destroyed_at, a);
  EXPECT_GT(p->destroy_epoch, 1u);
  EXPECT_EQ(l->sizes().retired, 1u);

  std::vector<proto::StoredRecord> records;
  std::vector<SiteId> peers;
  l->take_changes(&records, &peers);
  auto again = make();
  ASSERT_TRUE(again->restore(records).ok());
  again->resume(0);
  sent.clear();
  again->on_message(b, wire::Watch{id, 78}, 0);
  p = placed_for(b);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->destroyed_at, a);

  // A stream never created here, or one still alive, names none.
  sent.clear();
  again->on_message(b, wire::Watch{id + 1000, 79}, 0);
  p = placed_for(b);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->destroyed_at, wire::kNoSite);

  // Bounded, the oldest destroy forgotten first, whatever the ids: a long-lived stream (a
  // small id) destroyed last is kept.
  const proto::StreamId old = create("old", 5);
  for (std::uint64_t k = 0; k < LeaderCore::kRetiredKept + 5; ++k)
    create_and_destroy("t" + std::to_string(k), 10 + 2 * k);
  EXPECT_EQ(l->sizes().retired, LeaderCore::kRetiredKept);
  destroy("old", old, 7);
  EXPECT_EQ(l->sizes().retired, LeaderCore::kRetiredKept);
  sent.clear();
  l->on_message(b, wire::Watch{id, 80}, 0);
  l->on_message(b, wire::Watch{old, 81}, 0);
  std::map<std::uint64_t, SiteId> at;  // by ask
  for (const Sent& s : sent)
    if (const auto* q = std::get_if<wire::Placed>(&s.m); q && s.to == b)
      at[q->ask] = q->destroyed_at;
  EXPECT_EQ(at[80], wire::kNoSite);
  EXPECT_EQ(at[81], a);
}

}  // namespace
}  // namespace mstream::leader
