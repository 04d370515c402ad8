// SendChannel: numbering, the bounded buffer, release on consumption acks, the send cursor,
// and its state as a value.
#include <gtest/gtest.h>

#include <cstdint>

#include "proto/channel.hpp"

namespace mstream::proto {
namespace {

wire::Bytes msg(std::size_t n, std::uint8_t fill = 0x42) { return wire::Bytes(n, fill); }

// Hands every unsent message whole to the path.
void send_all(SendChannel& ch) {
  while (ch.has_unsent()) ch.advance_unsent(ch.unsent_message().size() - ch.unsent_offset());
}

TEST(SendChannel, NumbersMessagesFromOne) {
  SendChannel ch;
  EXPECT_EQ(ch.next_seq(), 1u);
  EXPECT_EQ(ch.push(msg(3)), 1u);
  EXPECT_EQ(ch.push(msg(4)), 2u);
  EXPECT_EQ(ch.push(msg(5)), 3u);
  EXPECT_EQ(ch.next_seq(), 4u);
  EXPECT_EQ(ch.consumed_up_to(), 0u);
  EXPECT_EQ(ch.unconsumed_count(), 3u);
  EXPECT_EQ(ch.unconsumed_bytes(), 12u);
  EXPECT_EQ(ch.message(2), msg(4));
}

TEST(SendChannel, FullBufferRefusesAppend) {
  ChannelConfig cfg;
  cfg.max_unconsumed_messages = 3;
  SendChannel ch;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(ch.check_append(10, cfg).ok());
    ch.push(msg(10));
  }
  Status s = ch.check_append(10, cfg);
  EXPECT_EQ(s.code(), Status::Code::kWouldBlock);
  EXPECT_EQ(ch.unconsumed_count(), 3u);
}

TEST(SendChannel, ByteBoundRefusesAppend) {
  ChannelConfig cfg;
  cfg.max_unconsumed_bytes = 100;
  SendChannel ch;
  ASSERT_TRUE(ch.check_append(60, cfg).ok());
  ch.push(msg(60));
  EXPECT_TRUE(ch.check_append(40, cfg).ok());
  EXPECT_EQ(ch.check_append(41, cfg).code(), Status::Code::kWouldBlock);
}

TEST(SendChannel, EmptyBufferAcceptsOneMessageLargerThanTheByteBound) {
  // doc/protocol.md: "one message larger than that is accepted into an empty buffer".
  ChannelConfig cfg;
  cfg.max_unconsumed_bytes = 100;
  cfg.max_message_bytes = 1000;
  SendChannel ch;
  ASSERT_TRUE(ch.check_append(500, cfg).ok());
  ch.push(msg(500));
  EXPECT_EQ(ch.check_append(1, cfg).code(), Status::Code::kWouldBlock);
}

TEST(SendChannel, OversizedMessageIsTooLarge) {
  ChannelConfig cfg;
  cfg.max_message_bytes = 1000;
  SendChannel ch;
  EXPECT_TRUE(ch.check_append(1000, cfg).ok());
  EXPECT_EQ(ch.check_append(1001, cfg).code(), Status::Code::kTooLarge);
}

TEST(SendChannel, ReleaseFreesTheConsumedPrefix) {
  ChannelConfig cfg;
  cfg.max_unconsumed_messages = 2;
  SendChannel ch;
  ch.push(msg(10));
  ch.push(msg(20));
  send_all(ch);
  EXPECT_FALSE(ch.check_append(1, cfg).ok());
  bool bogus = true;
  EXPECT_EQ(ch.release(1, &bogus), 1u);
  EXPECT_FALSE(bogus);
  EXPECT_EQ(ch.consumed_up_to(), 1u);
  EXPECT_EQ(ch.unconsumed_count(), 1u);
  EXPECT_EQ(ch.unconsumed_bytes(), 20u);
  EXPECT_EQ(ch.message(2), msg(20));
  EXPECT_TRUE(ch.check_append(1, cfg).ok());
  EXPECT_EQ(ch.release(2, &bogus), 1u);
  EXPECT_EQ(ch.unconsumed_count(), 0u);
  EXPECT_EQ(ch.unconsumed_bytes(), 0u);
}

TEST(SendChannel, StaleReleaseIsANoOp) {
  SendChannel ch;
  ch.push(msg(1));
  ch.push(msg(1));
  send_all(ch);
  bool bogus = true;
  ASSERT_EQ(ch.release(2, &bogus), 2u);
  EXPECT_EQ(ch.release(1, &bogus), 0u);
  EXPECT_FALSE(bogus);
  EXPECT_EQ(ch.release(2, &bogus), 0u);
  EXPECT_FALSE(bogus);
  EXPECT_EQ(ch.consumed_up_to(), 2u);
}

TEST(SendChannel, ReleaseOfANeverSentMessageIsBogus) {
  SendChannel ch;
  ch.push(msg(1));
  send_all(ch);
  bool bogus = false;
  EXPECT_EQ(ch.release(5, &bogus), 0u);
  EXPECT_TRUE(bogus);
  EXPECT_EQ(ch.consumed_up_to(), 0u);
  EXPECT_EQ(ch.unconsumed_count(), 1u);
}

TEST(SendChannel, ReleaseOfAMessageNotYetHandedToThePathIsBogus) {
  SendChannel ch;
  ch.push(msg(1));
  ch.push(msg(1));
  ch.advance_unsent(1);  // only #1 went out
  bool bogus = false;
  EXPECT_EQ(ch.release(2, &bogus), 0u);
  EXPECT_TRUE(bogus);
  EXPECT_EQ(ch.unconsumed_count(), 2u);
}

TEST(SendChannel, SendCursorAdvancesByWholeMessagesAndFragments) {
  SendChannel ch;
  ch.push(msg(100));
  ch.push(msg(5));
  ASSERT_TRUE(ch.has_unsent());
  EXPECT_EQ(ch.unsent_seq(), 1u);
  ch.advance_unsent(40);
  EXPECT_EQ(ch.unsent_seq(), 1u);
  EXPECT_EQ(ch.unsent_offset(), 40u);
  ch.advance_unsent(60);
  EXPECT_EQ(ch.unsent_seq(), 2u);
  EXPECT_EQ(ch.unsent_offset(), 0u);
  EXPECT_EQ(ch.unsent_message(), msg(5));
  ch.advance_unsent(5);
  EXPECT_FALSE(ch.has_unsent());
}

TEST(SendChannel, EmptyMessageIsSentWhole) {
  SendChannel ch;
  ch.push({});
  ASSERT_TRUE(ch.has_unsent());
  ch.advance_unsent(0);
  EXPECT_FALSE(ch.has_unsent());
}

TEST(SendChannel, ResendStartsAtTheFirstUnconsumedMessage) {
  SendChannel ch;
  for (int i = 0; i < 4; ++i) ch.push(msg(3, static_cast<std::uint8_t>(i)));
  send_all(ch);
  bool bogus = false;
  ASSERT_EQ(ch.release(2, &bogus), 2u);
  ch.resend_unconsumed();
  ASSERT_TRUE(ch.has_unsent());
  EXPECT_EQ(ch.unsent_seq(), 3u);
  EXPECT_EQ(ch.unsent_offset(), 0u);
  EXPECT_EQ(ch.unsent_message(), msg(3, 2));
}

// Regression (fuzz_transport): a consumption ack that overtakes a re-send must not leave the
// send cursor on released messages.
TEST(SendChannel, ReleaseBeyondTheResendPointSkipsReleasedMessages) {
  SendChannel ch;
  for (int i = 0; i < 3; ++i) ch.push(msg(4));
  send_all(ch);
  ch.resend_unconsumed();
  ASSERT_EQ(ch.unsent_seq(), 1u);
  bool bogus = true;
  ASSERT_EQ(ch.release(3, &bogus), 3u);
  EXPECT_FALSE(bogus);
  EXPECT_FALSE(ch.has_unsent()) << "unsent_seq " << ch.unsent_seq() << " after release of 3";
  EXPECT_GT(ch.unsent_seq(), ch.consumed_up_to());
  ch.push(msg(1));
  EXPECT_EQ(ch.unsent_seq(), 4u);
}

TEST(SendChannel, PartialReleaseDuringResendMovesTheCursor) {
  SendChannel ch;
  for (int i = 0; i < 3; ++i) ch.push(msg(4, static_cast<std::uint8_t>(i)));
  send_all(ch);
  ch.resend_unconsumed();
  ch.advance_unsent(2);  // half of #1 went out again as a fragment
  bool bogus = true;
  ASSERT_EQ(ch.release(2, &bogus), 2u);
  ASSERT_TRUE(ch.has_unsent());
  EXPECT_EQ(ch.unsent_seq(), 3u);
  EXPECT_EQ(ch.unsent_offset(), 0u);
  EXPECT_EQ(ch.unsent_message(), msg(4, 2));
}

TEST(SendChannel, StateRoundTripsAsAValue) {
  SendChannel ch;
  for (int i = 0; i < 4; ++i) ch.push(msg(2, static_cast<std::uint8_t>(i)));
  send_all(ch);
  bool bogus = false;
  ASSERT_EQ(ch.release(1, &bogus), 1u);
  ch.dest = 7;
  SendState s = ch.export_state();
  EXPECT_EQ(s.next_seq, 5u);
  EXPECT_EQ(s.consumed_up_to, 1u);
  ASSERT_EQ(s.unconsumed.size(), 3u);
  EXPECT_EQ(s.unconsumed[0], msg(2, 1));
  EXPECT_EQ(s.dest, 7u);

  SendChannel moved(s);
  EXPECT_EQ(moved.next_seq(), 5u);
  EXPECT_EQ(moved.consumed_up_to(), 1u);
  EXPECT_EQ(moved.unconsumed_count(), 3u);
  EXPECT_EQ(moved.unconsumed_bytes(), 6u);
  EXPECT_EQ(moved.message(4), msg(2, 3));
  EXPECT_EQ(moved.dest, 7u);
  // A moved sender re-sends every unconsumed message from the first.
  ASSERT_TRUE(moved.has_unsent());
  EXPECT_EQ(moved.unsent_seq(), 2u);
}

// The old site sent every message of the state; the receiver may have consumed them all and
// its CONSUMED can reach the new site before the re-send has gone out in full.
TEST(SendChannel, ImportedChannelAcceptsReleaseOfMessagesSentBeforeTheMove) {
  SendState s;
  s.next_seq = 5;
  s.consumed_up_to = 1;
  s.unconsumed = {msg(1), msg(1), msg(1)};
  SendChannel moved(s);
  bool bogus = true;
  EXPECT_EQ(moved.release(4, &bogus), 3u);
  EXPECT_FALSE(bogus);
  EXPECT_FALSE(moved.has_unsent());
}

}  // namespace
}  // namespace mstream::proto
