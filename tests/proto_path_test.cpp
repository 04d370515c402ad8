// Path: packet numbers, the receive window of each retransmission class, acknowledgements
// (the transport receipt), Karn's rule, the retransmission timeout and the congestion window.
// Two Paths face each other; datagrams pass between them as bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "proto/path.hpp"

namespace mstream::proto {
namespace {

constexpr SiteId kA = 1, kB = 2;

wire::Bytes body(std::uint64_t tag) {
  wire::Bytes b;
  wire::encode_consumed(tag, tag + 1, tag, &b);
  return b;
}

wire::DecodedDatagram decode(const wire::Bytes& bytes) {
  wire::DecodedDatagram d;
  Status s = wire::decode_datagram(bytes, &d);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return d;
}

PacketNumber send_new(Path& p, std::uint64_t tag, Time now) {
  EXPECT_TRUE(p.can_send());
  wire::Bytes out;
  p.build_new(body(tag), now, &out);
  return decode(out).header.packet_number;
}

// The ACK the receiving path would send now.
wire::AckFrame ack_of(Path& receiver) {
  EXPECT_TRUE(receiver.ack_pending());
  wire::Bytes out;
  receiver.build_ack_only(&out);
  wire::DecodedDatagram d = decode(out);
  EXPECT_TRUE(d.has_ack);
  EXPECT_EQ(d.header.packet_number, 0u) << "an ACK-only datagram asks for no ack";
  return d.ack;
}

// Runs the sender's timers until it has something to repeat; returns the datagram repeated.
wire::DecodedDatagram repeat_after_timeout(Path& p, Time* now) {
  for (int i = 0; i < 10; ++i) {
    Time t = p.next_timeout();
    EXPECT_NE(t, kNever);
    *now = std::max(*now, t);
    p.on_timeout(*now);
    wire::Bytes out;
    if (p.has_lost() && p.can_send() && p.build_retransmission(*now, &out)) return decode(out);
    if (p.has_probe() && p.build_probe(*now, &out)) return decode(out);
  }
  ADD_FAILURE() << "nothing repeated after 10 timeouts";
  return {};
}

TEST(Path, NumbersDatagramsFromOne) {
  Path p(kA, kB, PathConfig{});
  EXPECT_EQ(send_new(p, 1, 0), 1u);
  EXPECT_EQ(send_new(p, 2, 0), 2u);
  EXPECT_EQ(send_new(p, 3, 0), 3u);
  EXPECT_EQ(p.largest_sent(), 3u);
  EXPECT_EQ(p.outstanding(), 3u);
  EXPECT_EQ(p.in_flight(), 3u);
}

TEST(Path, NewDatagramCarriesTheBodyBetweenTheTwoSites) {
  Path p(kA, kB, PathConfig{});
  wire::Bytes out;
  p.build_new(body(7), 0, &out);
  wire::DecodedDatagram d = decode(out);
  EXPECT_EQ(d.header.src_site, kA);
  EXPECT_EQ(d.header.dst_site, kB);
  ASSERT_EQ(d.frames.size(), 1u);
  EXPECT_EQ(d.frames[0].type, wire::FrameType::kConsumed);
  EXPECT_EQ(d.frames[0].from_stream, 7u);
}

TEST(Path, BodyRoomKeepsDatagramsWithinTheMtu) {
  PathConfig cfg;
  cfg.mtu = 300;
  Path a(kA, kB, cfg), b(kB, kA, cfg);
  ASSERT_EQ(b.on_packet(1, 0, 0), Path::Accept::kNew);
  for (Path* p : {&a, &b}) {
    std::size_t room = p->body_room();
    ASSERT_GT(room, 0u);
    ASSERT_LT(room, cfg.mtu);
    std::size_t len = room - wire::data_size(1, 2, 1, 0);
    while (wire::data_size(1, 2, 1, len) > room) --len;
    wire::Bytes frames;
    wire::encode_data(1, 2, 1, wire::Bytes(len, 0), &frames);
    ASSERT_EQ(frames.size(), room) << "a DATA frame filling the room exactly";
    wire::Bytes out;
    p->build_new(frames, 0, &out);
    EXPECT_LE(out.size(), cfg.mtu);
  }
}

TEST(Path, PendingAckIsPiggybackedOnData) {
  Path a(kA, kB, PathConfig{}), b(kB, kA, PathConfig{});
  wire::Bytes out;
  a.build_new(body(1), 0, &out);
  ASSERT_EQ(b.on_packet(decode(out).header.packet_number, 0, 0), Path::Accept::kNew);
  EXPECT_TRUE(b.ack_pending());
  wire::Bytes reply;
  b.build_new(body(2), 0, &reply);
  wire::DecodedDatagram d = decode(reply);
  ASSERT_TRUE(d.has_ack);
  EXPECT_EQ(d.ack.cumulative, 1u);
  EXPECT_FALSE(b.ack_pending());
}

// A move is a chain of one-way control messages, each far from the one before on its path:
// their acks wait for a datagram to ride on, up to max_ack_delay. Two datagrams of a burst
// (a sender filling its window) are acknowledged at once, as are two full datagrams' worth of
// bytes however far apart.
TEST(Path, AnAckWaitsForARideUnlessTwoDatagramsComeInABurst) {
  const PathConfig cfg;
  ASSERT_GT(cfg.max_ack_delay, cfg.ack_burst_gap);
  Path b(kB, kA, cfg);
  Time now = 1000 * kMillisecond;
  ASSERT_EQ(b.on_packet(1, 100, now), Path::Accept::kNew);
  EXPECT_FALSE(b.ack_due(now));
  // The next one comes after the burst gap: still no ack of its own.
  now += cfg.ack_burst_gap + kMicrosecond;
  ASSERT_EQ(b.on_packet(2, 100, now), Path::Accept::kNew);
  EXPECT_FALSE(b.ack_due(now));
  // The deadline counts from the first one held back.
  EXPECT_EQ(b.next_timeout(), 1000 * kMillisecond + cfg.max_ack_delay);
  EXPECT_TRUE(b.ack_due(1000 * kMillisecond + cfg.max_ack_delay));
  // A burst: the second of two within the gap is acknowledged at once.
  now += cfg.ack_burst_gap / 2;
  ASSERT_EQ(b.on_packet(3, 100, now), Path::Accept::kNew);
  EXPECT_TRUE(b.ack_due(now));
  EXPECT_EQ(ack_of(b).cumulative, 3u);

  // Bytes: two full datagrams' worth, far apart, are acknowledged at once.
  now += 10 * cfg.ack_burst_gap;
  ASSERT_EQ(b.on_packet(4, cfg.mtu, now), Path::Accept::kNew);
  EXPECT_FALSE(b.ack_due(now));
  now += 10 * cfg.ack_burst_gap;
  ASSERT_EQ(b.on_packet(5, cfg.mtu, now), Path::Accept::kNew);
  EXPECT_TRUE(b.ack_due(now));
}

// Without a burst gap (kNever), the second of any two unacknowledged datagrams is answered at
// once, as before issue 19 (the simulator's regression seeds replay that timing).
TEST(Path, WithoutABurstGapEverySecondDatagramIsAcknowledgedAtOnce) {
  PathConfig cfg;
  cfg.ack_burst_gap = kNever;
  cfg.max_ack_delay = 250 * kMicrosecond;
  Path b(kB, kA, cfg);
  ASSERT_EQ(b.on_packet(1, 100, 0), Path::Accept::kNew);
  EXPECT_FALSE(b.ack_due(0));
  ASSERT_EQ(b.on_packet(2, 100, 200 * kMicrosecond), Path::Accept::kNew);
  EXPECT_TRUE(b.ack_due(200 * kMicrosecond));
}

// A path that showed loss (here a duplicate: our ack was lost) holds ACKs only
// lossy_ack_delay for loss_memory: a lost datagram with nothing sent behind it is found by the
// sender's probe timeout, which allows for the delay.
TEST(Path, APathThatShowedLossAcknowledgesPromptlyForAWhile) {
  const PathConfig cfg;
  ASSERT_LT(cfg.lossy_ack_delay, cfg.max_ack_delay);
  Path b(kB, kA, cfg);
  Time now = kSecond;
  ASSERT_EQ(b.on_packet(1, 100, now), Path::Accept::kNew);
  EXPECT_EQ(b.next_timeout(), now + cfg.max_ack_delay);
  (void)ack_of(b);
  now += kMillisecond;
  ASSERT_EQ(b.on_packet(1, 100, now), Path::Accept::kDuplicate);
  (void)ack_of(b);
  now += kMillisecond;
  ASSERT_EQ(b.on_packet(2, 100, now), Path::Accept::kNew);
  EXPECT_EQ(b.next_timeout(), now + cfg.lossy_ack_delay);
  (void)ack_of(b);
  now += cfg.loss_memory;
  ASSERT_EQ(b.on_packet(3, 100, now), Path::Accept::kNew);
  EXPECT_EQ(b.next_timeout(), now + cfg.max_ack_delay);
}

// The sender's side: after a probe, its probe timeout allows only for the short delay.
TEST(Path, AfterAProbeTheProbeTimeoutAllowsOnlyForTheShortDelay) {
  const PathConfig cfg;
  Path a(kA, kB, cfg), b(kB, kA, cfg);
  Time now = kSecond;
  wire::Bytes out;
  a.build_new(body(1), now, &out);
  ASSERT_EQ(b.on_packet(decode(out).header.packet_number, out.size(), now), Path::Accept::kNew);
  now += 50 * kMicrosecond;
  ASSERT_TRUE(a.on_ack(ack_of(b), now));  // an RTT sample of 50 us
  const PacketNumber second = send_new(a, 2, now);
  const Time long_pto = a.next_timeout() - now;
  EXPECT_EQ(long_pto, 200 * kMicrosecond + cfg.max_ack_delay);
  now += long_pto;
  a.on_timeout(now);
  ASSERT_TRUE(a.has_probe());
  ASSERT_TRUE(a.build_probe(now, &out));
  ASSERT_EQ(b.on_packet(second, out.size(), now), Path::Accept::kNew);
  ASSERT_TRUE(a.on_ack(ack_of(b), now));
  (void)send_new(a, 3, now);
  EXPECT_EQ(a.next_timeout() - now, 200 * kMicrosecond + cfg.lossy_ack_delay);
}

TEST(Path, DuplicatePacketIsDroppedButAcknowledgedAgain) {
  Path b(kB, kA, PathConfig{});
  ASSERT_EQ(b.on_packet(1, 0, 0), Path::Accept::kNew);
  (void)ack_of(b);
  EXPECT_FALSE(b.ack_pending());
  EXPECT_EQ(b.on_packet(1, 0, 0), Path::Accept::kDuplicate);
  EXPECT_TRUE(b.ack_pending());
}

TEST(Path, SelectiveRepeatKeepsOutOfOrderPacketsAndReportsRanges) {
  Path b(kB, kA, PathConfig{});
  EXPECT_EQ(b.on_packet(2, 0, 0), Path::Accept::kNew);
  EXPECT_EQ(b.on_packet(4, 0, 0), Path::Accept::kNew);
  EXPECT_EQ(b.on_packet(5, 0, 0), Path::Accept::kNew);
  EXPECT_EQ(b.cumulative_received(), 0u);
  wire::AckFrame ack = ack_of(b);
  EXPECT_EQ(ack.cumulative, 0u);
  ASSERT_EQ(ack.ranges.size(), 2u);
  EXPECT_EQ(ack.ranges[0].first, 2u);
  EXPECT_EQ(ack.ranges[0].last, 2u);
  EXPECT_EQ(ack.ranges[1].first, 4u);
  EXPECT_EQ(ack.ranges[1].last, 5u);
  EXPECT_EQ(b.on_packet(4, 0, 0), Path::Accept::kDuplicate);
  EXPECT_EQ(b.on_packet(1, 0, 0), Path::Accept::kNew);
  EXPECT_EQ(b.cumulative_received(), 2u);
  EXPECT_EQ(b.on_packet(3, 0, 0), Path::Accept::kNew);
  EXPECT_EQ(b.cumulative_received(), 5u);
  EXPECT_TRUE(ack_of(b).ranges.empty());
}

TEST(Path, GoBackNDiscardsOutOfOrderPackets) {
  PathConfig cfg;
  cfg.retransmission = RetransmissionClass::kGoBackN;
  Path b(kB, kA, cfg);
  EXPECT_EQ(b.on_packet(2, 0, 0), Path::Accept::kDiscard);
  EXPECT_EQ(b.on_packet(3, 0, 0), Path::Accept::kDiscard);
  EXPECT_EQ(b.cumulative_received(), 0u);
  EXPECT_EQ(b.on_packet(1, 0, 0), Path::Accept::kNew);
  EXPECT_EQ(b.on_packet(3, 0, 0), Path::Accept::kDiscard);
  EXPECT_EQ(b.on_packet(2, 0, 0), Path::Accept::kNew);
  EXPECT_EQ(b.cumulative_received(), 2u);
  EXPECT_EQ(b.on_packet(1, 0, 0), Path::Accept::kDuplicate);
}

TEST(Path, PacketBeyondTheWindowIsDiscarded) {
  PathConfig cfg;
  cfg.max_window = 64;
  Path b(kB, kA, cfg);
  EXPECT_EQ(b.on_packet(65, 0, 0), Path::Accept::kDiscard);
  EXPECT_EQ(b.on_packet(1000000, 0, 0), Path::Accept::kDiscard);
  EXPECT_EQ(b.on_packet(64, 0, 0), Path::Accept::kNew);
  EXPECT_EQ(b.cumulative_received(), 0u);
}

TEST(Path, AckStopsRetransmissionAndDisarmsTheTimer) {
  Path a(kA, kB, PathConfig{}), b(kB, kA, PathConfig{});
  PacketNumber pn = send_new(a, 1, 0);
  EXPECT_NE(a.next_timeout(), kNever) << "an outstanding datagram needs a timer";
  ASSERT_EQ(b.on_packet(pn, 0, 0), Path::Accept::kNew);
  EXPECT_TRUE(a.on_ack(ack_of(b), 10 * kMillisecond));
  EXPECT_EQ(a.outstanding(), 0u);
  EXPECT_EQ(a.in_flight(), 0u);
  EXPECT_FALSE(a.has_lost());
  EXPECT_EQ(a.next_timeout(), kNever);
}

TEST(Path, AckOfAPacketNeverSentIsIgnoredWhole) {
  Path a(kA, kB, PathConfig{});
  send_new(a, 1, 0);
  send_new(a, 2, 0);
  EXPECT_FALSE(a.on_ack(wire::AckFrame{5, {}}, kMillisecond));
  EXPECT_EQ(a.outstanding(), 2u);
  // A valid cumulative part does not save an ACK whose range names an unsent packet.
  EXPECT_FALSE(a.on_ack(wire::AckFrame{1, {{3, 3}}}, kMillisecond));
  EXPECT_EQ(a.outstanding(), 2u);
  EXPECT_FALSE(a.rtt().has_sample());
}

TEST(Path, AckYieldsAnRttSample) {
  Path a(kA, kB, PathConfig{}), b(kB, kA, PathConfig{});
  PacketNumber pn = send_new(a, 1, 100 * kMillisecond);
  ASSERT_EQ(b.on_packet(pn, 0, 0), Path::Accept::kNew);
  ASSERT_TRUE(a.on_ack(ack_of(b), 112 * kMillisecond));
  ASSERT_TRUE(a.rtt().has_sample());
  EXPECT_EQ(a.rtt().srtt(), 12 * kMillisecond);
}

TEST(Path, RttSamplesIgnoreRetransmittedPackets) {
  Path a(kA, kB, PathConfig{}), b(kB, kA, PathConfig{});
  PacketNumber pn = send_new(a, 1, 0);
  Time now = 0;
  wire::DecodedDatagram again = repeat_after_timeout(a, &now);
  EXPECT_EQ(again.header.packet_number, pn) << "a repeat keeps its packet number";
  ASSERT_EQ(b.on_packet(pn, 0, 0), Path::Accept::kNew);
  ASSERT_TRUE(a.on_ack(ack_of(b), now + kMillisecond));
  EXPECT_EQ(a.outstanding(), 0u);
  // Karn: the ack may answer either transmission, so it is no sample.
  EXPECT_FALSE(a.rtt().has_sample());
}

TEST(Path, RepeatCarriesTheSameFrames) {
  Path a(kA, kB, PathConfig{});
  wire::Bytes first;
  a.build_new(body(9), 0, &first);
  Time now = 0;
  wire::DecodedDatagram again = repeat_after_timeout(a, &now);
  wire::DecodedDatagram orig = decode(first);
  EXPECT_EQ(again.header.packet_number, orig.header.packet_number);
  ASSERT_EQ(again.frames.size(), orig.frames.size());
  EXPECT_EQ(again.frames[0].type, orig.frames[0].type);
  EXPECT_EQ(again.frames[0].from_stream, orig.frames[0].from_stream);
  EXPECT_EQ(again.frames[0].seq, orig.frames[0].seq);
  EXPECT_GE(a.retransmissions() + a.probes(), 1u);
}

TEST(Path, RtoBacksOffAndStaysWithinBounds) {
  PathConfig cfg;
  cfg.initial_rto = 100 * kMillisecond;
  cfg.min_rto = 5 * kMillisecond;
  cfg.max_rto = 1 * kSecond;
  Path a(kA, kB, cfg);
  send_new(a, 1, 0);
  Time now = 0, last_gap = 0, prev = 0;
  std::uint64_t timeouts = 0;
  for (int i = 0; i < 40; ++i) {
    Time t = a.next_timeout();
    ASSERT_NE(t, kNever);
    ASSERT_GE(t, now);
    now = t;
    a.on_timeout(now);
    wire::Bytes out;
    if (a.has_lost() && a.can_send()) (void)a.build_retransmission(now, &out);
    if (a.has_probe()) (void)a.build_probe(now, &out);
    EXPECT_GE(a.rtt().rto(), cfg.min_rto);
    EXPECT_LE(a.rtt().rto(), cfg.max_rto);
    if (a.timeouts() > timeouts) {
      timeouts = a.timeouts();
      // Successive timeouts wait longer and longer, up to max_rto.
      Time gap = now - prev;
      EXPECT_GE(gap, last_gap) << "timeout " << timeouts;
      EXPECT_LE(gap, cfg.max_rto + cfg.max_rto / 2) << "timeout " << timeouts;
      last_gap = gap;
      prev = now;
    }
  }
  EXPECT_GE(timeouts, 4u);
  EXPECT_EQ(a.rtt().rto(), cfg.max_rto);
}

// A path with an RTT sample of 1 ms, whose next datagram, sent at *now, goes unanswered.
void send_after_one_round_trip(Path& a, Path& b, Time* now) {
  ASSERT_EQ(b.on_packet(send_new(a, 1, *now), 0, *now), Path::Accept::kNew);
  *now += kMillisecond;
  ASSERT_TRUE(a.on_ack(ack_of(b), *now));
  ASSERT_TRUE(a.rtt().has_sample());
  send_new(a, 2, *now);
}

// Runs the sender's timers until `until`, repeating whatever they ask for, with no answer.
void run_silent_until(Path& a, Time until, Time* now) {
  for (Time t = a.next_timeout(); t != kNever && t <= until; t = a.next_timeout()) {
    *now = std::max(*now, t);
    a.on_timeout(*now);
    wire::Bytes out;
    while (a.has_lost() && a.can_send() && a.build_retransmission(*now, &out)) {
    }
    if (a.has_probe()) (void)a.build_probe(*now, &out);
  }
}

TEST(Path, ProbesToASilentPeerBackOff) {
  Path a(kA, kB, PathConfig{}), b(kB, kA, PathConfig{});
  Time now = 0;
  send_after_one_round_trip(a, b, &now);
  // The probe interval is ~2 ms here; were it never backed off, 10 s of silence would send
  // thousands. One probe per tail, then only the timeout, doubling up to max_rto (2 s).
  run_silent_until(a, now + 10 * kSecond, &now);
  EXPECT_EQ(a.probes(), 1u);
  EXPECT_GE(a.timeouts(), 5u);
  EXPECT_LE(a.retransmissions(), a.probes() + a.timeouts());
  EXPECT_EQ(a.rtt().rto(), PathConfig{}.max_rto);
}

TEST(Path, AnAnswerAfterSilenceRestoresTheShortProbe) {
  Path a(kA, kB, PathConfig{}), b(kB, kA, PathConfig{});
  Time now = 0;
  send_after_one_round_trip(a, b, &now);
  run_silent_until(a, now + kSecond, &now);
  ASSERT_GE(a.timeouts(), 1u);
  // The peer answers the last repeat; a lost tail sent afterwards is probed within a few
  // RTTs again, not after the backed-off timeout.
  ASSERT_EQ(b.on_packet(2, 0, now), Path::Accept::kNew);
  ASSERT_TRUE(a.on_ack(ack_of(b), now + kMillisecond));
  now += kMillisecond;
  const std::uint64_t probes = a.probes();
  send_new(a, 3, now);
  EXPECT_LT(a.next_timeout() - now, 10 * kMillisecond);
  run_silent_until(a, now + 10 * kMillisecond, &now);
  EXPECT_EQ(a.probes(), probes + 1);
}

TEST(Path, TimeoutCollapsesTheWindowToTheMinimum) {
  PathConfig cfg;
  cfg.initial_cwnd = 10;
  cfg.min_cwnd = 2;
  Path a(kA, kB, cfg);
  for (int i = 0; i < 5; ++i) send_new(a, static_cast<std::uint64_t>(i), 0);
  Time now = 0;
  while (a.timeouts() == 0) {
    now = a.next_timeout();
    ASSERT_NE(now, kNever);
    a.on_timeout(now);
    wire::Bytes out;
    if (a.has_probe()) (void)a.build_probe(now, &out);
  }
  EXPECT_EQ(a.cwnd(), 2.0);
  EXPECT_TRUE(a.has_lost());
}

TEST(Path, CongestionWindowLimitsDatagramsInFlight) {
  PathConfig cfg;
  cfg.initial_cwnd = 4;
  Path a(kA, kB, cfg);
  for (int i = 0; i < 4; ++i) send_new(a, static_cast<std::uint64_t>(i), 0);
  EXPECT_FALSE(a.can_send());
  EXPECT_EQ(a.in_flight(), 4u);
}

TEST(Path, SessionWindowLimitsDatagramsInFlight) {
  PathConfig cfg;
  cfg.initial_cwnd = 64;
  cfg.max_window = 8;
  Path a(kA, kB, cfg);
  for (int i = 0; i < 8; ++i) send_new(a, static_cast<std::uint64_t>(i), 0);
  EXPECT_FALSE(a.can_send());
}

TEST(Path, TimelyAcksGrowTheWindow) {
  PathConfig cfg;
  cfg.initial_cwnd = 4;
  Path a(kA, kB, cfg), b(kB, kA, cfg);
  Time now = 0;
  for (int round = 0; round < 3; ++round) {
    while (a.can_send()) ASSERT_EQ(b.on_packet(send_new(a, 1, now), 0, 0), Path::Accept::kNew);
    now += 10 * kMillisecond;
    ASSERT_TRUE(a.on_ack(ack_of(b), now));
  }
  EXPECT_GT(a.cwnd(), 4.0);
}

TEST(Path, SelectiveRepeatRepeatsOnlyTheLostDatagram) {
  PathConfig cfg;
  cfg.initial_cwnd = 10;
  Path a(kA, kB, cfg), b(kB, kA, cfg);
  for (int i = 1; i <= 6; ++i) {
    PacketNumber pn = send_new(a, static_cast<std::uint64_t>(i), 0);
    if (pn != 2) {
      ASSERT_EQ(b.on_packet(pn, 0, 0), Path::Accept::kNew);
    }
  }
  ASSERT_TRUE(a.on_ack(ack_of(b), 10 * kMillisecond));
  // Three later datagrams were acknowledged: 2 is lost.
  ASSERT_TRUE(a.has_lost());
  // Five timely acks could at most have grown the window to 15 (slow start); the loss took
  // one multiplicative decrease off that, not more.
  EXPECT_LT(a.cwnd(), 15.0) << "a loss shrinks the window";
  EXPECT_GE(a.cwnd(), 10.0 * cfg.loss_backoff - 1e-9) << "once per loss event";
  wire::Bytes out;
  ASSERT_TRUE(a.can_send());
  ASSERT_TRUE(a.build_retransmission(10 * kMillisecond, &out));
  EXPECT_EQ(decode(out).header.packet_number, 2u);
  EXPECT_FALSE(a.has_lost());
  EXPECT_EQ(a.in_flight(), 1u);
  EXPECT_EQ(a.retransmissions(), 1u);
}

TEST(Path, GoBackNRepeatsEverythingOutstandingAfterThreeDuplicateAcks) {
  PathConfig cfg;
  cfg.retransmission = RetransmissionClass::kGoBackN;
  cfg.initial_cwnd = 10;
  Path a(kA, kB, cfg), b(kB, kA, cfg);
  std::vector<PacketNumber> sent;
  for (int i = 1; i <= 6; ++i) sent.push_back(send_new(a, static_cast<std::uint64_t>(i), 0));
  ASSERT_EQ(b.on_packet(1, 0, 0), Path::Accept::kNew);
  ASSERT_TRUE(a.on_ack(ack_of(b), kMillisecond));
  for (PacketNumber pn = 3; pn <= 6; ++pn) {
    ASSERT_EQ(b.on_packet(pn, 0, 0), Path::Accept::kDiscard);
    ASSERT_TRUE(a.on_ack(wire::AckFrame{b.cumulative_received(), {}}, kMillisecond));
  }
  ASSERT_TRUE(a.has_lost());
  std::vector<PacketNumber> repeated;
  wire::Bytes out;
  while (a.has_lost() && a.can_send() && a.build_retransmission(2 * kMillisecond, &out))
    repeated.push_back(decode(out).header.packet_number);
  EXPECT_EQ(repeated, (std::vector<PacketNumber>{2, 3, 4, 5, 6}));
}

TEST(Path, StaleAckAfterRetransmissionIsHarmless) {
  Path a(kA, kB, PathConfig{}), b(kB, kA, PathConfig{});
  PacketNumber pn = send_new(a, 1, 0);
  ASSERT_EQ(b.on_packet(pn, 0, 0), Path::Accept::kNew);
  wire::AckFrame ack = ack_of(b);
  ASSERT_TRUE(a.on_ack(ack, kMillisecond));
  EXPECT_TRUE(a.on_ack(ack, 2 * kMillisecond)) << "a repeated ACK names only sent packets";
  EXPECT_EQ(a.outstanding(), 0u);
}

}  // namespace
}  // namespace mstream::proto
