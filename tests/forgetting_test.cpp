// What the session keeps about the streams and shells that are gone stays bounded (doc/
// session.md "What is forgotten"; issue 18, "Memory that only grows"): a whole session in
// memory churns streams (create, attach an agent, append, move, destroy) and shells (join,
// use, leave), and every table that remembers the departed, at every site and at the leader,
// is no larger after many than after a few.
#include <gtest/gtest.h>

#include <iostream>
#include <sstream>
#include <string>

#include "memory_session.hpp"
#include "sim/memory_store.hpp"

namespace mstream {
namespace {

using testing::MemorySession;

const char* const kAgent = "set n 0\nbriefcase n\non_stream_append {incr n}\n";

// The life of one stream, as the shells did it: created at one site with a Tcl agent,
// appended to, moved to another site, destroyed.
void churn_one(site::ShellApi& shell, std::uint32_t i, std::uint32_t sites) {
  const std::string name = "/churn/" + std::to_string(i);
  tcl::CreateOptions at;
  at.site = 1 + i % sites;
  ASSERT_TRUE(shell.stream_create(name, at).ok()) << name;
  ASSERT_TRUE(shell.register_agent(name, "", kAgent, "", false).ok()) << name;
  for (int k = 0; k < 3; ++k) ASSERT_TRUE(shell.stream_append(name, "m", false).ok());
  auto last = shell.stream_append(name, "last", true);
  ASSERT_TRUE(last.ok()) << last.status().message();
  ASSERT_TRUE(shell.stream_move(name, 1 + (i + 1) % sites).ok()) << name;
  ASSERT_TRUE(shell.stream_destroy(name).ok()) << name;
}

void churn(MemorySession& s, site::ShellApi& shell, std::uint32_t first, std::uint32_t count) {
  for (std::uint32_t i = first; i < first + count; ++i) {
    churn_one(shell, i, 3);
    if (::testing::Test::HasFatalFailure()) return;
  }
  ASSERT_TRUE(shell.wait_quiescent(std::chrono::seconds(60)).ok());
  (void)s.run_until([] { return false; }, 100);  // the last words reach everyone
}

// The site that last hosted a stream gets no Finalize (the leader sends it to the other sites
// its agents visited): its agents' code stayed cached there.
TEST(Forgetting, TheCodeOfADestroyedStreamsAgentsIsNotKept) {
  MemorySession s({});
  site::ShellApi& shell = s.join_shell();
  churn(s, shell, 0, 30);
  for (proto::SiteId id = 0; id <= 3; ++id) {
    const site::SiteSizes z = s.site(id).sizes();
    EXPECT_EQ(z.code, 0u) << "site " << id;
    EXPECT_EQ(z.loaded, 0u) << "site " << id;
    EXPECT_EQ(z.hosted, 0u) << "site " << id;
  }
}

}  // namespace
}  // namespace mstream

namespace mstream {
namespace {
using testing::MemorySession;

std::string describe(const site::SiteSizes& z) {
  std::ostringstream o;
  o << "hosted=" << z.hosted << " code=" << z.code << " loaded=" << z.loaded
    << " sandboxes=" << z.sandboxes << " dir_streams=" << z.directory_streams
    << " dir_peers=" << z.directory_peers << " destroyed=" << z.destroyed_records
    << " pins=" << z.sender_pins << " send=" << z.send_channels << " recv=" << z.recv_channels
    << " shell_counts=" << z.shell_counts << " per_stream=" << z.per_stream;
  return o.str();
}
std::string describe(const leader::LeaderCore::Sizes& z) {
  std::ostringstream o;
  o << "peers=" << z.peers << " nonces=" << z.join_nonces << " streams=" << z.streams
    << " states=" << z.stream_states << " agents=" << z.agents
    << " requests_done_by=" << z.requests_done_by << " delegated=" << z.delegated
    << " admitted_at=" << z.admitted_at << " controls=" << z.controls
    << " dirty=" << z.dirty_streams << " batched=" << z.batched_locations
    << " retired=" << z.retired;
  return o.str();
}

// Every table that remembers what is gone stays within its bound however many streams and
// shells come and go: the ones without a horizon are no larger after 5,800 churned streams
// and 10 departed shells than after 200 and 2, and the ones with one (the last destroyed
// streams' ends, the pins of destroyed senders) stop at it. The leader's durable state too.
TEST(Forgetting, EveryTableThatRemembersTheDepartedIsBounded) {
  auto store = std::make_shared<sim::MemoryStore>();
  MemorySession s({.sites = 3, .leader_state = store, .site_options = {}});
  std::uint32_t next = 0;
  auto shell_churns = [&](std::uint32_t count) {
    site::ShellApi& shell = s.join_shell();
    const proto::SiteId id = s.last_shell();
    churn(s, shell, next, count);
    next += count;
    s.leave_shell(id);
  };
  shell_churns(100);
  shell_churns(100);
  std::vector<site::SiteSizes> warm;
  for (proto::SiteId site = 0; site <= 3; ++site) warm.push_back(s.site(site).sizes());
  const leader::LeaderCore::Sizes warm_leader = s.leader().leader().sizes();
  const std::size_t warm_records = store->scan()->size();
  for (int shells = 0; shells < 8; ++shells) {
    shell_churns(700);
    if (HasFatalFailure()) return;
  }
  ASSERT_GT(next, proto::Transport::kRetiredSenders + site::Directory::kKeptDestroyed);
  for (proto::SiteId site = 0; site <= 3; ++site) {
    const site::SiteSizes z = s.site(site).sizes();
    const site::SiteSizes& w = warm[site];
    SCOPED_TRACE("site " + std::to_string(site) + ": " + describe(z));
    EXPECT_EQ(z.hosted, 0u);
    EXPECT_EQ(z.code, 0u);
    EXPECT_EQ(z.loaded, 0u);
    EXPECT_LE(z.sandboxes, w.sandboxes);
    EXPECT_EQ(z.directory_streams, 0u);
    EXPECT_LE(z.directory_peers, w.directory_peers);
    EXPECT_LE(z.destroyed_records, site::Directory::kKeptDestroyed);
    EXPECT_LE(z.sender_pins, proto::Transport::kRetiredSenders);
    EXPECT_LE(z.send_channels, w.send_channels);
    EXPECT_LE(z.recv_channels, w.recv_channels);
    EXPECT_LE(z.shell_counts, w.shell_counts);
    EXPECT_LE(z.per_stream, w.per_stream);
  }
  const leader::LeaderCore::Sizes z = s.leader().leader().sizes();
  SCOPED_TRACE("leader: " + describe(z));
  EXPECT_LE(z.peers, warm_leader.peers);
  EXPECT_LE(z.join_nonces, warm_leader.join_nonces);
  EXPECT_EQ(z.streams, 0u);
  EXPECT_EQ(z.stream_states, 0u);
  EXPECT_EQ(z.agents, 0u);
  EXPECT_LE(z.admitted_at, warm_leader.admitted_at);
  EXPECT_LE(z.requests_done_by, warm_leader.requests_done_by);
  EXPECT_LE(z.delegated, warm_leader.delegated);
  // The last kRetiredKept destroyed streams' sites (wire::Placed::destroyed_at), in memory and
  // in the leader's state; nothing else grows.
  EXPECT_EQ(z.retired, leader::LeaderCore::kRetiredKept);
  EXPECT_LE(store->scan()->size(),
            warm_records - warm_leader.retired + leader::LeaderCore::kRetiredKept);
}

// What a site still answers for a stream it forgot: every id below the leader's watermark that
// its replica lacks was destroyed, so an open, an append or a move of it is refused as of a
// destroyed stream, however long ago.
TEST(Forgetting, AStreamForgottenLongAgoIsStillDestroyed) {
  MemorySession s({});
  site::ShellApi& shell = s.join_shell();
  churn(s, shell, 0, static_cast<std::uint32_t>(site::Directory::kKeptDestroyed) + 50);
  for (proto::SiteId site = 0; site <= 3; ++site) {
    const site::Directory& d = s.site(site).directory();
    EXPECT_LE(d.destroyed_record_count(), site::Directory::kKeptDestroyed);
    EXPECT_TRUE(d.destroyed(1)) << "site " << site;          // the first stream churned, forgotten
    EXPECT_FALSE(d.destroyed(1u << 30)) << "site " << site;  // not created yet
  }
  // A site that joins later learns the watermark with the directory.
  site::ShellApi& late = s.join_shell();
  EXPECT_TRUE(s.shell_core(s.last_shell()).directory().destroyed(1));
  (void)late;
}

}  // namespace
}  // namespace mstream
