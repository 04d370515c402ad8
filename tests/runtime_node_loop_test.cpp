// NodeLoop's address book: a daemon runs for months while shells come and go, so the addresses
// it learnt from members its node has since forgotten (doc/session.md "What is forgotten") do
// not pile up.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <set>
#include <string>

#include "runtime/node_loop.hpp"

namespace mstream::runtime {
namespace {

using namespace std::chrono_literals;

// Takes every datagram as coming from the site id in its last four bytes; knows the sites in
// `members`, as a node's directory would.
class FakeNode final : public proto::Node {
 public:
  std::set<proto::SiteId> members;
  std::size_t received = 0;

  proto::SiteId self() const override { return 1; }
  void on_datagram(wire::ByteView bytes, proto::Time) override {
    ++received;
    std::memcpy(&last_, bytes.data() + bytes.size() - 4, 4);
  }
  proto::SiteId last_source() const override { return last_; }
  void step(proto::Time) override {}
  bool has_work() const override { return false; }
  proto::Time next_timeout() const override { return proto::kNever; }
  void on_timeout(proto::Time) override {}
  bool poll_transmit(proto::Time, proto::OutDatagram*) override { return false; }
  std::optional<std::string> peer_address(proto::SiteId site) const override {
    if (!members.contains(site)) return std::nullopt;
    return "127.0.0.1:9";
  }
  bool finished() const override { return false; }

 private:
  proto::SiteId last_ = proto::kNoSource;
};

class Sender {
 public:
  explicit Sender(const std::string& to) : fd_(::socket(AF_INET, SOCK_DGRAM, 0)) {
    const auto colon = to.rfind(':');
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<std::uint16_t>(std::stoi(to.substr(colon + 1))));
    ::inet_pton(AF_INET, to.substr(0, colon).c_str(), &addr_.sin_addr);
  }
  ~Sender() { ::close(fd_); }
  void send_as(proto::SiteId site) {
    unsigned char b[8] = {0xEE, 0xEE, 0xEE, 0xEE};  // not a join
    std::memcpy(b + 4, &site, 4);
    (void)::sendto(fd_, b, sizeof(b), 0, reinterpret_cast<const sockaddr*>(&addr_), sizeof(addr_));
  }

 private:
  int fd_;
  sockaddr_in addr_{};
};

TEST(NodeLoop, ForgetsTheAddressesOfMembersItsNodeForgot) {
  auto loop = NodeLoop::open({});
  ASSERT_TRUE(loop.ok()) << loop.status().message();
  FakeNode node;
  (*loop)->attach(&node);
  Sender sender((*loop)->local_address());
  std::size_t sent = 0;
  auto send_all = [&](proto::SiteId first, proto::SiteId last) {
    for (proto::SiteId s = first; s <= last; ++s) {
      node.members.insert(s);
      sender.send_as(s);
      ++sent;
      if (sent % 32 == 0) {
        ASSERT_TRUE((*loop)->run_until([&] { return node.received == sent; }, 5s));
      }
    }
    ASSERT_TRUE((*loop)->run_until([&] { return node.received == sent; }, 5s));
  };
  // Ten generations of 100 shells, each forgotten by the node before the next comes.
  for (proto::SiteId gen = 0; gen < 10; ++gen) {
    send_all(1000 + gen * 100, 1000 + gen * 100 + 99);
    if (HasFatalFailure()) return;
    EXPECT_GE((*loop)->peer_count(), 100u);
    node.members.clear();
  }
  EXPECT_LE((*loop)->peer_count(), 2 * 100u + 64u);
}

}  // namespace
}  // namespace mstream::runtime
