// DATA in the name of a user stream is taken only from the site the leader says it is at, or
// the one it was at before its last move (Transport::kByLocation, proto/sender_pins.hpp;
// doc/security.md, "Members that lie").
#include <gtest/gtest.h>

#include <functional>
#include <optional>

#include "proto/sender_pins.hpp"
#include "proto/transport.hpp"
#include "proto_test_cluster.hpp"
#include "wire/datagram.hpp"

namespace mstream::proto {
namespace {

using namespace testing;  // Cluster, one_to, pattern, kA, kB, kC, kAB

SiteId by_location(StreamId) { return Transport::kByLocation; }

// B hosts stream 200; stream 100 sends to it.
Cluster pinned_cluster() {
  Cluster c({kA, kB, kC});
  c[kB].set_sender_pin(by_location);
  EXPECT_TRUE(c[kB].open_stream(200).ok());
  return c;
}

// C, a member, says it sends for stream 100, numbering as its host would.
wire::Bytes lie_from_c(std::uint64_t pn, Seq seq) {
  wire::Bytes plain;
  wire::encode_header({kC, kB, pn}, &plain);
  wire::encode_data(kAB.from, kAB.to, seq, pattern(6, 99), &plain, wire::SenderTag{7, 0, 0});
  wire::seal(&plain);
  return plain;
}

TEST(SenderPins, AUserStreamsFrameFromItsSiteIsTaken) {
  Cluster c = pinned_cluster();
  c[kB].locate_sender(kAB.from, kA, 1, c.now);
  for (Seq s = 1; s <= 20; ++s) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(40, s)).ok());
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(20));
  EXPECT_EQ(c[kB].stats().held_frames, 0u);
  EXPECT_EQ(c[kB].stats().wrong_site_frames, 0u);
}

// The ask B's site makes about stream 100 (Transport::poll_unplaced), if any.
std::optional<Transport::UnplacedSender> ask_of(Transport& t) {
  Transport::UnplacedSender u;
  if (!t.poll_unplaced(&u)) return std::nullopt;
  EXPECT_EQ(u.from, kAB.from);
  return u;
}

TEST(SenderPins, FromAnotherSiteItIsCountedOnlyOnceTheLeadersAnswerLeavesItUnplaced) {
  Cluster c = pinned_cluster();
  c[kB].locate_sender(kAB.from, kA, 1, c.now);
  ASSERT_TRUE(c[kB].on_datagram(lie_from_c(1, 1), c.now).ok());
  c.step();
  // C may be where the stream moved and B not heard of it yet: held, not counted, and B's
  // site asks the leader.
  EXPECT_TRUE(c.delivered[kB].empty());
  EXPECT_EQ(c[kB].stats().held_frames, 1u);
  std::optional<Transport::UnplacedSender> ask = ask_of(c[kB]);
  ASSERT_TRUE(ask);
  EXPECT_FALSE(ask_of(c[kB]));
  // A word at a newer epoch, still at A, condemns nothing (C may be newer still); nor does
  // the hold time running out: refused, and waiting for the answer.
  c[kB].locate_sender(kAB.from, kA, 2, c.now);
  c.run_for(c[kB].config().pin_hold + kMillisecond);
  EXPECT_EQ(c[kB].held_frames(), 0u);
  EXPECT_EQ(c[kB].unjudged_frames(), 1u);
  EXPECT_EQ(c[kB].stats().wrong_site_frames, 0u);
  // The answer: every word the leader owed B came before it, and none named C.
  c[kB].on_placed(kAB.from, ask->ask, {}, c.now);
  EXPECT_EQ(c[kB].stats().wrong_site_frames, 1u);
  EXPECT_EQ(c[kB].unjudged_frames(), 0u);
  // A lie that came after the ask waits for an answer to an ask made after it.
  ASSERT_TRUE(c[kB].on_datagram(lie_from_c(2, 1), c.now).ok());
  std::optional<Transport::UnplacedSender> second = ask_of(c[kB]);
  ASSERT_TRUE(second);
  c[kB].on_placed(kAB.from, ask->ask, {}, c.now);
  EXPECT_EQ(c[kB].stats().wrong_site_frames, 1u);
  c[kB].on_placed(kAB.from, second->ask, {}, c.now);
  EXPECT_EQ(c[kB].stats().wrong_site_frames, 2u);
  EXPECT_EQ(c[kB].held_frames(), 0u);
  EXPECT_TRUE(c.delivered[kB].empty());
  // A's own first message is the first one, as if C had said nothing.
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(9, 1)).ok());
  ASSERT_TRUE(c.settle());
  ASSERT_EQ(c.delivered_seqs(kB, kAB), one_to(1));
  EXPECT_EQ(c.delivered[kB].front().payload, pattern(9, 1));
  EXPECT_EQ(c.released_up_to(kA, kAB), 1u);
}

// Seed 7 of `mstream sim --scenario session` (22 honest frames counted before): B knew the
// sender at A (epoch 5); its site at epoch 6, C, sent copies; B's batched word of epoch 6 was
// superseded by newer ones (epochs 7 to 9, naming A and 4). Now the batch tells C too, late:
// an older word, which makes C a site the sender was at, and its copies stale.
TEST(SenderPins, ACopyFromASiteAnOlderWordNamesIsStaleNotALie) {
  Cluster c({kA, kB, kC, 4});
  c[kB].set_sender_pin(by_location);
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  c[kB].locate_sender(kAB.from, kA, 5, c.now);
  ASSERT_TRUE(c[kB].on_datagram(lie_from_c(1, 1), c.now).ok());
  std::optional<Transport::UnplacedSender> ask = ask_of(c[kB]);
  ASSERT_TRUE(ask);
  c[kB].locate_sender(kAB.from, 4, 7, c.now);
  c[kB].locate_sender(kAB.from, kA, 9, c.now);
  EXPECT_EQ(c[kB].held_frames(), 1u);
  c[kB].locate_sender(kAB.from, kC, 6, c.now);  // the batch, behind the watcher's words
  EXPECT_EQ(c[kB].held_frames(), 0u);
  EXPECT_EQ(c[kB].stats().held_refused, 1u);
  c[kB].on_placed(kAB.from, ask->ask, {}, c.now);
  // Another copy from C: stale at once, not held, not asked about.
  ASSERT_TRUE(c[kB].on_datagram(lie_from_c(2, 2), c.now).ok());
  EXPECT_FALSE(ask_of(c[kB]));
  EXPECT_EQ(c[kB].stats().held_refused, 2u);
  EXPECT_EQ(c[kB].stats().wrong_site_frames, 0u);
  EXPECT_TRUE(c.delivered[kB].empty());
}

// The answer says a move in flight takes the sender to C (its target installed it and sends
// before the leader heard so): held on, and taken when the move's word comes.
TEST(SenderPins, FromWhereAMoveInFlightGoesItWaitsForTheMovesWord) {
  Cluster c = pinned_cluster();
  c[kB].locate_sender(kAB.from, kA, 1, c.now);
  ASSERT_TRUE(c[kB].on_datagram(lie_from_c(1, 1), c.now).ok());
  std::optional<Transport::UnplacedSender> ask = ask_of(c[kB]);
  ASSERT_TRUE(ask);
  const SiteId going[] = {kC};
  c[kB].on_placed(kAB.from, ask->ask, going, c.now);
  EXPECT_EQ(c[kB].held_frames(), 1u);
  c[kB].locate_sender(kAB.from, kC, 2, c.now);
  c.step();
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(1));
  EXPECT_EQ(c[kB].stats().wrong_site_frames, 0u);
  // Had the answer named another site, C would have lied.
  Cluster d = pinned_cluster();
  d[kB].locate_sender(kAB.from, kA, 1, d.now);
  ASSERT_TRUE(d[kB].on_datagram(lie_from_c(1, 1), d.now).ok());
  ask = ask_of(d[kB]);
  ASSERT_TRUE(ask);
  const SiteId elsewhere[] = {4};
  d[kB].on_placed(kAB.from, ask->ask, elsewhere, d.now);
  EXPECT_EQ(d[kB].stats().wrong_site_frames, 1u);
}

// A restarted leader never sends the words its old process had not sent (seed 21901): what
// came before, and what comes for pin_words_lost after, is never counted.
TEST(SenderPins, AfterTheLeaderRestartedNothingIsCountedForAWhile) {
  Cluster c = pinned_cluster();
  c[kB].locate_sender(kAB.from, kA, 1, c.now);
  ASSERT_TRUE(c[kB].on_datagram(lie_from_c(1, 1), c.now).ok());
  c[kB].leader_restarted(c.now);
  ASSERT_TRUE(c[kB].on_datagram(lie_from_c(2, 2), c.now).ok());
  std::optional<Transport::UnplacedSender> ask = ask_of(c[kB]);
  ASSERT_TRUE(ask);
  c[kB].on_placed(kAB.from, ask->ask, {}, c.now);
  EXPECT_EQ(c[kB].stats().wrong_site_frames, 0u);
  EXPECT_EQ(c[kB].stats().held_refused, 2u);
  c.now += c[kB].config().pin_words_lost;
  ASSERT_TRUE(c[kB].on_datagram(lie_from_c(3, 3), c.now).ok());
  ask = ask_of(c[kB]);
  ASSERT_TRUE(ask);
  c[kB].on_placed(kAB.from, ask->ask, {}, c.now);
  EXPECT_EQ(c[kB].stats().wrong_site_frames, 1u);
}

TEST(SenderPins, FromASiteNotHeardOfYetItIsHeldUncountedAndTakenWhenTheWordComes) {
  Cluster c = pinned_cluster();
  c[kB].locate_sender(kAB.from, kA, 1, c.now);
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(30, 1)).ok());
  ASSERT_TRUE(c.settle());
  // The sender moves from A to C; B hears of it after C's first messages.
  Result<SendState> st = c[kA].take_send_state(kAB);
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(c[kC].import_send_state(kAB, std::move(st).value()).ok());
  for (Seq s = 2; s <= 4; ++s) ASSERT_TRUE(c.append(kC, kAB, kB, pattern(30, s)).ok());
  for (int i = 0; i < 5; ++i) c.step();  // no timer: the hold time is not up
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(1));
  EXPECT_GT(c[kB].held_frames(), 0u);
  c[kB].locate_sender(kAB.from, kC, 2, c.now);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(4));
  EXPECT_EQ(c.released_up_to(kC, kAB), 4u);
  EXPECT_EQ(c[kB].stats().wrong_site_frames, 0u);
  EXPECT_EQ(c[kB].stats().held_refused, 0u);
}

TEST(SenderPins, ANewStreamsFramesWaitForItsFirstLocationThenAreTaken) {
  Cluster c = pinned_cluster();
  for (Seq s = 1; s <= 3; ++s) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(30, s)).ok());
  for (int i = 0; i < 5; ++i) c.step();  // no timer: the hold time is not up
  EXPECT_TRUE(c.delivered[kB].empty());
  c[kB].locate_sender(kAB.from, kA, 1, c.now);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(3));
  EXPECT_EQ(c[kB].stats().wrong_site_frames, 0u);
}

// No word within the hold time: refused, not counted; the sender is told (REJECT
// kNoSuchStream from the receiver's site: its site core re-sends). Once the word has come the
// refused frames are known honest, and the re-sent messages are taken.
TEST(SenderPins, WithNoWordInTimeTheSenderIsRefusedAndItsResendIsTaken) {
  Cluster c = pinned_cluster();
  for (Seq s = 1; s <= 3; ++s) ASSERT_TRUE(c.append(kA, kAB, kB, pattern(30, s)).ok());
  c.run_for(c[kB].config().pin_hold + 10 * kMillisecond);
  EXPECT_TRUE(c.delivered[kB].empty());
  EXPECT_EQ(c[kB].unjudged_frames(), 3u);
  EXPECT_EQ(c[kB].stats().held_refused, 0u);
  EXPECT_EQ(c[kB].stats().wrong_site_frames, 0u);
  ASSERT_FALSE(c.rejected[kA].empty());
  EXPECT_EQ(c.rejected[kA].front().reason, wire::RejectReason::kNoSuchStream);
  EXPECT_EQ(c.rejected[kA].front().site, kB);
  c[kB].locate_sender(kAB.from, kA, 1, c.now);
  EXPECT_EQ(c[kB].unjudged_frames(), 0u);
  EXPECT_EQ(c[kB].stats().held_refused, 3u);
  c[kA].relocate_receiver(kAB.to, kB);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(3));
  EXPECT_EQ(c[kB].stats().wrong_site_frames, 0u);
}

// Two quick moves, A to B to C: C's first frames beat both words. The word naming B does not
// condemn them (C may be newer still); the one naming C takes them. A copy B sent before it let
// go is taken (the site before the last move); one A repeats after that is stale, not a lie.
TEST(SenderPins, TwoQuickMovesTheNewestSitesFramesWaitForItsWord) {
  Cluster c({kA, kB, kC, 4});
  c[kB].set_sender_pin(by_location);
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  c[kB].locate_sender(kAB.from, kA, 1, c.now);
  ASSERT_TRUE(c.append(kA, kAB, kB, pattern(30, 1)).ok());
  ASSERT_TRUE(c.settle());
  Result<SendState> st = c[kA].take_send_state(kAB);
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(c[4].import_send_state(kAB, std::move(st).value()).ok());
  st = c[4].take_send_state(kAB);
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(c[kC].import_send_state(kAB, std::move(st).value()).ok());
  ASSERT_TRUE(c.append(kC, kAB, kB, pattern(30, 2)).ok());
  for (int i = 0; i < 5; ++i) c.step();
  c[kB].locate_sender(kAB.from, 4, 2, c.now);
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(1));
  EXPECT_EQ(c[kB].held_frames(), 1u);
  c[kB].locate_sender(kAB.from, kC, 3, c.now);
  ASSERT_TRUE(c.settle());
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(2));
  EXPECT_EQ(c.released_up_to(kC, kAB), 2u);
  // A, two moves back, repeats an old copy: refused, not counted.
  wire::Bytes old;
  wire::encode_header({kA, kB, 1000}, &old);
  wire::encode_data(kAB.from, kAB.to, 1, pattern(30, 1), &old);
  wire::seal(&old);
  ASSERT_TRUE(c[kB].on_datagram(old, c.now).ok());
  EXPECT_EQ(c[kB].stats().wrong_site_frames, 0u);
  EXPECT_EQ(c[kB].stats().held_refused, 1u);
}

// Turned off (tests only), a frame is taken from any site, as before the pin.
TEST(SenderPins, TurnedOffAFrameIsTakenFromAnySite) {
  TransportConfig cfg;
  cfg.pin_user_senders = false;
  Cluster c({kA, kB, kC});
  c.restart(kB, 0, cfg);
  c[kB].set_sender_pin(by_location);
  ASSERT_TRUE(c[kB].open_stream(200).ok());
  c[kB].locate_sender(kAB.from, kA, 1, c.now);
  ASSERT_TRUE(c[kB].on_datagram(lie_from_c(1, 1), c.now).ok());
  c.step();
  EXPECT_EQ(c.delivered_seqs(kB, kAB), one_to(1));
}

// A word that comes late, after a newer one, naming the site the sender was at just before
// that newer word: its copies come from there. A destroyed sender's channels stay at its last
// site for good; a receiver's site that heard of the destroy before the last move refused
// them for ever, and their messages were never consumed (sim seeds 123003016, 123011346).
TEST(SenderPins, ADestroyedSendersLastSiteHeardOfAfterTheDestroyIsTaken) {
  SenderPins pins;
  ASSERT_TRUE(pins.locate(6, kA, 1));
  ASSERT_TRUE(pins.locate(6, kB, 2));
  ASSERT_TRUE(pins.locate(6, SenderPins::kDestroyed, 4));
  EXPECT_FALSE(pins.allows(6, kC));
  ASSERT_TRUE(pins.locate(6, kC, 3));  // it was at C from epoch 3 until its destroy
  EXPECT_TRUE(pins.allows(6, kC));
  EXPECT_TRUE(pins.left(6, kA));
}

// A site whose first word of a sender is its destroy: the words of its moves come after, the
// newest first.
TEST(SenderPins, WordsHeardAfterTheDestroyNewestFirstNameTheLastSites) {
  SenderPins pins;
  ASSERT_TRUE(pins.locate(6, SenderPins::kDestroyed, 4));
  ASSERT_TRUE(pins.locate(6, kC, 3));
  ASSERT_TRUE(pins.locate(6, kB, 2));
  EXPECT_TRUE(pins.allows(6, kC));
  EXPECT_TRUE(pins.allows(6, kB));
}

TEST(SenderPins, AMoveHeardOfLateNamesTheSiteBeforeTheLastMove) {
  SenderPins pins;
  ASSERT_TRUE(pins.locate(6, kA, 1));
  ASSERT_TRUE(pins.locate(6, kC, 3));  // the word of epoch 2 is still on its way
  EXPECT_TRUE(pins.allows(6, kA));
  ASSERT_TRUE(pins.locate(6, kB, 2));
  EXPECT_TRUE(pins.allows(6, kC));
  EXPECT_TRUE(pins.allows(6, kB));  // it let go of the stream at epoch 3: its copies are taken
  EXPECT_FALSE(pins.allows(6, kA));
  EXPECT_TRUE(pins.left(6, kA));        // older: a stale copy
  EXPECT_FALSE(pins.locate(6, kA, 1));  // a repeat of an old word changes nothing
  EXPECT_TRUE(pins.allows(6, kB));
}

}  // namespace
}  // namespace mstream::proto
