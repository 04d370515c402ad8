// The sender rules of control messages at a site (wire::Sender, site/sender_rules.cpp): a
// member that holds the session's keys sends, over its own control stream, what only the
// leader may say, answers nobody asked for and reports about streams it does not host. The
// receiving site drops each, counts it under its type, and changes nothing.
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "site_test_support.hpp"

namespace mstream::site {
namespace {

std::uint64_t refused(const SiteCore& core, const wire::ControlMessage& m) {
  return core.counters().refused_control[m.index()];
}

wire::StreamRecord phantom(SiteId at) {
  wire::StreamRecord rec;
  rec.id = 777;
  rec.name = "phantom";
  rec.site = at;
  rec.epoch = 1;
  return rec;
}

// The reproduction: site 1 commands site 2 as the leader would.
TEST(SenderRules, ASiteTakesNoCommandFromAnotherSite) {
  Sites s{1, 2};
  const wire::ControlMessage install = wire::Install{phantom(2)};
  s[1].send_raw_control(2, control_stream(2), install);
  s.pump();
  EXPECT_FALSE(s[2].hosts(777));
  EXPECT_EQ(refused(s[2], install), 1u);

  const wire::ControlMessage destroy = wire::DestroyStream{777};
  const wire::ControlMessage shutdown = wire::Shutdown{0, "not yours to say"};
  const wire::ControlMessage code = wire::Code{5, 777, "", "proc x {} {}", "", 0, 1};
  s[1].send_raw_control(2, control_stream(2), destroy);
  s[1].send_raw_control(2, control_stream(2), code);
  s[1].send_raw_control(2, control_stream(2), shutdown);
  s.pump();
  EXPECT_FALSE(s[2].finished());
  EXPECT_EQ(refused(s[2], destroy), 1u);
  EXPECT_EQ(refused(s[2], code), 1u);
  EXPECT_EQ(refused(s[2], shutdown), 1u);
}

// Every type the leader alone sends, every request meant for the leader, every answer and
// report: all refused at a site when another site sends them, each under its own type.
TEST(SenderRules, EveryTypeFromAnotherSiteIsRefusedAndCountedUnderItsType) {
  Sites s{1, 2};
  for (std::size_t type = 0; type < wire::kControlTypes; ++type) {
    wire::ControlMessage m = wire::control_of_type(type);
    // Each waits for the leader's word of a stream this site does not know yet: below.
    if (std::holds_alternative<wire::Arrive>(m) || std::holds_alternative<wire::Checkpoint>(m))
      continue;
    s[1].send_raw_control(2, control_stream(2), m);
    s.pump();
    EXPECT_EQ(refused(s[2], m), 1u) << wire::control_name(m);
  }
  EXPECT_FALSE(s[2].finished());
  EXPECT_EQ(s[2].hosted_count(), 0u);
}

// An Arrive the leader did not announce waits apart; once the leader's Expect names another
// source, it is refused and counted.
TEST(SenderRules, AnArriveFromAnotherThanTheExpectedSourceIsRefused) {
  Sites s{0, 1, 2};
  wire::Arrive a;
  a.stream = phantom(2);
  a.stream.epoch = 2;
  s[1].send_raw_control(2, control_stream(2), a);
  s.pump();
  EXPECT_FALSE(s[2].hosts(777));
  EXPECT_EQ(refused(s[2], a), 0u);  // not known yet for a lie
  s[0].send_raw_control(2, control_stream(2), wire::Expect{777, 2, 0});
  s.pump();
  EXPECT_FALSE(s[2].hosts(777));
  EXPECT_EQ(refused(s[2], a), 1u);
}

// What the leader says, a site does: the rule is about who sends, not what.
TEST(SenderRules, TheLeaderIsObeyed) {
  Sites s{0, 2};
  s[0].send_raw_control(2, control_stream(2), wire::Install{phantom(2)});
  s.pump();
  EXPECT_TRUE(s[2].hosts(777));
  EXPECT_EQ(s[2].counters().refused_control_total(), 0u);
}

// A checkpoint is stored only from the host the failure manager knows at its epoch; from
// another site at that epoch it is refused, and nothing is stored.
TEST(SenderRules, ACheckpointIsTakenOnlyFromTheStreamsHost) {
  Sites s{0, 1, 2, 3};
  wire::StreamRecord rec = phantom(1);
  rec.failure_manager = 2;
  rec.flags = wire::kStreamDurable;
  s[0].send_raw_control(2, control_stream(2), wire::Location{rec, {}});
  s.pump();
  wire::Checkpoint forged;
  forged.version = 1;
  forged.state.stream = rec;
  s[3].send_raw_control(2, control_stream(2), forged);
  s.pump();
  EXPECT_EQ(refused(s[2], forged), 1u);
  // A later epoch than it knows waits for the leader's word: the move to site 3 makes it
  // the host, and its checkpoint is then taken (answered: no store here, so refused with
  // kUnavailable, but not dropped as a forgery).
  wire::Checkpoint early = forged;
  early.state.stream.epoch = 2;
  early.state.stream.site = 3;
  s[3].send_raw_control(2, control_stream(2), early);
  s.pump();
  EXPECT_EQ(refused(s[2], early), 1u);
  wire::StreamRecord moved = rec;
  moved.site = 3;
  moved.epoch = 2;
  s[0].send_raw_control(2, control_stream(2), wire::Location{moved, {}});
  s.pump();
  EXPECT_EQ(refused(s[2], early), 1u);
}

// A durable stream's host takes a checkpoint's answer only from its failure manager: from
// another member, the host would count as stored what nobody stored (its senders released,
// its appends sent), and a crash would then lose them.
void checkpointed_by_a_liar(std::uint32_t rules_off, bool* committed, std::uint64_t* refused_n) {
  Sites s({0, 1, 2}, rules_off);  // site 3, the failure manager, never answers
  wire::StreamRecord rec = phantom(2);
  rec.failure_manager = 3;
  rec.flags = wire::kStreamDurable;
  wire::StreamRecord sender;
  sender.id = 555;
  sender.name = "sender";
  sender.site = 1;
  sender.epoch = 1;
  s[0].send_raw_control(2, control_stream(2), wire::Install{rec});
  for (SiteId at : {1, 2}) {
    s[0].send_raw_control(at, control_stream(at), wire::Location{rec, {}});
    s[0].send_raw_control(at, control_stream(at), wire::Location{sender, {}});
  }
  s[0].send_raw_control(2, control_stream(2), wire::Opened{777, 555});
  s.pump();
  ASSERT_TRUE(s[1].append_from(555, "phantom", "kept", false).ok());
  s.pump();
  const std::optional<std::uint64_t> version = s[2].checkpoint_in_flight(777);
  ASSERT_TRUE(version.has_value());
  const wire::ControlMessage lie = wire::Checkpointed{777, rec.epoch, *version, 0, ""};
  s[1].send_raw_control(2, control_stream(2), lie);
  s.pump();
  *committed = !s[2].checkpoint_in_flight(777).has_value();
  *refused_n = refused(s[2], lie);
}

TEST(SenderRules, ACheckpointIsAnsweredOnlyByTheFailureManager) {
  bool committed = true;
  std::uint64_t n = 0;
  checkpointed_by_a_liar(0, &committed, &n);
  EXPECT_FALSE(committed);
  EXPECT_EQ(n, 1u);
  checkpointed_by_a_liar(1u << static_cast<unsigned>(wire::Sender::kFailureManager), &committed,
                         &n);
  EXPECT_TRUE(committed);  // without the rule: nothing stored, yet taken as stored
  EXPECT_EQ(n, 0u);
}

// The open gate (site/opens.cpp): a stream takes a channel only from a sender the leader told
// its site opened it. A member that appends without opening is refused (REJECT kNotOpened)
// and nothing reaches the stream; once the leader's Opened arrives, the sender's re-sent
// message is taken.
TEST(OpenGate, AStreamTakesNoMessageFromASenderThatDidNotOpenIt) {
  Sites s{0, 1, 2};
  s[0].send_raw_control(2, control_stream(2), wire::Install{phantom(2)});
  s[0].send_raw_control(1, control_stream(1), wire::Location{phantom(2), {}});
  s.pump();
  ASSERT_TRUE(s[2].hosts(777));
  constexpr StreamId kSender = 555;  // a stream of site 1's, as the leader told site 2
  wire::StreamRecord sender;
  sender.id = kSender;
  sender.name = "sender";
  sender.site = 1;
  sender.epoch = 1;
  s[0].send_raw_control(2, control_stream(2), wire::Location{sender, {}});
  s.pump();
  ASSERT_TRUE(s[1].append_from(kSender, "phantom", "never opened", false).ok());
  s.pump();
  EXPECT_GE(s[2].transport().stats().unopened_frames, 1u);  // and again at each retry
  EXPECT_EQ(s[2].counters().consumed, 0u);
  s[0].send_raw_control(2, control_stream(2), wire::Opened{777, kSender});
  s.pump();
  EXPECT_EQ(s[2].counters().consumed, 1u);  // re-sent after the refusal, and taken now
}

}  // namespace
}  // namespace mstream::site
