// Endpoint behaviour with both endpoints in one process, driven alternately from one thread.

#include <gtest/gtest.h>

#include <memory>
#include <tuple>

#include "mstream/endpoint.hpp"
#include "runtime_test_support.hpp"

namespace mstream {
namespace {

using namespace std::chrono_literals;
using test::OrderChecker;
using test::Sender;

std::unique_ptr<Endpoint> open_site(EndpointOptions o) {
  auto ep = Endpoint::open(o);
  EXPECT_TRUE(ep.ok()) << ep.status().to_string();
  return ep.ok() ? std::move(*ep) : nullptr;
}

std::unique_ptr<Endpoint> open_site(std::uint32_t site) {
  EndpointOptions o;
  o.site_id = site;
  return open_site(o);
}

void connect(Endpoint& a, Endpoint& b) {
  ASSERT_TRUE(a.add_peer(b.site_id(), b.local_address()).ok());
  ASSERT_TRUE(b.add_peer(a.site_id(), a.local_address()).ok());
}

// Two streams, 1 at site a and 2 at site b, exchange `n` messages of `size` bytes each way.
struct Exchange {
  Endpoint& a;
  Endpoint& b;
  OrderChecker at_a, at_b;  // what stream 1 (at a) and stream 2 (at b) consumed
  Sender a_to_b, b_to_a;
  std::uint64_t released_at_a = 0, released_at_b = 0;

  Exchange(Endpoint& ea, Endpoint& eb, std::uint64_t n, std::size_t size) : a(ea), b(eb) {
    at_a.size = at_b.size = size;
    a_to_b = Sender{&a, 1, 2, b.site_id(), n, size};
    b_to_a = Sender{&b, 2, 1, a.site_id(), n, size};
    EXPECT_TRUE(a.open_stream(1, at_a.handler()).ok());
    EXPECT_TRUE(b.open_stream(2, at_b.handler()).ok());
    a.on_released([this](std::uint64_t from, std::uint64_t to, std::uint64_t up_to) {
      if (from == 1 && to == 2) released_at_a = up_to;
    });
    b.on_released([this](std::uint64_t from, std::uint64_t to, std::uint64_t up_to) {
      if (from == 2 && to == 1) released_at_b = up_to;
    });
  }

  bool run(std::chrono::nanoseconds timeout = 20s) {
    const std::uint64_t n = a_to_b.total;
    return test::pump_pair(
        a, b, {&a_to_b, &b_to_a},
        [&] {
          return at_a.consumed >= n && at_b.consumed >= n && released_at_a == n &&
                 released_at_b == n && a.idle() && b.idle();
        },
        timeout);
  }

  void expect_exactly_once_in_order() const {
    const std::uint64_t n = a_to_b.total;
    EXPECT_EQ(at_b.consumed, n);
    EXPECT_EQ(at_a.consumed, n);
    EXPECT_EQ(at_b.out_of_order, 0u);
    EXPECT_EQ(at_a.out_of_order, 0u);
    EXPECT_EQ(a_to_b.failures, 0u);
    EXPECT_EQ(b_to_a.failures, 0u);
    EXPECT_EQ(a.stats().messages_consumed, n);
    EXPECT_EQ(b.stats().messages_released, n);
  }
};

TEST(Endpoint, OpenRejectsBadOptions) {
  EndpointOptions o;
  o.listen = "127.0.0.1";
  EXPECT_EQ(Endpoint::open(o).status().code(), Status::Code::kInvalidArgument);
  o.listen = "127.0.0.1:70000";
  EXPECT_EQ(Endpoint::open(o).status().code(), Status::Code::kInvalidArgument);
  o.listen = "127.0.0.1:0";
  o.mtu = 100;
  EXPECT_EQ(Endpoint::open(o).status().code(), Status::Code::kInvalidArgument);
  o.mtu = 0;
  o.receive_drop_probability = 1.0;
  EXPECT_EQ(Endpoint::open(o).status().code(), Status::Code::kInvalidArgument);
}

TEST(Endpoint, ReportsTheAddressItBound) {
  auto a = open_site(1);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->site_id(), 1u);
  EXPECT_EQ(a->local_address().rfind("127.0.0.1:", 0), 0u);
  EXPECT_NE(a->local_address(), "127.0.0.1:0");
}

TEST(Endpoint, OpenStreamRejectsZeroEmptyHandlerAndDuplicates) {
  auto a = open_site(1);
  ASSERT_TRUE(a);
  auto noop = [](const Message&) {};
  EXPECT_EQ(a->open_stream(0, noop).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(a->open_stream(5, nullptr).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(a->open_stream(5, noop).ok());
  EXPECT_EQ(a->open_stream(5, noop).code(), Status::Code::kAlreadyExists);
}

TEST(Endpoint, AppendErrorsAcceptNothing) {
  EndpointOptions o;
  o.max_message_bytes = 1000;
  auto a = open_site(o);
  ASSERT_TRUE(a);
  std::vector<std::uint8_t> small(10), big(1001);
  EXPECT_EQ(a->append(1, 2, 9, small).status().code(), Status::Code::kNotFound);
  ASSERT_TRUE(a->add_peer(9, "127.0.0.1:9").ok());
  EXPECT_EQ(a->append(1, 2, 9, big).status().code(), Status::Code::kTooLarge);
  EXPECT_EQ(a->append(0, 2, 9, small).status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(a->idle());
  EXPECT_EQ(a->add_peer(3, "no port").code(), Status::Code::kInvalidArgument);
}

TEST(Endpoint, TwoEndpointsInOneProcessExchangeInOrder) {
  auto a = open_site(1);
  auto b = open_site(2);
  ASSERT_TRUE(a && b);
  connect(*a, *b);
  Exchange x(*a, *b, 5000, 100);
  ASSERT_TRUE(x.run()) << "consumed " << x.at_a.consumed << "/" << x.at_b.consumed;
  x.expect_exactly_once_in_order();
  EXPECT_EQ(a->stats().malformed_in, 0u);
  EXPECT_GT(a->stats().datagrams_out, 0u);
  EXPECT_GT(b->stats().datagrams_in, 0u);
}

TEST(Endpoint, BusyPollingEndpointsExchangeInOrder) {
  EndpointOptions o;
  o.busy_poll = true;
  o.site_id = 1;
  auto a = open_site(o);
  o.site_id = 2;
  auto b = open_site(o);
  ASSERT_TRUE(a && b);
  connect(*a, *b);
  Exchange x(*a, *b, 2000, 32);
  ASSERT_TRUE(x.run());
  x.expect_exactly_once_in_order();
}

TEST(Endpoint, AnswersAPeerItWasNeverToldAbout) {
  auto a = open_site(1);
  auto b = open_site(2);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->add_peer(2, b->local_address()).ok());  // b learns a's address from traffic
  OrderChecker at_b;
  ASSERT_TRUE(b->open_stream(2, at_b.handler()).ok());
  Sender s{a.get(), 1, 2, 2, 300, 64};
  ASSERT_TRUE(test::pump_pair(*a, *b, {&s}, [&] { return at_b.consumed == 300 && a->idle(); }));
  EXPECT_EQ(at_b.out_of_order, 0u);
  // And b can now append to a's streams too.
  OrderChecker at_a;
  ASSERT_TRUE(a->open_stream(1, at_a.handler()).ok());
  Sender back{b.get(), 2, 1, 1, 10, 64};
  ASSERT_TRUE(test::pump_pair(*a, *b, {&back}, [&] { return at_a.consumed == 10 && b->idle(); }));
}

TEST(Endpoint, StreamAtTheSameSiteIsReachedWithoutThePeerTable) {
  auto a = open_site(1);
  ASSERT_TRUE(a);
  OrderChecker local;
  ASSERT_TRUE(a->open_stream(7, local.handler()).ok());
  Sender s{a.get(), 1, 7, 1, 100, 64};
  ASSERT_TRUE(a->run_until(
      [&] {
        s.pump();
        return local.consumed == 100 && a->idle();
      },
      10s));
  EXPECT_EQ(local.out_of_order, 0u);
  EXPECT_EQ(a->stats().datagrams_out, 0u);
}

TEST(Endpoint, LargeMessagesAreFragmentedAndReassembled) {
  for (std::size_t mtu : {std::size_t{0}, std::size_t{1400}}) {
    SCOPED_TRACE(mtu);
    EndpointOptions o;
    o.mtu = mtu;
    o.site_id = 1;
    auto a = open_site(o);
    o.site_id = 2;
    auto b = open_site(o);
    ASSERT_TRUE(a && b);
    connect(*a, *b);
    Exchange x(*a, *b, 20, 200 * 1024);
    ASSERT_TRUE(x.run(30s)) << "consumed " << x.at_a.consumed << "/" << x.at_b.consumed;
    x.expect_exactly_once_in_order();
    // 20 messages of 200 KB do not fit 20 datagrams of either size.
    EXPECT_GT(a->stats().datagrams_out, 40u);
  }
}

TEST(Endpoint, FullSenderBufferRefusesAppendUntilConsumed) {
  EndpointOptions o;
  o.max_unconsumed_messages = 8;
  o.site_id = 1;
  auto a = open_site(o);
  o.site_id = 2;
  auto b = open_site(o);
  ASSERT_TRUE(a && b);
  connect(*a, *b);
  OrderChecker at_b;
  ASSERT_TRUE(b->open_stream(2, at_b.handler()).ok());
  std::uint64_t released = 0;
  a->on_released([&](std::uint64_t, std::uint64_t, std::uint64_t up_to) { released = up_to; });

  for (std::uint64_t i = 1; i <= 8; ++i) {
    auto r = a->append(1, 2, 2, test::make_payload(i, 64));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(*r, i);
  }
  // Nothing polled yet, so nothing can have been consumed: the ninth must wait.
  auto ninth = a->append(1, 2, 2, test::make_payload(9, 64));
  ASSERT_FALSE(ninth.ok());
  EXPECT_EQ(ninth.status().code(), Status::Code::kWouldBlock);
  EXPECT_FALSE(a->idle());

  ASSERT_TRUE(test::pump_pair(
      *a, *b, {}, [&] { return released == 8; }, 10s));
  EXPECT_EQ(at_b.consumed, 8u);
  auto retry = a->append(1, 2, 2, test::make_payload(9, 64));
  ASSERT_TRUE(retry.ok()) << retry.status().to_string();
  EXPECT_EQ(*retry, 9u);  // the refused append consumed no sequence number
  ASSERT_TRUE(test::pump_pair(*a, *b, {}, [&] { return at_b.consumed == 9 && a->idle(); }));
  EXPECT_EQ(at_b.out_of_order, 0u);
}

TEST(Endpoint, PollFromInsideAHandlerIsRefused) {
  auto a = open_site(1);
  auto b = open_site(2);
  ASSERT_TRUE(a && b);
  connect(*a, *b);
  Status nested;
  int calls = 0;
  ASSERT_TRUE(b->open_stream(2, [&](const Message&) {
                 ++calls;
                 nested = b->poll(0ns);
               }).ok());
  Sender s{a.get(), 1, 2, 2, 1, 8};
  ASSERT_TRUE(test::pump_pair(*a, *b, {&s}, [&] { return calls == 1 && a->idle(); }));
  EXPECT_EQ(nested.code(), Status::Code::kInvalidArgument);
}

// Seed 004's experiments: random receive-side loss, repaired by either retransmission class.
class LossyEndpoint : public ::testing::TestWithParam<std::tuple<Retransmission, double>> {};

TEST_P(LossyEndpoint, ReceiveLossStillDeliversEverythingInOrderExactlyOnce) {
  const auto [retransmission, loss] = GetParam();
  EndpointOptions o;
  o.retransmission = retransmission;
  o.receive_drop_probability = loss;
  o.site_id = 1;
  o.drop_seed = 11;
  auto a = open_site(o);
  o.site_id = 2;
  o.drop_seed = 22;
  auto b = open_site(o);
  ASSERT_TRUE(a && b);
  connect(*a, *b);
  Exchange x(*a, *b, 3000, 200);
  ASSERT_TRUE(x.run(30s)) << "consumed " << x.at_a.consumed << "/" << x.at_b.consumed
                          << " released " << x.released_at_a << "/" << x.released_at_b;
  x.expect_exactly_once_in_order();
  EXPECT_GT(a->stats().dropped_by_loss_model + b->stats().dropped_by_loss_model, 0u);
  EXPECT_GT(a->stats().retransmissions + b->stats().retransmissions, 0u);
}

INSTANTIATE_TEST_SUITE_P(BothClasses, LossyEndpoint,
                         ::testing::Combine(::testing::Values(Retransmission::kSelectiveRepeat,
                                                              Retransmission::kGoBackN),
                                            ::testing::Values(0.10)),
                         [](const auto& info) {
                           return std::get<0>(info.param) == Retransmission::kGoBackN
                                      ? "GoBackN"
                                      : "SelectiveRepeat";
                         });

}  // namespace
}  // namespace mstream
