// The simulated network's fault model, checked in isolation from any Transport.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "sim/network.hpp"
#include "wire/datagram.hpp"

namespace mstream::sim {
namespace {

using proto::kMillisecond;
using proto::kSecond;

NetworkPlan plan(std::uint32_t sites, Time calm_start) {
  NetworkPlan p;
  p.sites = sites;
  p.calm_start = calm_start;
  p.links.resize(sites * sites);
  for (LinkFaults& f : p.links) f.base_delay = 1 * kMillisecond;
  return p;
}

// A real, sealed datagram, so that damage can be checked against the decoder.
wire::Bytes datagram(std::uint32_t src, std::uint32_t dst, std::uint64_t pn, std::size_t len) {
  wire::Bytes out;
  wire::encode_header({src, dst, pn}, &out);
  wire::Bytes payload(len);
  for (std::size_t i = 0; i < len; ++i) payload[i] = static_cast<std::uint8_t>(i * 7 + pn);
  wire::encode_data(11, 22, pn, payload, &out);
  wire::seal(&out);
  return out;
}

TEST(SimNetwork, SymmetricPartitionDropsEverythingAcrossIt) {
  NetworkPlan p = plan(3, 10 * kSecond);
  FaultWindow w;
  w.kind = FaultWindow::Kind::kPartition;
  w.side = {0};
  w.start = 1 * kSecond;
  w.end = 2 * kSecond;
  p.windows.push_back(w);
  SimNetwork net(p, Rng(1));
  std::vector<Arrival> out;
  const wire::Bytes d = datagram(0, 1, 1, 10);
  for (Time t = w.start; t < w.end; t += kMillisecond) {
    net.transmit(0, 1, d, t, &out);
    net.transmit(1, 0, d, t, &out);
    net.transmit(0, 2, d, t, &out);
    net.transmit(2, 0, d, t, &out);
  }
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(net.stats().lost_partition, 4000u);
  // Links that do not cross the cut, and times outside the window, are untouched.
  net.transmit(1, 2, d, w.start, &out);
  net.transmit(0, 1, d, w.end, &out);
  net.transmit(0, 1, d, w.start - 1, &out);
  EXPECT_EQ(out.size(), 3u);
}

TEST(SimNetwork, OneWayPartitionCutsOnlyTheOutgoingDirection) {
  NetworkPlan p = plan(2, 10 * kSecond);
  FaultWindow w;
  w.kind = FaultWindow::Kind::kOneWayPartition;
  w.side = {1};
  w.start = 0;
  w.end = 5 * kSecond;
  p.windows.push_back(w);
  SimNetwork net(p, Rng(2));
  EXPECT_TRUE(net.partitioned(1, 0, kSecond));
  EXPECT_FALSE(net.partitioned(0, 1, kSecond));
  std::vector<Arrival> out;
  net.transmit(1, 0, datagram(1, 0, 1, 4), kSecond, &out);
  EXPECT_TRUE(out.empty());
  net.transmit(0, 1, datagram(0, 1, 1, 4), kSecond, &out);
  EXPECT_EQ(out.size(), 1u);
}

TEST(SimNetwork, ClogHoldsDatagramsUntilItEnds) {
  NetworkPlan p = plan(2, 10 * kSecond);
  FaultWindow w;
  w.kind = FaultWindow::Kind::kClog;
  w.from = 0;
  w.to = 1;
  w.start = 100 * kMillisecond;
  w.end = 300 * kMillisecond;
  p.windows.push_back(w);
  SimNetwork net(p, Rng(3));
  std::vector<Arrival> out;
  for (Time t = w.start; t < w.end; t += 10 * kMillisecond)
    net.transmit(0, 1, datagram(0, 1, 1, 4), t, &out);
  ASSERT_EQ(out.size(), 20u);
  for (const Arrival& a : out) EXPECT_GE(a.at, w.end);
  EXPECT_EQ(net.stats().clogged, 20u);
  out.clear();
  net.transmit(1, 0, datagram(1, 0, 1, 4), w.start, &out);  // the other direction flows
  ASSERT_EQ(out.size(), 1u);
  EXPECT_LT(out[0].at, w.end);
}

TEST(SimNetwork, CorruptionAndTruncationAreAlwaysCaughtByTheDecoder) {
  NetworkPlan p = plan(2, 1000 * kSecond);
  p.link(0, 1).corrupt = 0.5;
  p.link(0, 1).truncate = 1.0;
  SimNetwork net(p, Rng(4));
  std::vector<Arrival> out;
  for (int i = 0; i < 20000; ++i)
    net.transmit(0, 1, datagram(0, 1, i + 1, static_cast<std::size_t>(i % 300)), i, &out);
  ASSERT_EQ(out.size(), 20000u);
  EXPECT_GT(net.stats().corrupted, 9000u);
  EXPECT_GT(net.stats().truncated, 9000u);
  wire::DecodedDatagram d;
  for (const Arrival& a : out) {
    ASSERT_NE(a.damage, Damage::kNone);
    EXPECT_FALSE(wire::decode_datagram(a.bytes, &d).ok());
  }
}

TEST(SimNetwork, BernoulliLossMatchesItsRate) {
  NetworkPlan p = plan(2, 1000 * kSecond);
  p.link(0, 1).loss = 0.2;
  SimNetwork net(p, Rng(5));
  std::vector<Arrival> out;
  const wire::Bytes d = datagram(0, 1, 1, 1);
  for (int i = 0; i < 100000; ++i) net.transmit(0, 1, d, i, &out);
  EXPECT_NEAR(static_cast<double>(net.stats().lost_random) / 100000.0, 0.2, 0.01);
}

TEST(SimNetwork, GilbertElliottLossComesInBursts) {
  NetworkPlan p = plan(2, 1000 * kSecond);
  p.link(0, 1).burst_enter = 0.01;
  p.link(0, 1).burst_leave = 0.1;
  p.link(0, 1).burst_loss = 1.0;
  SimNetwork net(p, Rng(6));
  std::vector<bool> lost;
  std::vector<Arrival> out;
  const wire::Bytes d = datagram(0, 1, 1, 1);
  for (int i = 0; i < 100000; ++i) {
    out.clear();
    net.transmit(0, 1, d, i, &out);
    lost.push_back(out.empty());
  }
  // Stationary loss is enter / (enter + leave) ~ 9%; losses cluster, so a loss follows a loss
  // far more often than that.
  std::uint64_t losses = 0, pairs = 0;
  for (std::size_t i = 1; i < lost.size(); ++i) {
    losses += lost[i];
    pairs += lost[i] && lost[i - 1];
  }
  EXPECT_NEAR(static_cast<double>(losses) / 1e5, 0.0909, 0.02);
  EXPECT_GT(static_cast<double>(pairs) / static_cast<double>(losses), 0.8);
}

TEST(SimNetwork, DuplicationSendsTwoCopies) {
  NetworkPlan p = plan(2, 1000 * kSecond);
  p.link(0, 1).duplicate = 1.0;
  SimNetwork net(p, Rng(7));
  std::vector<Arrival> out;
  const wire::Bytes d = datagram(0, 1, 1, 8);
  net.transmit(0, 1, d, 0, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].bytes, d);
  EXPECT_EQ(out[1].bytes, d);
}

TEST(SimNetwork, HeavyTailedDelayIsCapped) {
  NetworkPlan p = plan(2, 1000 * kSecond);
  p.link(0, 1).tail = 1.0;
  p.link(0, 1).tail_alpha = 1.1;
  p.link(0, 1).tail_cap = 500 * kMillisecond;
  SimNetwork net(p, Rng(8));
  std::vector<Arrival> out;
  const wire::Bytes d = datagram(0, 1, 1, 8);
  for (int i = 0; i < 10000; ++i) net.transmit(0, 1, d, 0, &out);
  Time longest = 0;
  std::size_t beyond_10x = 0;
  for (const Arrival& a : out) {
    longest = std::max(longest, a.at);
    beyond_10x += a.at > 10 * kMillisecond;
  }
  EXPECT_LE(longest, 1 * kMillisecond + 500 * kMillisecond);
  // Pareto(alpha 1.1): P(X > 10 x_min) = 10^-1.1 ~ 8%: a real tail.
  EXPECT_GT(beyond_10x, 400u);
}

TEST(SimNetwork, MisroutedDatagramsGoToAThirdSite) {
  NetworkPlan p = plan(4, 1000 * kSecond);
  p.link(1, 2).misroute = 1.0;
  SimNetwork net(p, Rng(9));
  std::vector<Arrival> out;
  for (int i = 0; i < 1000; ++i) net.transmit(1, 2, datagram(1, 2, 1, 8), i, &out);
  for (const Arrival& a : out) {
    EXPECT_EQ(a.damage, Damage::kMisrouted);
    EXPECT_TRUE(a.to == 0 || a.to == 3) << a.to;
  }
}

TEST(SimNetwork, CalmPhaseDeliversEveryDatagramOnceIntact) {
  NetworkPlan p = plan(3, 1 * kSecond);
  for (LinkFaults& f : p.links) {
    f.loss = 1.0;
    f.duplicate = 1.0;
    f.corrupt = 1.0;
    f.tail = 1.0;
    f.tail_cap = kSecond;
  }
  FaultWindow w;
  w.side = {0};
  w.start = 0;
  w.end = p.calm_start;
  p.windows.push_back(w);
  SimNetwork net(p, Rng(10));
  std::vector<Arrival> out;
  const wire::Bytes d = datagram(0, 1, 1, 8);
  for (int i = 0; i < 1000; ++i) net.transmit(0, 1, d, p.calm_start + i, &out);
  ASSERT_EQ(out.size(), 1000u);
  for (const Arrival& a : out) {
    EXPECT_EQ(a.damage, Damage::kNone);
    EXPECT_EQ(a.bytes, d);
    EXPECT_LE(a.at, p.calm_start + 1000 + kMillisecond);
  }
}

TEST(SimNetwork, JitterAloneNeverReordersALink) {
  NetworkPlan p = plan(2, 1000 * kSecond);
  p.link(0, 1).jitter = 5 * kMillisecond;
  SimNetwork net(p, Rng(11));
  std::vector<Arrival> out;
  for (int i = 0; i < 1000; ++i) net.transmit(0, 1, datagram(0, 1, i + 1, 8), i * 1000, &out);
  ASSERT_EQ(out.size(), 1000u);
  for (std::size_t i = 1; i < out.size(); ++i) EXPECT_GE(out[i].at, out[i - 1].at);
  // The reorder fault does reorder.
  p.link(0, 1).reorder = 0.5;
  p.link(0, 1).reorder_max = 20 * kMillisecond;
  SimNetwork faulty(p, Rng(12));
  out.clear();
  for (int i = 0; i < 1000; ++i) faulty.transmit(0, 1, datagram(0, 1, i + 1, 8), i * 1000, &out);
  std::size_t inversions = 0;
  for (std::size_t i = 1; i < out.size(); ++i) inversions += out[i].at < out[i - 1].at;
  EXPECT_GT(inversions, 50u);
}

TEST(SimNetwork, SameSeedSameFates) {
  NetworkPlan p = plan(3, 1000 * kSecond);
  for (LinkFaults& f : p.links) {
    f.loss = 0.1;
    f.duplicate = 0.1;
    f.reorder = 0.3;
    f.reorder_max = 20 * kMillisecond;
    f.corrupt = 0.05;
    f.jitter = kMillisecond;
  }
  auto fates = [&](std::uint64_t seed) {
    SimNetwork net(p, Rng(seed));
    std::vector<Arrival> out;
    for (int i = 0; i < 2000; ++i)
      net.transmit(i % 3, (i + 1) % 3, datagram(i % 3, (i + 1) % 3, i + 1, 16), i, &out);
    std::vector<std::pair<Time, wire::Bytes>> v;
    for (Arrival& a : out) v.emplace_back(a.at, std::move(a.bytes));
    return v;
  };
  EXPECT_EQ(fates(42), fates(42));
  EXPECT_NE(fates(42), fates(43));
}

}  // namespace
}  // namespace mstream::sim
