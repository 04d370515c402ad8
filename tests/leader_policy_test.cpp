// The leader's side of policy (COMMANDS.md, Policy): an operation waits for each controller's
// verdict in turn, a denial or the failure of the controller's site ends it with the
// caller's error, verdicts that are stale or from the wrong site change nothing, and a
// restarted leader asks again what its old process was waiting for.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "leader/leader_core.hpp"
#include "sim/memory_store.hpp"
#include "site/ids.hpp"

namespace mstream::leader {
namespace {

struct Sent {
  SiteId to;
  wire::ControlMessage m;
};

class LeaderPolicy : public ::testing::Test {
 protected:
  std::unique_ptr<LeaderCore> make(bool durable) {
    LeaderOptions o;
    o.failure_timeout = 0;
    if (durable) o.state = std::make_shared<sim::MemoryStore>();
    return std::make_unique<LeaderCore>(
        o,
        [this](SiteId to, const wire::ControlMessage& m) {
          sent_.push_back({to, m});
        },
        [](SiteId) {});
  }

  SiteId join(LeaderCore& l, std::uint64_t nonce, wire::JoinMessage::Role role) {
    wire::JoinMessage m;
    m.op = wire::JoinMessage::Op::kRequest;
    m.nonce = nonce;
    m.role = role;
    wire::JoinMessage reply;
    EXPECT_TRUE(l.on_join(m, "127.0.0.1:1", &reply));
    return reply.site;
  }

  // An allowed open goes to the stream's site first (wire::Opened); its site acknowledges.
  void acknowledge_opens(LeaderCore& l) {
    std::vector<Sent> rest;
    std::vector<std::pair<SiteId, wire::Opened>> opened;
    for (const Sent& s : sent_) {
      if (const auto* o = std::get_if<wire::Opened>(&s.m)) {
        opened.push_back({s.to, *o});
      } else {
        rest.push_back(s);
      }
    }
    sent_ = rest;
    for (const auto& [to, o] : opened)
      l.on_message(to, wire::Installed{o.stream, 1, 0, 0, {}, {}}, 0);
  }

  template <class T>
  std::vector<std::pair<SiteId, T>> take() {
    std::vector<std::pair<SiteId, T>> out;
    for (const Sent& s : sent_)
      if (const T* v = std::get_if<T>(&s.m)) out.push_back({s.to, *v});
    sent_.clear();
    return out;
  }

  // A session with site 1, a shell, and stream "s" at site 1.
  void start(LeaderCore& l) {
    site_ = join(l, 1, wire::JoinMessage::Role::kSite);
    shell_ = join(l, 2, wire::JoinMessage::Role::kShell);
    l.on_message(shell_, wire::CreateReq{1, "s", site_, wire::kNoSite, 0}, 0);
    auto installs = take<wire::Install>();
    ASSERT_EQ(installs.size(), 1u);
    stream_ = installs[0].second.stream.id;
    l.on_message(site_, wire::Installed{stream_, 1, 0, 0, {}, {}}, 0);
    sent_.clear();
  }

  std::vector<Sent> sent_;
  SiteId site_ = 0, shell_ = 0;
  proto::StreamId stream_ = 0;
};

constexpr std::uint64_t kOpenBit = wire::policy_bit(wire::kPolicyOpen);
constexpr std::uint64_t kOk = 0;
constexpr auto kDenied = static_cast<std::uint64_t>(Status::Code::kPermissionDenied);

TEST_F(LeaderPolicy, ChecksRunSessionThenSiteAndTheOpenIsAnsweredAfterBoth) {
  auto l = make(false);
  start(*l);
  l->on_message(0, wire::Controls{kOpenBit, 0}, 0);
  l->on_message(site_, wire::Controls{kOpenBit, kOpenBit}, 0);  // session bits: site 0's only
  l->on_message(shell_, wire::OpenReq{7, "s"}, 0);
  auto checks = take<wire::PolicyCheck>();
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].first, 0u);
  EXPECT_EQ(checks[0].second.level, wire::kPolicySession);
  EXPECT_EQ(checks[0].second.args,
            (std::vector<std::string>{"event", "open", "requester", std::to_string(shell_), "shell",
                                      "1", "stream", "s", "site", std::to_string(site_)}));
  // Stale, or from the wrong site: nothing happens.
  l->on_message(0, wire::PolicyVerdict{checks[0].second.check + 1, kOk, {}}, 0);
  l->on_message(site_, wire::PolicyVerdict{checks[0].second.check, kOk, {}}, 0);
  EXPECT_TRUE(sent_.empty());
  l->on_message(0, wire::PolicyVerdict{checks[0].second.check, kOk, {}}, 0);
  auto site_checks = take<wire::PolicyCheck>();
  ASSERT_EQ(site_checks.size(), 1u);
  EXPECT_EQ(site_checks[0].first, site_);
  EXPECT_EQ(site_checks[0].second.level, wire::kPolicySite);
  l->on_message(site_, wire::PolicyVerdict{site_checks[0].second.check, kOk, {}}, 0);
  // The stream's site learns of the opener before the opener hears yes.
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].to, site_);
  EXPECT_TRUE(std::holds_alternative<wire::Opened>(sent_[0].m));
  acknowledge_opens(*l);
  auto replies = take<wire::Reply>();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].first, shell_);
  EXPECT_EQ(replies[0].second.req, 7u);
  EXPECT_EQ(replies[0].second.code, kOk);
}

TEST_F(LeaderPolicy, ADenialEndsTheOperationAndTheNextOneRuns) {
  auto l = make(false);
  start(*l);
  l->on_message(0, wire::Controls{wire::policy_bit(wire::kPolicyMove), 0}, 0);
  l->on_message(shell_, wire::MoveReq{8, "s", 0}, 0);
  l->on_message(shell_, wire::OpenReq{9, "s"}, 0);  // queued behind the move
  auto checks = take<wire::PolicyCheck>();
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].second.event, wire::kPolicyMove);
  l->on_message(0, wire::PolicyVerdict{checks[0].second.check, kDenied, "stay"}, 0);
  acknowledge_opens(*l);
  auto replies = take<wire::Reply>();
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].second.req, 8u);
  EXPECT_EQ(replies[0].second.code, kDenied);
  EXPECT_EQ(replies[0].second.text, "move denied by the session controller: stay");
  EXPECT_EQ(replies[1].second.req, 9u);  // no open policy: answered at once
  EXPECT_EQ(replies[1].second.code, kOk);
  EXPECT_EQ(l->streams().at(stream_).site, site_);  // it did not move
}

TEST_F(LeaderPolicy, TheControllersSiteFailingDuringTheCheckIsTheCallersError) {
  auto l = make(false);
  start(*l);
  l->on_message(site_, wire::Controls{0, kOpenBit}, 0);
  l->on_message(shell_, wire::OpenReq{7, "s"}, 0);
  ASSERT_EQ(take<wire::PolicyCheck>().size(), 1u);
  l->declare_failed(site_, 0);
  std::vector<Sent> all = sent_;
  auto replies = take<wire::Reply>();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].second.code, static_cast<std::uint64_t>(Status::Code::kUnavailable));
  EXPECT_EQ(replies[0].second.text,
            "site " + std::to_string(site_) + " failed during the policy check");
  // The stream of the failed site is recovered at its failure manager all the same.
  sent_ = all;
  EXPECT_EQ(take<wire::Recover>().size(), 1u);
}

TEST_F(LeaderPolicy, ARestartedLeaderAsksAgainWhatItWaitedFor) {
  auto l = make(true);
  start(*l);
  l->on_message(0, wire::Controls{kOpenBit, 0}, 0);
  l->on_message(shell_, wire::OpenReq{7, "s"}, 0);
  auto checks = take<wire::PolicyCheck>();
  ASSERT_EQ(checks.size(), 1u);
  std::vector<proto::StoredRecord> records;
  std::vector<SiteId> peers;
  l->take_changes(&records, &peers);
  auto again = make(true);
  ASSERT_TRUE(again->restore(records).ok());
  again->resume(0);
  auto asked = take<wire::PolicyCheck>();
  ASSERT_EQ(asked.size(), 1u);  // the session controller's bits were kept
  EXPECT_NE(asked[0].second.check, checks[0].second.check);
  again->on_message(0, wire::PolicyVerdict{checks[0].second.check, kOk, {}}, 0);  // old: dropped
  EXPECT_TRUE(take<wire::Reply>().empty());
  again->on_message(0, wire::PolicyVerdict{asked[0].second.check, kOk, {}}, 0);
  acknowledge_opens(*again);
  auto replies = take<wire::Reply>();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].second.req, 7u);
  EXPECT_EQ(replies[0].second.code, kOk);
}

TEST_F(LeaderPolicy, ARefusedPeerIsToldWhyAndNeverWelcomed) {
  auto l = make(false);
  l->on_message(0, wire::Controls{wire::policy_bit(wire::kPolicyNewPeer), 0}, 0);
  const SiteId s = join(*l, 1, wire::JoinMessage::Role::kSite);
  EXPECT_TRUE(take<wire::Welcome>().empty());
  sent_.clear();
  l->on_message(s, wire::CreateReq{1, "x", s, wire::kNoSite, 0}, 0);  // not admitted yet
  EXPECT_TRUE(take<wire::Install>().empty());
  // (the check went out with the join; find it again by asking for a second peer)
  const SiteId t = join(*l, 2, wire::JoinMessage::Role::kSite);
  auto checks = take<wire::PolicyCheck>();
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].second.args[3], std::to_string(t));
  l->on_message(0, wire::PolicyVerdict{checks[0].second.check, kDenied, "no more"}, 0);
  auto shutdowns = take<wire::Shutdown>();
  ASSERT_EQ(shutdowns.size(), 1u);
  EXPECT_EQ(shutdowns[0].first, t);
  EXPECT_EQ(shutdowns[0].second.reason,
            "the session controller refused site " + std::to_string(t) + ": no more");
  EXPECT_FALSE(l->peers().at(t).live);
}

}  // namespace
}  // namespace mstream::leader
