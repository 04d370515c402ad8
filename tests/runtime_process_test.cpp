// Two processes on loopback, as a user runs them: the parent is site 1, a forked child is
// site 2, and each appends to the other's stream. The child reports over a pipe; every wait
// is bounded, and the ChildProcess kills and reaps the child on every path out of a test.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <string>

#include "mstream/endpoint.hpp"
#include "runtime/child_process.hpp"
#include "runtime_test_support.hpp"

namespace mstream {
namespace {

using namespace std::chrono_literals;
using runtime::ChildProcess;
using runtime::LineReader;
using test::OrderChecker;
using test::Sender;

struct Scenario {
  std::uint64_t messages = 3000;
  std::size_t size = 64;
  bool busy_poll = false;
  double loss = 0.0;
};

EndpointOptions options_for(const Scenario& s, std::uint32_t site) {
  EndpointOptions o;
  o.site_id = site;
  o.busy_poll = s.busy_poll;
  o.receive_drop_probability = s.loss;
  o.drop_seed = site * 1000 + 7;
  return o;
}

// The child's whole life: learn the parent's address, report its own, exchange, report the
// result, and stay up (acknowledging) until the parent closes our input. Returns the exit
// code; no gtest macros here, they would only fail inside the child.
int run_child(int input_fd, int output_fd, const Scenario& s) {
  LineReader input(input_fd);
  auto parent_address = input.read_line(10s);
  if (!parent_address.ok()) return 10;
  auto ep = Endpoint::open(options_for(s, 2));
  if (!ep.ok()) return 11;
  Endpoint& e = **ep;
  if (!e.add_peer(1, *parent_address).ok()) return 12;
  OrderChecker at_2;
  at_2.size = s.size;
  if (!e.open_stream(2, at_2.handler()).ok()) return 13;
  if (!runtime::write_all(output_fd, "ready " + e.local_address() + "\n").ok()) return 14;

  Sender to_1{&e, 2, 1, 1, s.messages, s.size};
  const bool finished = e.run_until(
      [&] {
        to_1.pump();
        return to_1.done() && at_2.consumed >= s.messages && e.idle();
      },
      20s);
  std::ostringstream report;
  report << "done finished=" << finished << " consumed=" << at_2.consumed
         << " out_of_order=" << at_2.out_of_order << " failures=" << to_1.failures << "\n";
  if (!runtime::write_all(output_fd, report.str()).ok()) return 15;
  // The parent may still need our acknowledgements; it closes our input when it is done.
  e.run_until([&] { return input.closed(); }, 20s);
  return finished && at_2.out_of_order == 0 ? 0 : 1;
}

class TwoProcesses : public ::testing::TestWithParam<Scenario> {};

TEST_P(TwoProcesses, ExchangeInOrderExactlyOnce) {
  const Scenario s = GetParam();
  auto ep = Endpoint::open(options_for(s, 1));
  ASSERT_TRUE(ep.ok()) << ep.status().to_string();
  Endpoint& e = **ep;
  auto child = ChildProcess::fork([s](int in, int out) { return run_child(in, out, s); });
  ASSERT_TRUE(child.ok()) << child.status().to_string();

  ASSERT_TRUE(child->write_line(e.local_address()).ok());
  auto ready = child->output().read_line(10s);
  ASSERT_TRUE(ready.ok()) << ready.status().to_string();
  ASSERT_EQ(ready->rfind("ready ", 0), 0u) << *ready;
  ASSERT_TRUE(e.add_peer(2, ready->substr(6)).ok());

  OrderChecker at_1;
  at_1.size = s.size;
  ASSERT_TRUE(e.open_stream(1, at_1.handler()).ok());
  Sender to_2{&e, 1, 2, 2, s.messages, s.size};
  std::string report;
  const bool finished = e.run_until(
      [&] {
        to_2.pump();
        if (report.empty()) child->output().try_read_line(&report);
        return to_2.done() && at_1.consumed >= s.messages && e.idle() && !report.empty();
      },
      30s);
  child->close_input();
  const int exit_code = child->wait(10s);

  EXPECT_TRUE(finished) << "parent consumed " << at_1.consumed << ", child said: " << report;
  EXPECT_EQ(exit_code, 0) << report;
  EXPECT_EQ(report.rfind("done finished=1 consumed=" + std::to_string(s.messages) +
                             " out_of_order=0 failures=0",
                         0),
            0u)
      << report;
  EXPECT_EQ(at_1.consumed, s.messages);
  EXPECT_EQ(at_1.out_of_order, 0u);
  EXPECT_EQ(to_2.failures, 0u);
  EXPECT_EQ(e.stats().messages_released, s.messages);
}

INSTANTIATE_TEST_SUITE_P(Loopback, TwoProcesses,
                         ::testing::Values(Scenario{3000, 64, false, 0.0},
                                           Scenario{2000, 64, true, 0.0},
                                           Scenario{2000, 256, false, 0.10},
                                           Scenario{40, 200 * 1024, false, 0.0}),
                         [](const auto& info) {
                           const Scenario& s = info.param;
                           if (s.size > 65536) return std::string("LargeMessages");
                           if (s.loss > 0) return std::string("TenPercentLoss");
                           return std::string(s.busy_poll ? "BusyPolling" : "Blocking");
                         });

TEST(ChildProcess, IsKilledAndReapedWhenItOutlivesTheWait) {
  auto child = ChildProcess::fork([](int, int) {
    for (;;) pause();
    return 0;
  });
  ASSERT_TRUE(child.ok());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(child->wait(100ms), 128 + SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
}  // namespace mstream
