// Transport membership: once sites are admitted, only they reach this site's state; an
// expelled site is forgotten, and its streams' unconsumed messages go wherever they move.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "proto/transport.hpp"
#include "proto_test_cluster.hpp"
#include "wire/datagram.hpp"

namespace mstream::proto {
namespace {

using namespace testing;  // Cluster, one_to, pattern, kA, kB, kC, kAB

wire::Bytes data_from(SiteId src, SiteId dst, PacketNumber pn, Seq seq) {
  wire::Bytes b;
  wire::encode_header({src, dst, pn}, &b);
  wire::encode_data(100, 200, seq, wire::Bytes{1, 2, 3}, &b);
  wire::seal(&b);
  return b;
}

TEST(Transport, WithNoSiteAdmittedEverySiteIsAccepted) {
  Cluster c({kB});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  EXPECT_TRUE(c[kB].on_datagram(data_from(77, kB, 1, 1), c.now).ok());
  EXPECT_NE(c[kB].path(77), nullptr);
  EXPECT_EQ(c[kB].stats().unknown_site_in, 0u);
}

TEST(Transport, DatagramsFromSitesNotAdmittedAreDropped) {
  Cluster c({kB});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  c[kB].admit_site(kA);
  EXPECT_FALSE(c[kB].on_datagram(data_from(kC, kB, 1, 1), c.now).ok());
  EXPECT_EQ(c[kB].stats().unknown_site_in, 1u);
  EXPECT_EQ(c[kB].path(kC), nullptr) << "no state for a site not admitted";
  EXPECT_EQ(c[kB].recv_channel_count(), 0u);
  c.drain();
  EXPECT_TRUE(c.delivered[kB].empty());
  EXPECT_TRUE(c[kB].on_datagram(data_from(kA, kB, 1, 1), c.now).ok());
  c.drain();
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(1));
}

TEST(Transport, ExpelledSiteIsForgottenAndItsDatagramsDropped) {
  Cluster c({kA, kB});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  c[kB].admit_site(kA);
  c[kB].admit_site(kC);
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(10, 1)).ok());
  ASSERT_TRUE(c.settle());
  ASSERT_NE(c[kB].path(kA), nullptr);
  c[kB].expel_site(kA);
  EXPECT_EQ(c[kB].path(kA), nullptr);
  EXPECT_FALSE(c[kB].on_datagram(data_from(kA, kB, 9, 2), c.now).ok());
  EXPECT_EQ(c[kB].stats().unknown_site_in, 1u);
  EXPECT_EQ(c[kB].path(kA), nullptr);
}

// "Once any site is admitted, datagrams from sites not admitted are dropped": expelling the
// last admitted site must not reopen the door to every site, the expelled one included.
TEST(Transport, ExpellingTheLastAdmittedSiteStillExcludesIt) {
  Cluster c({kB});
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  c[kB].admit_site(kA);
  ASSERT_TRUE(c[kB].on_datagram(data_from(kA, kB, 1, 1), c.now).ok());
  c[kB].expel_site(kA);
  EXPECT_FALSE(c[kB].on_datagram(data_from(kA, kB, 2, 2), c.now).ok());
  EXPECT_EQ(c[kB].stats().unknown_site_in, 1u);
  EXPECT_EQ(c[kB].path(kA), nullptr);
}

TEST(Transport, UnconsumedMessagesFollowTheReceiverAfterItsSiteIsExpelled) {
  Cluster c({kA, kB, kC});
  for (SiteId s : {kA, kB, kC}) {
    for (SiteId peer : {kA, kB, kC}) {
      if (peer != s) c[s].admit_site(peer);
    }
  }
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  c.auto_consume = false;
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(300, i)).ok());
  c.run_for(kSecond);
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(4));
  ASSERT_TRUE(c[kB].consume(kAB, 1, c.now).ok());
  ASSERT_TRUE(c.run_until([&] { return c.released_up_to(kA, kAB) == 1; }));

  // B fails: A expels it; the stream is relocated to its failure manager C, which restarts
  // from the last acknowledged consumption.
  c.lose = [](const OutDatagram& d) { return d.to == kB; };
  c[kA].expel_site(kB);
  EXPECT_EQ(c[kA].path(kB), nullptr);
  ASSERT_TRUE(c[kC].open_stream(200).ok());
  ASSERT_TRUE(c[kC].import_recv_state(kAB, RecvState{1, kA}).ok());
  c[kA].relocate_receiver(200, kC);
  c.auto_consume = true;
  ASSERT_TRUE(c.run_until([&] { return c.released_up_to(kA, kAB) == 4; }));
  EXPECT_EQ(c.delivered_seqs(kC, kAB), (std::vector<Seq>{2, 3, 4}));
  for (const Delivery& d : c.delivered[kC]) EXPECT_EQ(d.payload, pattern(300, d.seq));
}

}  // namespace
}  // namespace mstream::proto
