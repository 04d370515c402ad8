// The sender rules at the leader (wire::Sender, leader/sender_rules.cpp): a member may make
// requests in its own name, but may not answer for another site, report about or detach
// agents of a stream it does not host, or say what only the leader says. Each such message
// is dropped, counted under its type, and changes nothing.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "leader/leader_core.hpp"
#include "leader_test_support.hpp"
#include "site/ids.hpp"

namespace mstream::leader {
namespace {

class LeaderRules : public ::testing::Test {
 protected:
  void SetUp() override { start(0); }

  // A session of two sites and a shell, stream "s" at host_ with one agent; `rules_off`
  // as LeaderOptions::sender_rules_off.
  void start(std::uint32_t rules_off) {
    sent_.clear();
    LeaderOptions o;
    o.failure_timeout = 0;
    o.sender_rules_off = rules_off;
    leader_ = std::make_unique<LeaderCore>(
        o,
        [this](SiteId to, const wire::ControlMessage& m) {
          sent_.push_back({to, m});
        },
        [](SiteId) {});
    host_ = join(1, wire::JoinMessage::Role::kSite);
    other_ = join(2, wire::JoinMessage::Role::kSite);
    shell_ = join(3, wire::JoinMessage::Role::kShell);
    leader_->on_message(shell_, wire::CreateReq{1, "s", host_, wire::kNoSite, 0}, 0);
    for (const auto& [to, m] : sent_)
      if (const auto* i = std::get_if<wire::Install>(&m)) stream_ = i->stream.id;
    ASSERT_NE(stream_, 0u);
    leader_->on_message(host_, wire::Installed{stream_, 1, 0, 0, {}, {}}, 0);
    leader_->on_message(shell_, wire::AttachReq{2, "s", "", "proc a {} {}", "", 0}, 0);
    leader_->on_message(host_, wire::Installed{stream_, 0, 1, 0, {}, {}}, 0);
    ASSERT_EQ(leader_->streams().at(stream_).site, host_);
    sent_.clear();
  }

  SiteId join(std::uint64_t nonce, wire::JoinMessage::Role role) {
    return join_leader(*leader_, nonce, role);
  }

  std::uint64_t refused(const wire::ControlMessage& m) const {
    return leader_->refused_control()[m.index()];
  }

  template <class T>
  std::size_t count_sent() const {
    std::size_t n = 0;
    for (const auto& [to, m] : sent_) n += std::holds_alternative<T>(m);
    return n;
  }

  std::unique_ptr<LeaderCore> leader_;
  std::vector<std::pair<SiteId, wire::ControlMessage>> sent_;
  SiteId host_ = 0, other_ = 0, shell_ = 0;
  proto::StreamId stream_ = 0;
};

// The DetachReq: any member could remove any stream's agent.
TEST_F(LeaderRules, OnlyTheStreamsHostDetachesItsAgent) {
  const wire::ControlMessage forged = wire::DetachReq{9, stream_, 1};
  leader_->on_message(other_, forged, 0);
  leader_->on_message(shell_, forged, 0);
  EXPECT_EQ(refused(forged), 2u);
  EXPECT_EQ(count_sent<wire::Finalize>(), 0u);
  EXPECT_EQ(count_sent<wire::Reply>(), 0u);  // not even an answer: nothing was asked
  leader_->on_message(host_, wire::DetachReq{10, stream_, 1}, 0);
  EXPECT_EQ(refused(forged), 2u);
  EXPECT_GT(sent_.size(), 0u);
}

TEST_F(LeaderRules, ErrorReportsComeOnlyFromTheStreamsHost) {
  const wire::ControlMessage forged = wire::ErrorReport{"lie", stream_, 1, wire::kNoSite};
  leader_->on_message(other_, forged, 0);
  EXPECT_EQ(refused(forged), 1u);
  EXPECT_EQ(count_sent<wire::ErrorReport>(), 0u);
  leader_->on_message(host_, wire::ErrorReport{"true", stream_, 1, wire::kNoSite}, 0);
  EXPECT_EQ(refused(forged), 1u);
  EXPECT_EQ(count_sent<wire::ErrorReport>(), 1u);  // to the shell
}

TEST_F(LeaderRules, AnswersComeOnlyFromTheSiteAsked) {
  leader_->on_message(shell_, wire::MoveReq{4, "s", other_}, 0);
  ASSERT_EQ(count_sent<wire::MoveOut>(), 1u);
  const wire::ControlMessage forged = wire::Installed{stream_, 2, 0, 0, {}, {}};
  leader_->on_message(host_, forged, 0);   // the source, not the target
  leader_->on_message(shell_, forged, 0);  // a shell
  EXPECT_EQ(refused(forged), 2u);
  EXPECT_EQ(leader_->streams().at(stream_).site, host_);
  const wire::ControlMessage settled = wire::Settled{stream_, 2, 1};
  leader_->on_message(other_, settled, 0);  // no settle was asked of anyone
  EXPECT_EQ(refused(settled), 1u);
  leader_->on_message(other_, forged, 0);
  EXPECT_EQ(leader_->streams().at(stream_).site, other_);
}

// The target of a move settled with it (its source failed) says Installed once the stream's
// relocation handlers have run, after its Settled: a stale answer from the site asked, which
// changes nothing, but is no forgery (an honest run of sim seed 40003902 counted one).
TEST_F(LeaderRules, AStaleAnswerFromTheSiteAskedIsDroppedButNotCountedAsAForgery) {
  leader_->on_message(shell_, wire::MoveReq{4, "s", other_}, 0);
  leader_->declare_failed(host_, 0);
  leader_->on_message(other_, wire::Settled{stream_, 2, 1}, 0);
  ASSERT_EQ(leader_->streams().at(stream_).site, other_);
  sent_.clear();
  const wire::ControlMessage late = wire::Installed{stream_, 2, 0, 0, {}, {}};
  leader_->on_message(other_, late, 0);
  leader_->on_message(other_, wire::Settled{stream_, 2, 1}, 0);
  EXPECT_EQ(refused(late), 0u);
  EXPECT_EQ(refused(wire::Settled{}), 0u);
  EXPECT_EQ(leader_->stats().stale_answers, 2u);
  EXPECT_TRUE(sent_.empty());
  // An epoch the leader never handed out, or a site the stream never was at, is a lie.
  leader_->on_message(other_, wire::Installed{stream_, 3, 0, 0, {}, {}}, 0);
  leader_->on_message(other_, wire::Settled{stream_, 3, 1}, 0);
  leader_->on_message(shell_, late, 0);
  EXPECT_EQ(refused(late), 2u);
  EXPECT_EQ(refused(wire::Settled{}), 1u);
  EXPECT_EQ(leader_->stats().stale_answers, 2u);
  EXPECT_EQ(leader_->streams().at(stream_).site, other_);
  EXPECT_EQ(leader_->streams().at(stream_).epoch, 2u);
}

// What the leader alone says is never taken by it, and what only a shell or only a site
// says is refused from the other kind.
TEST_F(LeaderRules, EveryTypeAMemberMayNotSendIsRefusedAndCountedUnderItsType) {
  for (std::size_t type = 0; type < wire::kControlTypes; ++type) {
    wire::ControlMessage m = wire::control_of_type(type);
    const wire::Sender rule = wire::sender_rule(m);
    if (rule == wire::Sender::kMember) continue;  // its own requests
    std::visit(
        [&](auto& v) {
          if constexpr (requires { v.stream = std::uint64_t{}; }) v.stream = stream_;
        },
        m);
    // A site sends what only shells do; a shell what only sites do; both the rest.
    const SiteId from = rule == wire::Sender::kSite ? shell_ : other_;
    leader_->on_message(from, m, 0);
    EXPECT_EQ(refused(m), 1u) << wire::control_name(m);
  }
  EXPECT_EQ(leader_->streams().at(stream_).site, host_);
  EXPECT_EQ(count_sent<wire::Shutdown>(), 0u);
}

static std::uint32_t off(wire::Sender rule) { return 1u << static_cast<unsigned>(rule); }

// Each rule below is checked nowhere else: with it off, the lie takes effect.

// A member opens a stream in its own name only: in another's, it would give that member a
// channel to the stream that the policy never vetted for it.
TEST_F(LeaderRules, AMemberOpensOnlyInItsOwnName) {
  const wire::ControlMessage forged = wire::OpenReq{7, "s", site::control_stream(host_)};
  leader_->on_message(other_, forged, 0);
  EXPECT_EQ(refused(forged), 1u);
  EXPECT_EQ(count_sent<wire::Opened>(), 0u);
  EXPECT_EQ(count_sent<wire::Reply>(), 0u);

  start(off(wire::Sender::kMember));
  leader_->on_message(other_, forged, 0);
  EXPECT_EQ(refused(forged), 0u);
  EXPECT_EQ(count_sent<wire::Opened>(), 1u);  // the host's control stream, opened by a liar
}

// Only a shell leaves: a site that said Leave would be taken for gone by every member while
// it still hosts streams.
TEST_F(LeaderRules, OnlyAShellLeaves) {
  const wire::ControlMessage lie = wire::Leave{0};
  leader_->on_message(host_, lie, 0);
  leader_->on_message(host_, wire::QuiesceReq{5, 0}, 0);
  EXPECT_EQ(refused(lie), 1u);
  EXPECT_EQ(refused(wire::QuiesceReq{}), 1u);
  EXPECT_TRUE(leader_->peers().at(host_).live);
  EXPECT_EQ(count_sent<wire::PeerUpdate>(), 0u);
  EXPECT_EQ(count_sent<wire::Probe>(), 0u);
  leader_->on_message(shell_, lie, 0);
  EXPECT_GT(count_sent<wire::PeerUpdate>(), 0u);    // everyone hears of it
  EXPECT_FALSE(leader_->peers().contains(shell_));  // then it is forgotten

  start(off(wire::Sender::kShell));
  leader_->on_message(host_, lie, 0);
  EXPECT_FALSE(leader_->peers().at(host_).live);  // a live site, said to be gone
  EXPECT_EQ(leader_->streams().at(stream_).site, host_);
}

// Only a site declares controllers: a shell has none, and its table entry would outlive it.
TEST_F(LeaderRules, OnlyASiteDeclaresControllers) {
  const wire::ControlMessage lie = wire::Controls{0, ~std::uint64_t{0}};
  leader_->on_message(shell_, lie, 0);
  EXPECT_EQ(refused(lie), 1u);
  EXPECT_FALSE(leader_->controls().contains(shell_));

  start(off(wire::Sender::kSite));
  leader_->on_message(shell_, lie, 0);
  EXPECT_TRUE(leader_->controls().contains(shell_));
}

}  // namespace
}  // namespace mstream::leader
