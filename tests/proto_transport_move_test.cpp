// Transport when a sender moves with messages in flight: copies sent from the site it left
// (stale) and from the site it lives at now (fresh) reach the receiver in any order, and the
// consumption acks must still reach the sender's current site (DESIGN.md guarantees 1 and 2).
// Regression for sim seed 549: a stale duplicate of a delivered, unconsumed message arrived
// after the fresh copy and redirected the acks to the old site; the sender waited for ever.
#include <gtest/gtest.h>

#include <vector>

#include "proto/transport.hpp"
#include "proto_test_cluster.hpp"
#include "wire/datagram.hpp"

namespace mstream::proto {
namespace {

using namespace testing;  // Cluster, one_to, pattern, kA, kB, kC, kAB

// The sender stream 100 starts at A and moves to C; the receiver 200 stays at B.
class SenderMove : public ::testing::Test {
 protected:
  SenderMove() : c({kA, kB, kC}) {
    EXPECT_TRUE(c[kB].open_stream(200).ok());
    c.auto_consume = false;
  }

  // A sends messages 1..n, and those datagrams are held back (stale copies, in flight);
  // then the sender moves to C, which re-sends them at once.
  void append_then_move(int n) {
    for (int i = 1; i <= n; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(16, i)).ok());
    c.transmit();
    stale_.swap(c.in_flight());
    ASSERT_FALSE(stale_.empty());
    Result<SendState> s = c[kA].take_send_state(kAB);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->incarnation, 0u);
    ASSERT_TRUE(c[kC].import_send_state(kAB, std::move(*s)).ok());
    EXPECT_EQ(c[kC].export_send_state(kAB)->incarnation, 1u);
  }

  void deliver_fresh() {
    c.transmit();
    c.deliver();
    c.drain();
  }

  void deliver_stale() {
    for (OutDatagram& d : stale_) c.in_flight().push_back(std::move(d));
    stale_.clear();
    c.deliver();
    c.drain();
  }

  void consume(Seq up_to) { ASSERT_TRUE(c[kB].consume(kAB, up_to, c.now).ok()); }

  Cluster c;
  std::vector<OutDatagram> stale_;
};

TEST_F(SenderMove, StaleDuplicateAfterFreshCopyDoesNotStrandTheAck) {
  append_then_move(2);
  deliver_fresh();  // C's copies: delivered, not yet consumed
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(2));
  deliver_stale();  // A's copies arrive last, duplicates of unconsumed messages
  EXPECT_EQ(c[kB].recv_channel(kAB)->reply_site, kC);
  consume(2);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.released_up_to(kC, kAB), 2u);
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(2));
}

TEST_F(SenderMove, StaleCopyFirstThenFreshDuplicateRedirectsTheAck) {
  append_then_move(2);
  deliver_stale();  // A's copies are the ones accepted
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(2));
  deliver_fresh();  // C's copies are duplicates, but from the newer incarnation
  EXPECT_EQ(c[kB].recv_channel(kAB)->reply_site, kC);
  consume(2);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.released_up_to(kC, kAB), 2u);
}

TEST_F(SenderMove, StaleCopiesAroundAPartialConsumptionDoNotStrandTheAck) {
  append_then_move(3);
  deliver_fresh();
  consume(1);  // the ack for 1 goes to C
  deliver_stale();  // 1 is a consumed duplicate (answered to A, ignored there); 2, 3 are not
  consume(3);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.released_up_to(kC, kAB), 3u);
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(3));
}

TEST_F(SenderMove, AStaleCopyNewerThanTheConsumedOnesIsAcceptedButAckedToTheNewSite) {
  append_then_move(2);
  // Only message 1 of C's re-send gets through before A's stale datagrams.
  c.transmit();
  std::vector<OutDatagram> fresh;
  fresh.swap(c.in_flight());
  ASSERT_TRUE(c[kB].on_datagram(fresh.front().bytes, c.now).ok());
  deliver_stale();
  EXPECT_EQ(c[kB].recv_channel(kAB)->reply_site, kC);
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(2));  // 2 came from A only
  consume(2);
  for (std::size_t i = 1; i < fresh.size(); ++i) c.in_flight().push_back(fresh[i]);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.released_up_to(kC, kAB), 2u);
}

TEST_F(SenderMove, TheReceiverKeepsTheNewestIncarnationWhenItMoves) {
  append_then_move(2);
  deliver_fresh();
  Result<RecvState> r = c[kB].export_recv_state(kAB);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reply_site, kC);
  EXPECT_EQ(r->reply_incarnation, 1u);
  RecvChannel moved(*r);
  EXPECT_EQ(moved.reply_incarnation(), 1u);
  EXPECT_FALSE(moved.accept_incarnation(0));  // a copy from A, the site the sender left
  EXPECT_TRUE(moved.accept_incarnation(1));
  EXPECT_TRUE(moved.accept_incarnation(2));
  EXPECT_EQ(moved.reply_incarnation(), 2u);
}

TEST_F(SenderMove, EveryMoveStartsANewIncarnationCarriedInItsData) {
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(8, 1)).ok());
  Result<SendState> s = c[kA].take_send_state(kAB);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(c[kC].import_send_state(kAB, std::move(*s)).ok());
  s = c[kC].take_send_state(kAB);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(c[kA].import_send_state(kAB, std::move(*s)).ok());  // back to A
  c.transmit();
  bool seen = false;
  for (const OutDatagram& d : c.in_flight()) {
    wire::DecodedDatagram dd;
    ASSERT_TRUE(wire::decode_datagram(d.bytes, &dd).ok());
    for (const wire::Frame& f : dd.frames) {
      if (f.type != wire::FrameType::kData) continue;
      EXPECT_EQ(f.incarnation, 2u);
      seen = true;
    }
  }
  EXPECT_TRUE(seen);
}

}  // namespace
}  // namespace mstream::proto
