// RttEstimator: RFC 6298's smoothed RTT, variance and timeout, clamped to the configured
// bounds, doubled by back_off().
#include <gtest/gtest.h>

#include <algorithm>

#include "proto/path.hpp"

namespace mstream::proto {
namespace {

// The estimator may round to its clock; a microsecond is far below what matters.
constexpr Time kSlack = kMicrosecond;

PathConfig config() {
  PathConfig cfg;
  cfg.initial_rto = 200 * kMillisecond;
  cfg.min_rto = 5 * kMillisecond;
  cfg.max_rto = 2 * kSecond;
  return cfg;
}

TEST(RttEstimator, StartsWithTheInitialTimeoutAndNoSample) {
  RttEstimator rtt(config());
  EXPECT_FALSE(rtt.has_sample());
  EXPECT_EQ(rtt.rto(), 200 * kMillisecond);
}

TEST(RttEstimator, FirstSampleSetsSrttAndHalfVariance) {
  RttEstimator rtt(config());
  rtt.on_sample(100 * kMillisecond);
  EXPECT_TRUE(rtt.has_sample());
  EXPECT_NEAR(rtt.srtt(), 100 * kMillisecond, kSlack);
  EXPECT_NEAR(rtt.rttvar(), 50 * kMillisecond, kSlack);
  // RTO = SRTT + 4 * RTTVAR.
  EXPECT_NEAR(rtt.rto(), 300 * kMillisecond, kSlack);
  EXPECT_EQ(rtt.min_rtt(), 100 * kMillisecond);
}

TEST(RttEstimator, LaterSamplesAreSmoothedPerRfc6298) {
  RttEstimator rtt(config());
  rtt.on_sample(100 * kMillisecond);
  rtt.on_sample(200 * kMillisecond);
  // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5.
  EXPECT_NEAR(rtt.rttvar(), 62'500 * kMicrosecond, kSlack);
  EXPECT_NEAR(rtt.srtt(), 112'500 * kMicrosecond, kSlack);
  EXPECT_NEAR(rtt.rto(), 362'500 * kMicrosecond, 2 * kSlack);
  EXPECT_EQ(rtt.min_rtt(), 100 * kMillisecond);
}

TEST(RttEstimator, MinRttTracksTheSmallestSample) {
  RttEstimator rtt(config());
  for (Time ms : {30, 10, 20, 40}) rtt.on_sample(ms * kMillisecond);
  EXPECT_EQ(rtt.min_rtt(), 10 * kMillisecond);
}

TEST(RttEstimator, TimeoutIsClampedToTheMinimum) {
  RttEstimator rtt(config());
  rtt.on_sample(10 * kMicrosecond);
  EXPECT_EQ(rtt.rto(), 5 * kMillisecond);
}

TEST(RttEstimator, TimeoutIsClampedToTheMaximum) {
  RttEstimator rtt(config());
  rtt.on_sample(10 * kSecond);
  EXPECT_EQ(rtt.rto(), 2 * kSecond);
}

TEST(RttEstimator, BackOffDoublesUpToTheMaximum) {
  RttEstimator rtt(config());
  Time expected = 200 * kMillisecond;
  for (int i = 0; i < 8; ++i) {
    rtt.back_off();
    expected = std::min(expected * 2, 2 * kSecond);
    EXPECT_EQ(rtt.rto(), expected) << "after " << i + 1 << " back-offs";
  }
  EXPECT_EQ(rtt.rto(), 2 * kSecond);
}

TEST(RttEstimator, NewSampleAfterBackOffRecomputesTheTimeout) {
  RttEstimator rtt(config());
  rtt.on_sample(10 * kMillisecond);
  EXPECT_NEAR(rtt.rto(), 30 * kMillisecond, kSlack);
  rtt.back_off();
  rtt.back_off();
  EXPECT_NEAR(rtt.rto(), 120 * kMillisecond, 4 * kSlack);
  // RFC 6298 5.7: the backed-off value is dropped once a new sample arrives.
  rtt.on_sample(10 * kMillisecond);
  // RTTVAR = 3/4 * 5 = 3.75 ms; SRTT = 10 ms; RTO = 25 ms.
  EXPECT_NEAR(rtt.rto(), 25 * kMillisecond, 2 * kSlack);
}

}  // namespace
}  // namespace mstream::proto
