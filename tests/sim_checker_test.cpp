// The invariant checkers must be able to fail: each test feeds one a broken history directly.
#include <gtest/gtest.h>

#include <string>

#include "sim/checker.hpp"
#include "sim/runner.hpp"

namespace mstream::sim {
namespace {

constexpr proto::ChannelKey kKey{101, 201};

proto::TransportConfig config() {
  proto::TransportConfig c;
  c.channel.max_unconsumed_messages = 8;
  return c;
}

bool flagged(const InvariantChecker& c, const std::string& invariant) {
  for (const Violation& v : c.violations())
    if (v.invariant == invariant) return true;
  return false;
}

// Appends and delivers messages 1..n of kKey.
InvariantChecker with_delivered(proto::Seq n) {
  InvariantChecker c(config());
  c.add_channel(kKey);
  for (proto::Seq s = 1; s <= n; ++s) c.on_append(kKey, s, 1000 + s);
  for (proto::Seq s = 1; s <= n; ++s) c.on_delivery(kKey, s, 1000 + s);
  return c;
}

TEST(InvariantChecker, AcceptsACorrectHistory) {
  InvariantChecker c = with_delivered(3);
  for (proto::Seq s = 1; s <= 3; ++s) c.on_consume(kKey, s);
  c.on_consumed_frame(kKey, 3);
  c.on_released(kKey, 3);
  c.check_end();
  EXPECT_TRUE(c.ok()) << c.violations().front().invariant;
}

TEST(InvariantChecker, FifoFlagsOutOfOrderConsumption) {
  InvariantChecker c = with_delivered(3);
  c.on_consume(kKey, 1);
  c.on_consume(kKey, 3);
  EXPECT_TRUE(flagged(c, "fifo"));
}

TEST(InvariantChecker, FifoFlagsAGapInDelivery) {
  InvariantChecker c(config());
  c.add_channel(kKey);
  for (proto::Seq s = 1; s <= 3; ++s) c.on_append(kKey, s, s);
  c.on_delivery(kKey, 1, 1);
  c.on_delivery(kKey, 3, 3);
  EXPECT_TRUE(flagged(c, "fifo"));
}

TEST(InvariantChecker, FifoFlagsConsumptionBeforeDelivery) {
  InvariantChecker c = with_delivered(1);
  c.on_consume(kKey, 1);
  c.on_consume(kKey, 2);
  EXPECT_TRUE(flagged(c, "fifo"));
}

TEST(InvariantChecker, NoDuplicateFlagsARedelivery) {
  InvariantChecker c = with_delivered(2);
  c.on_delivery(kKey, 2, 1002);
  EXPECT_TRUE(flagged(c, "no_duplicate"));
}

TEST(InvariantChecker, NoDuplicateFlagsADoubleConsumption) {
  InvariantChecker c = with_delivered(2);
  c.on_consume(kKey, 1);
  c.on_consume(kKey, 1);
  EXPECT_TRUE(flagged(c, "no_duplicate"));
}

TEST(InvariantChecker, NoLossFlagsAnUnconsumedMessage) {
  InvariantChecker c = with_delivered(3);
  c.on_consume(kKey, 1);
  c.on_consume(kKey, 2);
  c.check_end();
  EXPECT_TRUE(flagged(c, "no_loss"));
}

TEST(InvariantChecker, IntegrityFlagsAChangedPayload) {
  InvariantChecker c(config());
  c.add_channel(kKey);
  c.on_append(kKey, 1, 77);
  c.on_delivery(kKey, 1, 78);
  EXPECT_TRUE(flagged(c, "integrity"));
}

TEST(InvariantChecker, IntegrityFlagsAMessageNeverAppended) {
  InvariantChecker c(config());
  c.add_channel(kKey);
  c.on_delivery(kKey, 1, 1);
  EXPECT_TRUE(flagged(c, "integrity"));
  InvariantChecker other(config());
  other.on_delivery(proto::ChannelKey{5, 6}, 1, 1);
  EXPECT_TRUE(flagged(other, "integrity"));
}

TEST(InvariantChecker, AckAfterConsumptionFlagsAnEarlyConsumedFrame) {
  InvariantChecker c = with_delivered(3);
  c.on_consume(kKey, 1);
  c.on_consumed_frame(kKey, 1);
  EXPECT_TRUE(c.ok());
  c.on_consumed_frame(kKey, 2);
  EXPECT_TRUE(flagged(c, "ack_after_consumption"));
}

TEST(InvariantChecker, AckAfterConsumptionFlagsAnEarlyRelease) {
  InvariantChecker c = with_delivered(3);
  c.on_consume(kKey, 1);
  c.on_released(kKey, 3);
  EXPECT_TRUE(flagged(c, "ack_after_consumption"));
}

TEST(InvariantChecker, BoundedBuffersFlagsADeliveryBeyondTheWindow) {
  InvariantChecker c(config());
  c.add_channel(kKey);
  for (proto::Seq s = 1; s <= 9; ++s) c.on_append(kKey, s, s);
  for (proto::Seq s = 1; s <= 9; ++s) c.on_delivery(kKey, s, s);
  EXPECT_TRUE(flagged(c, "bounded_buffers"));  // 9 in flight, max_unconsumed_messages is 8
}

TEST(InvariantChecker, AckOnlyReceivedFlagsAnAckOfALostPacket) {
  InvariantChecker c(config());
  for (proto::PacketNumber pn : {1, 2, 4, 5}) c.on_packet_received(3, 4, pn);
  wire::AckFrame ack;
  ack.cumulative = 2;
  ack.ranges = {{4, 5}};
  c.on_ack_sent(4, 3, ack);
  EXPECT_TRUE(c.ok());
  ack.ranges = {{4, 6}};
  c.on_ack_sent(4, 3, ack);
  EXPECT_TRUE(flagged(c, "ack_only_received"));
  InvariantChecker cumulative(config());
  cumulative.on_packet_received(3, 4, 1);
  ack.cumulative = 2;
  ack.ranges.clear();
  cumulative.on_ack_sent(4, 3, ack);
  EXPECT_TRUE(flagged(cumulative, "ack_only_received"));
}

TEST(InvariantChecker, RedeliveryAfterAMoveIsNotADuplicate) {
  InvariantChecker c = with_delivered(3);
  c.on_consume(kKey, 1);
  c.on_receiver_moved(kKey);
  c.on_delivery(kKey, 2, 1002);
  c.on_delivery(kKey, 3, 1003);
  EXPECT_TRUE(c.ok());
  c.on_consume(kKey, 2);
  c.on_consume(kKey, 2);
  EXPECT_TRUE(flagged(c, "no_duplicate"));
}

TEST(InvariantChecker, ApiContractFlagsAWrongSequenceNumber) {
  InvariantChecker c(config());
  c.add_channel(kKey);
  c.on_append(kKey, 2, 1);
  EXPECT_TRUE(flagged(c, "api_contract"));
}

TEST(InvariantChecker, OneEntryPerInvariantWithACount) {
  InvariantChecker c = with_delivered(1);
  c.on_delivery(kKey, 1, 1001);
  c.on_delivery(kKey, 1, 1001);
  ASSERT_EQ(c.violations().size(), 1u);
  EXPECT_EQ(c.violations()[0].count, 2u);
  EXPECT_EQ(fail_line(9, c.violations()[0]).rfind("FAIL seed=9 invariant=no_duplicate ", 0), 0u);
}

}  // namespace
}  // namespace mstream::sim
