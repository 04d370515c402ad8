// `mstream demo`: two processes on loopback exchange messages through mstream::Endpoint and
// the parent prints what happened. The parent is site 1; it starts itself again
// (/proc/self/exe demo --child) as site 2. Each side appends N messages to the other's
// stream and checks that the other's arrive in order, exactly once, intact. The child reports
// its side on its stdout and stays up, acknowledging, until the parent closes its stdin.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "mstream/endpoint.hpp"
#include "runtime/child_process.hpp"

namespace mstream::cli {
namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t kParentSite = 1, kChildSite = 2;
constexpr std::uint64_t kParentStream = 1, kChildStream = 2;

struct DemoOptions {
  std::uint64_t messages = 10000;
  std::size_t size = 64;
  bool busy_poll = false;
  double loss = 0.0;
  double timeout_s = 30.0;
  // Child mode (hidden): started by the parent with its address.
  bool child = false;
  std::string peer;
};

// One side of the exchange: appends messages 1..n to the other side's stream, and checks the
// other side's messages as its own stream consumes them.
class DemoSide {
 public:
  DemoSide(Endpoint& e, const DemoOptions& o, std::uint64_t self, std::uint64_t peer,
           std::uint32_t peer_site)
      : e_(e),
        n_(o.messages),
        self_(self),
        peer_(peer),
        peer_site_(peer_site),
        payload_(std::max<std::size_t>(o.size, 8)) {
    for (std::size_t k = 8; k < payload_.size(); ++k) payload_[k] = pattern(k);
  }

  Status open() {
    return e_.open_stream(self_, [this](const Message& m) { check(m); });
  }
  // Appends as many messages as the sender buffer takes now.
  void pump() {
    while (appended_ < n_) {
      if (filled_ != appended_ + 1) fill(appended_ + 1);  // once, even if refused
      auto r = e_.append(self_, peer_, peer_site_, payload_);
      if (!r.ok()) {
        if (r.status().code() != Status::Code::kWouldBlock) error_ = r.status().to_string();
        return;
      }
      ++appended_;
    }
  }
  bool done() const { return appended_ == n_ && consumed_ >= n_ && e_.idle(); }
  bool failed() const { return !error_.empty(); }

  std::uint64_t appended() const { return appended_; }
  std::uint64_t consumed() const { return consumed_; }
  bool in_order() const { return out_of_order_ == 0; }
  const std::string& error() const { return error_; }

 private:
  // Message i carries i, then a fixed pattern: cheap to make, and reordering, repeats and
  // truncation all show in the index, the size or the last byte.
  static std::uint8_t pattern(std::size_t k) { return static_cast<std::uint8_t>(k * 7 + 3); }
  void fill(std::uint64_t i) {
    filled_ = i;
    std::memcpy(payload_.data(), &i, 8);
  }
  void check(const Message& m) {
    const std::uint64_t expected = consumed_ + 1;
    std::uint64_t index = 0;
    bool ok = m.seq == expected && m.payload.size() == payload_.size();
    if (ok) {
      std::memcpy(&index, m.payload.data(), 8);
      ok = index == expected && m.payload.back() == pattern(payload_.size() - 1);
    }
    if (!ok) ++out_of_order_;
    ++consumed_;
  }

  Endpoint& e_;
  std::uint64_t n_, self_, peer_;
  std::uint32_t peer_site_;
  std::vector<std::uint8_t> payload_;  // reused: no allocation per message here
  std::uint64_t filled_ = 0;           // the message payload_ holds
  std::uint64_t appended_ = 0, consumed_ = 0, out_of_order_ = 0;
  std::string error_;
};

EndpointOptions endpoint_options(const DemoOptions& o, std::uint32_t site) {
  EndpointOptions e;
  e.site_id = site;
  e.listen = "127.0.0.1:0";
  e.busy_poll = o.busy_poll;
  e.receive_drop_probability = o.loss;
  e.drop_seed = site;
  return e;
}

std::chrono::nanoseconds timeout_of(const DemoOptions& o) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(o.timeout_s));
}

int fail(const std::string& why) {
  std::fprintf(stderr, "demo: FAILED: %s\n", why.c_str());
  return 1;
}

int run_child(const DemoOptions& o) {
  auto ep = Endpoint::open(endpoint_options(o, kChildSite));
  if (!ep.ok()) return fail("child: " + ep.status().to_string());
  Endpoint& e = **ep;
  if (Status st = e.add_peer(kParentSite, o.peer); !st.ok()) return fail(st.to_string());
  DemoSide side(e, o, kChildStream, kParentStream, kParentSite);
  if (Status st = side.open(); !st.ok()) return fail(st.to_string());
  if (!runtime::write_all(STDOUT_FILENO, "ready " + e.local_address() + "\n").ok()) return 1;

  runtime::LineReader parent(STDIN_FILENO);
  const bool finished = e.run_until(
      [&] {
        side.pump();
        return side.done() || side.failed() || parent.closed();
      },
      timeout_of(o));
  // Judged now: once the parent stops polling, our last datagrams may never be acknowledged,
  // so idle() (part of done()) can turn false again by the time we exit.
  const bool ok = finished && side.done() && side.in_order();
  const EndpointStats s = e.stats();
  std::ostringstream report;
  report << "done finished=" << (finished && side.done()) << " appended=" << side.appended()
         << " consumed=" << side.consumed() << " in_order=" << side.in_order()
         << " retransmissions=" << s.retransmissions << " datagrams_out=" << s.datagrams_out
         << " datagrams_in=" << s.datagrams_in << " malformed=" << s.malformed_in << "\n";
  if (!runtime::write_all(STDOUT_FILENO, report.str()).ok()) return 1;
  // The parent may still need our acknowledgements; it closes our stdin when it has them.
  e.run_until([&] { return parent.closed(); }, timeout_of(o));
  return ok ? 0 : 1;
}

// "key=value" out of the child's report; 0 when absent.
std::uint64_t field(const std::string& report, const std::string& key) {
  const std::size_t at = report.find(" " + key + "=");
  if (at == std::string::npos) return 0;
  return std::strtoull(report.c_str() + at + key.size() + 2, nullptr, 10);
}

int run_parent(const DemoOptions& o) {
  auto ep = Endpoint::open(endpoint_options(o, kParentSite));
  if (!ep.ok()) return fail(ep.status().to_string());
  Endpoint& e = **ep;
  std::vector<std::string> argv = {"/proc/self/exe",
                                   "demo",
                                   "--child",
                                   "--peer",
                                   e.local_address(),
                                   "--messages",
                                   std::to_string(o.messages),
                                   "--size",
                                   std::to_string(o.size),
                                   "--loss",
                                   std::to_string(o.loss),
                                   "--timeout",
                                   std::to_string(o.timeout_s)};
  if (o.busy_poll) argv.push_back("--busy-poll");
  auto child = runtime::ChildProcess::spawn(argv);
  if (!child.ok()) return fail("cannot start the child: " + child.status().to_string());

  auto ready = child->output().read_line(10s);
  if (!ready.ok() || ready->rfind("ready ", 0) != 0)
    return fail("the child did not report its address: " +
                (ready.ok() ? *ready : ready.status().to_string()));
  if (Status st = e.add_peer(kChildSite, ready->substr(6)); !st.ok()) return fail(st.to_string());
  DemoSide side(e, o, kParentStream, kChildStream, kChildSite);
  if (Status st = side.open(); !st.ok()) return fail(st.to_string());

  const auto start = std::chrono::steady_clock::now();
  std::string report;
  bool both_done = e.run_until(
      [&] {
        side.pump();
        if (report.empty()) child->output().try_read_line(&report);
        return (side.done() && !report.empty()) || side.failed();
      },
      timeout_of(o));
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  child->close_input();
  const int child_exit = child->wait(5s);

  const EndpointStats s = e.stats();
  const bool child_ok = field(report, "finished") == 1 && field(report, "in_order") == 1;
  const bool ok = both_done && side.done() && side.in_order() && child_ok && child_exit == 0;
  const char* waits = o.busy_poll ? "busy polling" : "blocking waits";
  std::printf("mstream demo: 2 processes on loopback, site 1 (this one) and site 2 (its child)\n");
  std::printf("  %llu messages of %zu bytes each way, %s, receive loss %.0f%%\n",
              static_cast<unsigned long long>(o.messages), std::max<std::size_t>(o.size, 8), waits,
              o.loss * 100);
  std::printf("  site 1 -> site 2: appended %llu, consumed %llu, in order: %s\n",
              static_cast<unsigned long long>(side.appended()),
              static_cast<unsigned long long>(field(report, "consumed")),
              field(report, "in_order") == 1 ? "yes" : "no");
  std::printf("  site 2 -> site 1: appended %llu, consumed %llu, in order: %s\n",
              static_cast<unsigned long long>(field(report, "appended")),
              static_cast<unsigned long long>(side.consumed()), side.in_order() ? "yes" : "no");
  std::printf("  elapsed: %.3f s (%.0f messages/s, both directions together)\n", elapsed,
              elapsed > 0 ? 2.0 * static_cast<double>(o.messages) / elapsed : 0.0);
  std::printf("  datagrams: site 1 sent %llu, received %llu; site 2 sent %llu, received %llu\n",
              static_cast<unsigned long long>(s.datagrams_out),
              static_cast<unsigned long long>(s.datagrams_in),
              static_cast<unsigned long long>(field(report, "datagrams_out")),
              static_cast<unsigned long long>(field(report, "datagrams_in")));
  std::printf(
      "  retransmissions: site 1 %llu, site 2 %llu; dropped by the loss model at site 1: "
      "%llu; malformed: %llu\n",
      static_cast<unsigned long long>(s.retransmissions),
      static_cast<unsigned long long>(field(report, "retransmissions")),
      static_cast<unsigned long long>(s.dropped_by_loss_model),
      static_cast<unsigned long long>(s.malformed_in + field(report, "malformed")));
  if (report.empty()) std::printf("  site 2 sent no report: its numbers above are unknown\n");
  std::fflush(stdout);
  if (ok) {
    std::printf("demo: ok\n");
    return 0;
  }
  if (side.failed()) return fail(side.error());
  if (!both_done) return fail("timed out after " + std::to_string(o.timeout_s) + " s");
  if (child_exit != 0) return fail("the child exited with " + std::to_string(child_exit));
  return fail("messages were lost, repeated or reordered");
}

}  // namespace

void add_demo_command(CLI::App& app, int* exit_code) {
  auto opts = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "demo",
      "Two processes on loopback exchange messages in order, exactly once; prints a "
      "summary");
  cmd->add_option("--messages", opts->messages, "messages each way")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{100'000'000}));
  cmd->add_option("--size", opts->size, "bytes per message (at least 8)")
      ->check(CLI::Range(std::size_t{8}, std::size_t{1} << 20));
  cmd->add_flag("--busy-poll", opts->busy_poll, "spin instead of sleeping while waiting");
  cmd->add_option("--loss", opts->loss, "fraction of arriving datagrams each side drops")
      ->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--timeout", opts->timeout_s, "seconds before giving up")
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_flag("--child", opts->child)->group("");  // internal: the second process
  cmd->add_option("--peer", opts->peer)->group("");
  cmd->callback(
      [opts, exit_code] { *exit_code = opts->child ? run_child(*opts) : run_parent(*opts); });
}

}  // namespace mstream::cli
