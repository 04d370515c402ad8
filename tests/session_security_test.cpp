// Secured sessions as a user meets them (doc/security.md): the leader makes the session's
// secret, the sites and shells that hold it join, those that do not are refused with a clear
// error, and datagrams an attacker sends to a member are dropped, counted and reported
// while the session goes on.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "e2e_support.hpp"
#include "wire/datagram.hpp"  // kVersion only: the bytes below are written by hand

namespace mstream::e2e {
namespace {

constexpr const char* kLeaderReady = "mstream: leader listening on ";

// Sends `datagram` to HOST:PORT from a socket of its own.
void send_udp(const std::string& host_port, const std::vector<std::uint8_t>& datagram) {
  const auto colon = host_port.rfind(':');
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(std::stoi(host_port.substr(colon + 1))));
  ASSERT_EQ(inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &to.sin_addr), 1);
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  (void)::sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&to),
                 sizeof to);
  ::close(fd);
}

class Security : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    secret_ = dir_.file("keys/secret");
    leader_ = Background::start(dir_, "leader",
                                {"leader", "--listen", "127.0.0.1:0", "--secret-file", secret_});
    ASSERT_NE(leader_, nullptr) << "the leader printed nothing";
    const std::string first = leader_->first_line();
    ASSERT_EQ(first.rfind(kLeaderReady, 0), 0u) << first;
    address_ = first.substr(std::string(kLeaderReady).size());
  }
  void TearDown() override {
    for (auto& s : sites_) s->stop();
    if (leader_) leader_->stop();
  }

  CommandResult join_site(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"site", "--leader", address_};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_mstream(dir_, args, 30s);
  }

  TempDir dir_;
  std::string secret_;
  std::unique_ptr<Background> leader_;
  std::vector<std::unique_ptr<Background>> sites_;
  std::string address_;
};

TEST_F(Security, TheLeaderMakesAPrivateSecretAndItsHoldersJoin) {
  struct stat st {};
  ASSERT_EQ(::stat(secret_.c_str(), &st), 0) << "no secret at " << secret_;
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(contains(leader_->err(), "made a new session secret at " + secret_))
      << leader_->err();
  // 64 hex digits and a newline, then the leader's public key, which every member pins.
  const std::string text = read_file(secret_);
  ASSERT_EQ(text.size(), 65u + 18u + 65u) << text;
  EXPECT_EQ(text.substr(65, 18), "leader-public-key ");
  // The leader's secret key beside it, as private.
  ASSERT_EQ(::stat((secret_ + ".leader").c_str(), &st), 0) << "no leader key beside the secret";
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(read_file(secret_ + ".leader").size(), 65u);

  auto site =
      Background::start(dir_, "site1", {"site", "--leader", address_, "--secret-file", secret_});
  ASSERT_NE(site, nullptr);
  EXPECT_EQ(site->first_line(), "mstream: site 1 joined " + address_);
  sites_.push_back(std::move(site));

  dir_.write("t.tcl", R"T(
stream_create s -site 1
register_agent s {} { on_stream_append { return [string toupper $argv] } }
puts [stream_append s secret -sync]
)T");
  const CommandResult r =
      run_mstream(dir_, {"run", "--session", address_, "--secret-file", secret_, "t.tcl"}, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "SECRET")) << r.describe();
}

TEST_F(Security, JoinersWithoutTheSecretAreRefusedClearly) {
  const CommandResult insecure = join_site({"--insecure"});
  EXPECT_NE(insecure.exit_code, 0);
  EXPECT_TRUE(contains(insecure.err, "this session is secured")) << insecure.describe();

  const CommandResult missing = join_site({"--secret-file", dir_.file("nothing")});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(contains(missing.err, "no session secret at " + dir_.file("nothing")))
      << missing.describe();

  dir_.write("other", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
  ::chmod(dir_.file("other").c_str(), 0644);
  const CommandResult open_mode = join_site({"--secret-file", dir_.file("other")});
  EXPECT_NE(open_mode.exit_code, 0);
  EXPECT_TRUE(contains(open_mode.err, "chmod 600")) << open_mode.describe();

  // A secret file without the leader's public key (of before the leader's key pair).
  ::chmod(dir_.file("other").c_str(), 0600);
  const CommandResult unpinned = join_site({"--secret-file", dir_.file("other")});
  EXPECT_NE(unpinned.exit_code, 0);
  EXPECT_TRUE(contains(unpinned.err, "copy the leader's secret file here again"))
      << unpinned.describe();

  // Another secret, pinning this leader's public key.
  const std::string pinned = read_file(secret_).substr(65);
  dir_.write("other",
             "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n" + pinned);
  ::chmod(dir_.file("other").c_str(), 0600);
  const CommandResult wrong = join_site({"--secret-file", dir_.file("other")});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_TRUE(contains(wrong.err, "did not authenticate")) << wrong.describe();

  // The session's secret, pinning another leader's public key: the accept is refused.
  dir_.write("impostor", read_file(secret_).substr(0, 65) + "leader-public-key " +
                             std::string(62, '7') + "00\n");
  ::chmod(dir_.file("impostor").c_str(), 0600);
  const CommandResult impostor = join_site({"--secret-file", dir_.file("impostor")});
  EXPECT_NE(impostor.exit_code, 0);
  EXPECT_TRUE(contains(impostor.err, "the leader's key pair is another")) << impostor.describe();

  const CommandResult status =
      run_mstream(dir_, {"status", "--session", address_, "--insecure", "--json"}, 20s);
  EXPECT_NE(status.exit_code, 0);
  EXPECT_TRUE(contains(status.err, "secured")) << status.describe();
}

TEST_F(Security, ForgedDatagramsAreDroppedCountedAndTheSessionGoesOn) {
  auto site =
      Background::start(dir_, "site1", {"site", "--leader", address_, "--secret-file", secret_});
  ASSERT_NE(site, nullptr);
  ASSERT_EQ(site->first_line(), "mstream: site 1 joined " + address_);
  const CommandResult status =
      run_mstream(dir_, {"status", "--session", address_, "--secret-file", secret_, "--json"}, 20s);
  ASSERT_EQ(status.exit_code, 0) << status.describe();
  auto json = JsonParser::parse(status.lines().at(0));
  ASSERT_TRUE(json.has_value());
  std::string site_address;
  for (const Json& s : (*json)["sites"].array())
    if (s["id"].number() == 1) site_address = s["address"].string();
  ASSERT_FALSE(site_address.empty()) << status.out;

  // Sealed datagrams in site 0's name (magic, version, kind 2, site 0, boot 0, counters 1..20)
  // that no key opened, and plain path datagrams: none may reach a handler.
  for (std::uint8_t c = 1; c <= 20; ++c) {
    std::vector<std::uint8_t> forged = {0x4D, 0x53, wire::kVersion, 2, 0, 0, 0, 0, 0, 0, 0, 0, c};
    forged.resize(200, c);
    send_udp(site_address, forged);
    send_udp(address_, forged);
  }
  std::vector<std::uint8_t> plain = {0x4D, 0x53, wire::kVersion, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1};
  send_udp(site_address, plain);
  EXPECT_TRUE(wait_until([&] { return contains(site->err(), "did not authenticate"); }, 10s))
      << site->err();
  EXPECT_TRUE(contains(site->err(), " forged or tampered with")) << site->err();
  EXPECT_TRUE(wait_until([&] { return contains(leader_->err(), "did not authenticate"); }, 10s))
      << leader_->err();
  sites_.push_back(std::move(site));

  dir_.write("t.tcl", R"T(
stream_create s -site 1
register_agent s {} { on_stream_append { puts "got $argv" } }
for {set i 0} {$i < 20} {incr i} { stream_append s $i }
)T");
  const CommandResult r =
      run_mstream(dir_, {"run", "--session", address_, "--secret-file", secret_, "t.tcl"}, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(wait_until([&] { return contains(sites_[0]->out(), "got 19"); }, 10s))
      << sites_[0]->out();
  EXPECT_EQ(count_of(sites_[0]->out(), "got "), 20u);
}

// A secret file of before the leader's key pair: the leader makes the pair, adds its public
// key to the file and says so; its members then join with the file as it is now.
TEST(SecurityUpgrade, ALeaderAddsItsPublicKeyToAnOlderSecretFile) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string secret = dir.file("secret");
  const std::string hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  dir.write("secret", hex + "\n");
  ::chmod(secret.c_str(), 0600);
  auto leader = Background::start(dir, "leader",
                                  {"leader", "--listen", "127.0.0.1:0", "--secret-file", secret});
  ASSERT_NE(leader, nullptr);
  const std::string first = leader->first_line();
  ASSERT_EQ(first.rfind(kLeaderReady, 0), 0u) << first << leader->err();
  const std::string address = first.substr(std::string(kLeaderReady).size());
  EXPECT_TRUE(contains(leader->err(), "added its public key")) << leader->err();
  const std::string text = read_file(secret);
  EXPECT_EQ(text.substr(0, 65), hex + "\n");  // the secret itself is unchanged
  EXPECT_EQ(text.substr(65, 18), "leader-public-key ");
  auto site =
      Background::start(dir, "site1", {"site", "--leader", address, "--secret-file", secret});
  ASSERT_NE(site, nullptr);
  EXPECT_EQ(site->first_line(), "mstream: site 1 joined " + address);
  site->stop();
  leader->stop();
}

TEST(SecurityEmbedded, MstreamRunSecuresItsOwnSessionOrNotWithInsecure) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string script = R"T(
stream_create s -site 2
register_agent s {} { on_stream_append { return "<$argv>" } }
puts [stream_append s x -sync]
)T";
  const CommandResult secured = run_script(dir, script, {"--sites", "2"});
  EXPECT_EQ(secured.exit_code, 0) << secured.describe();
  EXPECT_EQ(shell_lines(secured.out), std::vector<std::string>{"<x>"}) << secured.describe();
  const CommandResult insecure = run_script(dir, script, {"--sites", "2", "--insecure"});
  EXPECT_EQ(insecure.exit_code, 0) << insecure.describe();
  EXPECT_EQ(shell_lines(insecure.out), std::vector<std::string>{"<x>"}) << insecure.describe();
}

}  // namespace
}  // namespace mstream::e2e
