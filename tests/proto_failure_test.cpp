// The transport's part in failures (doc/protocol.md "Failures"): keepalives that the failure
// detector hears, fencing of an expelled site, a recovered receiver resynchronised by the
// senders' floor, a recovered sender's new numbering (origin), and a peer restarted under a
// new boot (the leader resuming from its durable state).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/transport.hpp"
#include "proto_test_cluster.hpp"
#include "wire/datagram.hpp"

namespace mstream::proto {
namespace {

using namespace testing;  // Cluster, one_to, pattern, kA, kB, kC, kAB

wire::Bytes text(const std::string& s) { return wire::Bytes(s.begin(), s.end()); }
std::string text_of(const wire::Bytes& b) { return std::string(b.begin(), b.end()); }

std::vector<std::string> payloads(const Cluster& c, SiteId at, ChannelKey key) {
  std::vector<std::string> out;
  auto it = c.delivered.find(at);
  if (it == c.delivered.end()) return out;
  for (const Delivery& d : it->second)
    if (d.key == key) out.push_back(text_of(d.payload));
  return out;
}

TEST(Keepalive, AnIdlePathIsPingedAndThePeerHearsIt) {
  Cluster c({kA, kB});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  EXPECT_EQ(c[kB].last_heard(kA), -1);
  c[kA].set_keepalive(kB, 100 * kMillisecond);
  c.run_for(kSecond);
  // About ten keepalives in a second. They ask for no answer (each end keeps the other
  // hearing from it) and leave nothing outstanding.
  EXPECT_GE(c[kA].stats().datagrams_out, 8u);
  EXPECT_LE(c[kA].stats().datagrams_out, 12u);
  EXPECT_GE(c[kB].last_heard(kA), c.now - 150 * kMillisecond);
  EXPECT_EQ(c[kA].last_heard(kB), -1);
  EXPECT_EQ(c[kB].stats().datagrams_out, 0u);
  EXPECT_TRUE(c[kA].idle());
}

TEST(Keepalive, WithoutItAnIdlePathSendsNothing) {
  Cluster c({kA, kB});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  ASSERT_TRUE(c.append(kA, kAB, kB, text("x")).ok());
  ASSERT_TRUE(c.settle());
  const std::uint64_t sent = c[kA].stats().datagrams_out;
  c.run_for(kSecond);
  EXPECT_EQ(c[kA].stats().datagrams_out, sent);
}

TEST(Keepalive, StopsForAnExpelledSite) {
  Cluster c({kA, kB});
  c[kA].admit_site(kB);
  c[kA].set_keepalive(kB, 100 * kMillisecond);
  c.run_for(300 * kMillisecond);
  c[kA].expel_site(kB);
  const std::uint64_t sent = c[kA].stats().datagrams_out;
  c.run_for(kSecond);
  EXPECT_EQ(c[kA].stats().datagrams_out, sent);
  c[kA].set_keepalive(kB, 100 * kMillisecond);  // refused: it was expelled
  c.run_for(kSecond);
  EXPECT_EQ(c[kA].stats().datagrams_out, sent);
}

TEST(Fencing, NothingGoesToAnExpelledSiteUntilTheReceiverIsRelocated) {
  Cluster c({kA, kB, kC});
  for (SiteId s : {kA, kB, kC}) c[kA].admit_site(s);
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  ASSERT_TRUE(c[kC].open_stream(200).ok());
  c[kA].expel_site(kB);
  ASSERT_TRUE(c.append(kA, kAB, kB, text("one")).ok());
  c.run_for(kSecond);
  EXPECT_TRUE(payloads(c, kB, kAB).empty());
  EXPECT_EQ(c[kA].path(kB), nullptr) << "no path is made again for an expelled site";
  c[kA].relocate_receiver(200, kC);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(payloads(c, kC, kAB), std::vector<std::string>{"one"});
}

// The receiver's site failed after consuming 1..5 (acknowledged) and with 6..8 unconsumed; the
// stream is recovered at C with no channel state. The sender's floor tells C where to start:
// 6..8 are delivered at once, in order, without waiting for 1..5.
TEST(Resync, ARecoveredReceiverStartsWhereTheSenderKnowsItConsumed) {
  Cluster c({kA, kB, kC});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, text(std::to_string(i))).ok());
  ASSERT_TRUE(c.settle());
  ASSERT_EQ(c[kA].send_channel(kAB)->consumed_up_to(), 5u);
  bool b_down = true;
  c.lose = [&](const OutDatagram& d) { return b_down && d.to == kB; };
  for (int i = 6; i <= 8; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, text(std::to_string(i))).ok());
  c.run_for(200 * kMillisecond);
  c[kA].expel_site(kB);
  ASSERT_TRUE(c[kC].open_stream(200).ok());
  c[kA].relocate_receiver(200, kC);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(payloads(c, kC, kAB), (std::vector<std::string>{"6", "7", "8"}));
  EXPECT_EQ(c.delivered_seqs(kC, kAB), (std::vector<Seq>{6, 7, 8}));
  EXPECT_EQ(c[kA].send_channel(kAB)->consumed_up_to(), 8u);
}

// The sender's site failed after 1..3 were consumed; the sender stream is recovered at C from
// its initial state and numbers its channel afresh under a higher origin. The receiver starts
// the channel over instead of taking the new messages for duplicates, and drops what the old
// numbering still sends.
TEST(Renumbering, ARecoveredSendersNewNumberingIsNotTakenForDuplicates) {
  Cluster c({kA, kB, kC});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, text("old" + std::to_string(i))).ok());
  ASSERT_TRUE(c.settle());
  c[kB].expel_site(kA);
  c[kC].set_sender_origin(100, 7);
  ASSERT_TRUE(c.append(kC, kAB, kB, text("new1")).ok());
  ASSERT_TRUE(c.append(kC, kAB, kB, text("new2")).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(payloads(c, kB, kAB), (std::vector<std::string>{"old1", "old2", "old3", "new1", "new2"}));
  ASSERT_NE(c[kB].recv_channel(kAB), nullptr);
  EXPECT_EQ(c[kB].recv_channel(kAB)->origin(), 7u);
  EXPECT_EQ(c[kC].send_channel(kAB)->consumed_up_to(), 2u) << "released under the new numbering";
  EXPECT_EQ(c[kC].send_channel(kAB)->origin, 7u);

  // A late copy of the old numbering (from a site the sender lived at before) is dropped.
  wire::Bytes stale;
  wire::encode_header({kC, kB, 1000}, &stale);
  wire::encode_data(100, 200, 4, text("old4"), &stale, {0, 0, 3});
  wire::seal(&stale);
  const std::uint64_t before = c[kB].stats().stale_numbering;
  (void)c[kB].on_datagram(stale, c.now);
  c.drain();
  EXPECT_EQ(c[kB].stats().stale_numbering, before + 1);
  EXPECT_EQ(payloads(c, kB, kAB).size(), 5u);
}

TEST(Renumbering, AConsumeOfTheOldNumberingIsRefusedAfterTheChannelStartedOver) {
  Cluster c({kA, kB, kC});
  c.auto_consume = false;
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  ASSERT_TRUE(c.append(kA, kAB, kB, text("old1")).ok());
  c.run_for(100 * kMillisecond);
  ASSERT_EQ(c.delivered_seqs(kB, kAB), std::vector<Seq>{1});
  const Delivery old = c.delivered[kB][0];
  c[kC].set_sender_origin(100, 3);
  ASSERT_TRUE(c.append(kC, kAB, kB, text("new1")).ok());
  c.run_for(100 * kMillisecond);
  ASSERT_EQ(c.delivered[kB].size(), 2u);
  const Delivery fresh = c.delivered[kB][1];
  EXPECT_EQ(fresh.origin, 3u);
  Status st = c[kB].consume(old.key, old.seq, c.now, old.origin);
  EXPECT_EQ(st.code(), Status::Code::kUnavailable) << st.message();
  EXPECT_TRUE(c[kB].consume(fresh.key, fresh.seq, c.now, fresh.origin).ok());
  c.run_for(100 * kMillisecond);
  EXPECT_EQ(c[kC].send_channel(kAB)->consumed_up_to(), 1u);
}

}  // namespace
}  // namespace mstream::proto

namespace mstream::proto {
namespace {

using namespace testing;

// B is the leader's site, restarted from its durable state: it consumed 1..3 before its
// crash (and saved that), never saw 4 and 5. A's path to it must start over, or A would take
// the new process's packet numbers for old ones and B A's for packets of a path it never had.
TEST(Restart, APeerUnderANewBootGetsWhatItHadNotConsumedOnceAndOldBootsAreDropped) {
  Cluster c({kA, kB});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, text(std::to_string(i))).ok());
  ASSERT_TRUE(c.settle());
  c.lose = [](const OutDatagram& d) { return d.to == kB; };
  ASSERT_TRUE(c.append(kA, kAB, kB, text("4")).ok());
  ASSERT_TRUE(c.append(kA, kAB, kB, text("5")).ok());
  c.run_for(20 * kMillisecond);
  c.lose = nullptr;

  Transport& b = c.restart(kB, 1);
  ASSERT_TRUE(b.open_stream(200).ok());
  ASSERT_TRUE(b.import_recv_state(kAB, RecvState{3, kA, 0, 0}).ok());
  // Until A hears the new process (its keepalive, or the consumption ack the restored channel
  // repeats), what A repeats is for the old one; then A's path starts over.
  b.set_keepalive(kA, 10 * kMillisecond);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(payloads(c, kB, kAB), (std::vector<std::string>{"4", "5"}));
  EXPECT_EQ(c[kA].stats().paths_restarted, 1u);
  EXPECT_EQ(c[kA].send_channel(kAB)->consumed_up_to(), 5u);

  // A late datagram of the old process is dropped, and so is one for it.
  const std::uint64_t a_stale = c[kA].stats().stale_boot_in;
  wire::Bytes late;
  wire::encode_header({kB, kA, 77, 0, 0}, &late);
  wire::encode_consumed(200, 100, 5, &late);
  wire::seal(&late);
  (void)c[kA].on_datagram(late, c.now);
  EXPECT_EQ(c[kA].stats().stale_boot_in, a_stale + 1);
  const std::uint64_t b_stale = b.stats().stale_boot_in;
  wire::Bytes old_dst;
  wire::encode_header({kA, kB, 1, 0, 0}, &old_dst);
  wire::encode_data(100, 200, 6, text("6"), &old_dst, {0, 0, 5});
  wire::seal(&old_dst);
  (void)b.on_datagram(old_dst, c.now);
  c.drain();
  EXPECT_EQ(b.stats().stale_boot_in, b_stale + 1);
  EXPECT_EQ(payloads(c, kB, kAB).size(), 2u);
}

}  // namespace
}  // namespace mstream::proto
