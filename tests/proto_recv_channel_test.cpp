// RecvChannel: reordering, duplicate suppression, the receive window, reassembly of
// fragments, and consumption.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "proto/channel.hpp"

namespace mstream::proto {
namespace {

using Outcome = RecvChannel::Outcome;

wire::Bytes msg(std::size_t n, std::uint8_t fill) { return wire::Bytes(n, fill); }

Outcome data(RecvChannel& ch, Seq seq, const wire::Bytes& payload, const ChannelConfig& cfg) {
  return ch.on_fragment(seq, payload.size(), 0, payload, cfg);
}

std::vector<Seq> pop_all(RecvChannel& ch, std::vector<wire::Bytes>* payloads = nullptr) {
  std::vector<Seq> seqs;
  Seq seq = 0;
  wire::Bytes b;
  while (ch.pop_ready(&seq, &b)) {
    seqs.push_back(seq);
    if (payloads != nullptr) payloads->push_back(b);
  }
  return seqs;
}

TEST(RecvChannel, DeliversInOrderMessagesAtOnce) {
  ChannelConfig cfg;
  RecvChannel ch;
  EXPECT_EQ(ch.next_expected(), 1u);
  EXPECT_EQ(data(ch, 1, msg(3, 1), cfg), Outcome::kAccepted);
  std::vector<wire::Bytes> payloads;
  EXPECT_EQ(pop_all(ch, &payloads), (std::vector<Seq>{1}));
  EXPECT_EQ(payloads[0], msg(3, 1));
  EXPECT_EQ(ch.next_expected(), 2u);
}

TEST(RecvChannel, ReordersOutOfOrderMessages) {
  ChannelConfig cfg;
  RecvChannel ch;
  EXPECT_EQ(data(ch, 3, msg(1, 3), cfg), Outcome::kAccepted);
  EXPECT_EQ(data(ch, 2, msg(1, 2), cfg), Outcome::kAccepted);
  EXPECT_TRUE(pop_all(ch).empty()) << "nothing may pass the gap at 1";
  EXPECT_EQ(ch.buffered_messages(), 2u);
  EXPECT_EQ(data(ch, 1, msg(1, 1), cfg), Outcome::kAccepted);
  std::vector<wire::Bytes> payloads;
  EXPECT_EQ(pop_all(ch, &payloads), (std::vector<Seq>{1, 2, 3}));
  EXPECT_EQ(payloads, (std::vector<wire::Bytes>{msg(1, 1), msg(1, 2), msg(1, 3)}));
  EXPECT_EQ(ch.next_expected(), 4u);
}

TEST(RecvChannel, SuppressesDuplicatesHeldAndDelivered) {
  ChannelConfig cfg;
  RecvChannel ch;
  ASSERT_EQ(data(ch, 2, msg(1, 2), cfg), Outcome::kAccepted);
  EXPECT_EQ(data(ch, 2, msg(1, 2), cfg), Outcome::kDuplicate);
  ASSERT_EQ(data(ch, 1, msg(1, 1), cfg), Outcome::kAccepted);
  EXPECT_EQ(pop_all(ch).size(), 2u);
  EXPECT_EQ(data(ch, 1, msg(1, 1), cfg), Outcome::kDuplicate);
  EXPECT_EQ(data(ch, 2, msg(1, 2), cfg), Outcome::kDuplicate);
  EXPECT_TRUE(pop_all(ch).empty());
}

TEST(RecvChannel, DuplicateOfAMessageReadyButNotPoppedIsSuppressed) {
  ChannelConfig cfg;
  RecvChannel ch;
  ASSERT_EQ(data(ch, 1, msg(1, 1), cfg), Outcome::kAccepted);
  EXPECT_EQ(data(ch, 1, msg(1, 1), cfg), Outcome::kDuplicate);
  EXPECT_EQ(pop_all(ch), (std::vector<Seq>{1}));
}

TEST(RecvChannel, RefusesWhatNoSenderWithTheSameBoundsCouldSend) {
  ChannelConfig cfg;
  cfg.max_unconsumed_messages = 4;
  RecvChannel ch;
  // A sender holds at most 4 unconsumed messages: 1..4 are possible, 5 is not.
  EXPECT_EQ(data(ch, 5, msg(1, 5), cfg), Outcome::kOutOfWindow);
  EXPECT_EQ(data(ch, 4, msg(1, 4), cfg), Outcome::kAccepted);
  EXPECT_EQ(data(ch, 1000000, msg(1, 0), cfg), Outcome::kOutOfWindow);
  // Consumption moves the window.
  ASSERT_EQ(data(ch, 1, msg(1, 1), cfg), Outcome::kAccepted);
  ASSERT_EQ(pop_all(ch), (std::vector<Seq>{1}));
  ASSERT_TRUE(ch.consume(1).ok());
  EXPECT_EQ(data(ch, 5, msg(1, 5), cfg), Outcome::kAccepted);
  EXPECT_EQ(data(ch, 6, msg(1, 6), cfg), Outcome::kOutOfWindow);
}

TEST(RecvChannel, RefusesMessagesLargerThanTheMaximum) {
  ChannelConfig cfg;
  cfg.max_message_bytes = 100;
  RecvChannel ch;
  EXPECT_EQ(data(ch, 1, msg(101, 0), cfg), Outcome::kTooLarge);
  wire::Bytes part = msg(10, 0);
  EXPECT_EQ(ch.on_fragment(1, 1000, 0, part, cfg), Outcome::kTooLarge);
  EXPECT_EQ(data(ch, 1, msg(100, 0), cfg), Outcome::kAccepted);
}

TEST(RecvChannel, EmptyMessageIsDelivered) {
  ChannelConfig cfg;
  RecvChannel ch;
  EXPECT_EQ(data(ch, 1, {}, cfg), Outcome::kAccepted);
  std::vector<wire::Bytes> payloads;
  EXPECT_EQ(pop_all(ch, &payloads), (std::vector<Seq>{1}));
  EXPECT_TRUE(payloads[0].empty());
}

TEST(RecvChannel, ReassemblesFragmentsInAnyOrder) {
  ChannelConfig cfg;
  wire::Bytes whole(100);
  for (std::size_t i = 0; i < whole.size(); ++i) whole[i] = static_cast<std::uint8_t>(i);
  auto part = [&](std::size_t off, std::size_t len) {
    return wire::Bytes(whole.begin() + static_cast<std::ptrdiff_t>(off),
                       whole.begin() + static_cast<std::ptrdiff_t>(off + len));
  };
  RecvChannel ch;
  EXPECT_EQ(ch.on_fragment(1, 100, 60, part(60, 40), cfg), Outcome::kAccepted);
  EXPECT_EQ(ch.on_fragment(1, 100, 0, part(0, 30), cfg), Outcome::kAccepted);
  EXPECT_TRUE(pop_all(ch).empty()) << "an incomplete message is not ready";
  EXPECT_EQ(ch.on_fragment(1, 100, 30, part(30, 30), cfg), Outcome::kAccepted);
  std::vector<wire::Bytes> payloads;
  EXPECT_EQ(pop_all(ch, &payloads), (std::vector<Seq>{1}));
  EXPECT_EQ(payloads[0], whole);
}

TEST(RecvChannel, RepeatedAndOverlappingFragmentsDoNotCorruptTheMessage) {
  ChannelConfig cfg;
  wire::Bytes whole(50);
  for (std::size_t i = 0; i < whole.size(); ++i) whole[i] = static_cast<std::uint8_t>(i * 3);
  auto part = [&](std::size_t off, std::size_t len) {
    return wire::Bytes(whole.begin() + static_cast<std::ptrdiff_t>(off),
                       whole.begin() + static_cast<std::ptrdiff_t>(off + len));
  };
  RecvChannel ch;
  ASSERT_EQ(ch.on_fragment(1, 50, 0, part(0, 20), cfg), Outcome::kAccepted);
  // The same fragment again (a re-send) and one overlapping it.
  Outcome again = ch.on_fragment(1, 50, 0, part(0, 20), cfg);
  EXPECT_TRUE(again == Outcome::kDuplicate || again == Outcome::kAccepted);
  Outcome overlap = ch.on_fragment(1, 50, 10, part(10, 20), cfg);
  EXPECT_TRUE(overlap == Outcome::kDuplicate || overlap == Outcome::kAccepted);
  EXPECT_TRUE(pop_all(ch).empty());
  ASSERT_EQ(ch.on_fragment(1, 50, 30, part(30, 20), cfg), Outcome::kAccepted);
  std::vector<wire::Bytes> payloads;
  ASSERT_EQ(pop_all(ch, &payloads), (std::vector<Seq>{1}));
  EXPECT_EQ(payloads[0], whole);
}

TEST(RecvChannel, FragmentDisagreeingAboutTheSizeIsInconsistent) {
  ChannelConfig cfg;
  RecvChannel ch;
  wire::Bytes part = msg(10, 1);
  ASSERT_EQ(ch.on_fragment(1, 40, 0, part, cfg), Outcome::kAccepted);
  EXPECT_EQ(ch.on_fragment(1, 50, 10, part, cfg), Outcome::kInconsistent);
  // A whole DATA frame for a message held as fragments of another size.
  EXPECT_EQ(data(ch, 1, msg(10, 1), cfg), Outcome::kInconsistent);
}

TEST(RecvChannel, ConsumeFollowsDelivery) {
  ChannelConfig cfg;
  RecvChannel ch;
  for (Seq s = 1; s <= 3; ++s) ASSERT_EQ(data(ch, s, msg(1, 0), cfg), Outcome::kAccepted);
  ASSERT_EQ(pop_all(ch).size(), 3u);
  EXPECT_FALSE(ch.consume(4).ok()) << "4 was not delivered";
  EXPECT_FALSE(ch.consume(0).ok()) << "nothing after the last consumed";
  EXPECT_TRUE(ch.consume(2).ok());
  EXPECT_EQ(ch.consumed_up_to(), 2u);
  EXPECT_FALSE(ch.consume(2).ok()) << "already consumed";
  EXPECT_FALSE(ch.consume(1).ok()) << "backwards";
  EXPECT_TRUE(ch.consume(3).ok());
  EXPECT_EQ(ch.consumed_up_to(), 3u);
}

TEST(RecvChannel, ConsumeOfAHeldButUndeliveredMessageIsRefused) {
  ChannelConfig cfg;
  RecvChannel ch;
  ASSERT_EQ(data(ch, 2, msg(1, 0), cfg), Outcome::kAccepted);
  EXPECT_FALSE(ch.consume(2).ok());
  EXPECT_EQ(ch.consumed_up_to(), 0u);
}

TEST(RecvChannel, ImportedStateSuppressesConsumedMessages) {
  ChannelConfig cfg;
  RecvChannel ch(RecvState{5, 3});
  EXPECT_EQ(ch.consumed_up_to(), 5u);
  EXPECT_EQ(ch.next_expected(), 6u);
  EXPECT_EQ(ch.reply_site, 3u);
  EXPECT_EQ(data(ch, 5, msg(1, 5), cfg), Outcome::kDuplicate);
  EXPECT_EQ(data(ch, 6, msg(1, 6), cfg), Outcome::kAccepted);
  EXPECT_EQ(pop_all(ch), (std::vector<Seq>{6}));
  RecvState out = ch.export_state();
  EXPECT_EQ(out.consumed_up_to, 5u) << "delivered but unconsumed is not part of the state";
  EXPECT_EQ(out.reply_site, 3u);
}

TEST(RecvChannel, BufferedBytesCountHeldMessages) {
  ChannelConfig cfg;
  RecvChannel ch;
  ASSERT_EQ(data(ch, 2, msg(10, 0), cfg), Outcome::kAccepted);
  ASSERT_EQ(data(ch, 3, msg(20, 0), cfg), Outcome::kAccepted);
  EXPECT_EQ(ch.buffered_messages(), 2u);
  EXPECT_GE(ch.buffered_bytes(), 30u);
  ASSERT_EQ(data(ch, 1, msg(5, 0), cfg), Outcome::kAccepted);
  ASSERT_EQ(pop_all(ch).size(), 3u);
  EXPECT_EQ(ch.buffered_messages(), 0u);
  EXPECT_EQ(ch.buffered_bytes(), 0u);
}

}  // namespace
}  // namespace mstream::proto
