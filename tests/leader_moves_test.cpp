// Moves at the leader when one of their ends fails (doc/session.md "Failures"): the outcome
// each end's fate gives, and who answers the requester.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "leader/leader_core.hpp"
#include "leader_test_support.hpp"
#include "site/ids.hpp"

namespace mstream::leader {
namespace {

class LeaderMoves : public ::testing::Test {
 protected:
  // Two sites and a shell; stream "s" at source_, created by the shell.
  void SetUp() override {
    LeaderOptions o;
    o.failure_timeout = 1000 * proto::kMillisecond;
    leader_ = std::make_unique<LeaderCore>(
        o, [this](SiteId to, const wire::ControlMessage& m) { sent_.push_back({to, m}); },
        [](SiteId) {});
    source_ = join(1, wire::JoinMessage::Role::kSite);
    target_ = join(2, wire::JoinMessage::Role::kSite);
    shell_ = join(3, wire::JoinMessage::Role::kShell);
    leader_->on_message(shell_, wire::CreateReq{1, "s", source_, wire::kNoSite, 0}, 0);
    for (const auto& [to, m] : sent_)
      if (const auto* i = std::get_if<wire::Install>(&m)) stream_ = i->stream.id;
    ASSERT_NE(stream_, 0u);
    leader_->on_message(source_, wire::Installed{stream_, 1, 0, 0, {}, {}}, 0);
    sent_.clear();
  }

  SiteId join(std::uint64_t nonce, wire::JoinMessage::Role role) {
    return join_leader(*leader_, nonce, role);
  }

  // The replies sent to `to`, in order.
  std::vector<wire::Reply> replies_to(SiteId to) const {
    std::vector<wire::Reply> out;
    for (const auto& [site, m] : sent_)
      if (const auto* r = std::get_if<wire::Reply>(&m); r && site == to) out.push_back(*r);
    return out;
  }

  std::unique_ptr<LeaderCore> leader_;
  std::vector<std::pair<SiteId, wire::ControlMessage>> sent_;
  SiteId source_ = 0, target_ = 0, shell_ = 0;
  proto::StreamId stream_ = 0;
};

// The target of a move answers its requester itself; the leader repeats that answer when the
// target fails before it is known to have got through. A move settled with its target (its
// source failed, or was a restarted leader's site 0) is no different: the target's answer may
// still be unsent (sim seeds 40003902 and 127078: a shell behind a partition waited for ever).
TEST_F(LeaderMoves, AMoveSettledWithItsTargetIsAnsweredByTheLeaderWhenTheTargetFails) {
  leader_->on_message(shell_, wire::MoveReq{7, "s", target_}, 0);
  leader_->declare_failed(source_, 0);
  bool asked = false;
  for (const auto& [to, m] : sent_)
    if (const auto* st = std::get_if<wire::Settle>(&m); st && to == target_) asked = true;
  ASSERT_TRUE(asked);
  leader_->on_message(target_, wire::Settled{stream_, 2, 1}, 0);
  ASSERT_EQ(leader_->streams().at(stream_).site, target_);
  EXPECT_EQ(leader_->stats().moves_settled_at_target, 1u);
  EXPECT_TRUE(replies_to(shell_).empty());  // the target answers, one hop sooner
  sent_.clear();
  leader_->declare_failed(target_, 0);
  const std::vector<wire::Reply> replies = replies_to(shell_);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].req, 7u);
  EXPECT_EQ(replies[0].code, 0u);
  EXPECT_EQ(replies[0].text, std::to_string(target_));
  EXPECT_EQ(leader_->stats().answers_repeated, 1u);
}

// The same move, installed the usual way: the leader repeats the answer too.
TEST_F(LeaderMoves, AMoveInstalledIsAnsweredByTheLeaderWhenTheTargetFails) {
  leader_->on_message(shell_, wire::MoveReq{7, "s", target_}, 0);
  leader_->on_message(target_, wire::Installed{stream_, 2, 0, 0, {}, {}}, 0);
  ASSERT_EQ(leader_->streams().at(stream_).site, target_);
  sent_.clear();
  leader_->declare_failed(target_, 0);
  const std::vector<wire::Reply> replies = replies_to(shell_);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].req, 7u);
}

}  // namespace
}  // namespace mstream::leader
