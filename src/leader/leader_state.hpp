#pragma once
// The leader's durable state (`mstream leader --state DIR`; doc/session.md "A restarted
// leader"): the records LeaderCore writes to its store and reads back after a restart. One
// record per stream (its location, its agents' code, the operations on it), one per peer
// (its directory entry and the join nonce it came with), one for the rest, and, written by
// LeaderNode, one per peer for the leader's control channels with it. Each is encoded with
// wire/fields.hpp; a record of an empty value is a stream that is gone.

#include <cstdint>
#include <vector>

#include "proto/types.hpp"
#include "wire/codec.hpp"
#include "wire/control.hpp"

namespace mstream::leader {

// Store keys: the kind in the top two bits, the stream's or the site's id below.
inline constexpr std::uint64_t kMetaKey = 0;
inline constexpr std::uint64_t kStreamKeys = 1ull << 62;
inline constexpr std::uint64_t kPeerKeys = 2ull << 62;
inline constexpr std::uint64_t kChannelKeys = 3ull << 62;
inline constexpr std::uint64_t kKeyKind = 3ull << 62;
// A secured session's keys (site 0 has no control channels with itself): the master key and
// the leader's X25519 pair, 96 bytes, so that a restarted leader derives the keys its members
// hold and answers joins as its members expect.
inline constexpr std::uint64_t kTrafficKeyKey = kChannelKeys | 0;
// A destroyed stream among the leader's last LeaderCore::kRetiredKept: the meta kind with its id
// (never 0), where it was destroyed (SavedRetired).
inline constexpr std::uint64_t kRetiredKeys = kMetaKey;

struct SavedOp {
  proto::SiteId requester = 0;
  std::uint64_t req = 0;
  wire::Bytes request;  // wire::encode_control
  proto::StreamId stream = 0;
  std::uint64_t agent = 0;
  std::uint64_t epoch = 0;
  proto::SiteId target = 0;
  proto::SiteId settle_with = 0;
  proto::SiteId source = 0;
  std::uint8_t vetted = 0;  // its policy checks passed (else they run again after a restart)
  template <class A>
  void fields(A& a) {
    a(requester, req, request, stream, agent, epoch, target, settle_with, source, vetted);
  }
};

struct SavedAgent {
  wire::Code code;
  std::vector<proto::SiteId> visited;
  template <class A>
  void fields(A& a) {
    a(code, visited);
  }
};

struct SavedStream {
  std::uint8_t created = 0;  // else only an operation creates it (record unused)
  wire::StreamRecord record;
  std::vector<std::uint64_t> agents;
  std::vector<SavedAgent> code;    // of its agents, attached or being attached
  std::vector<SavedOp> in_flight;  // none or one
  std::vector<SavedOp> queue;
  std::uint8_t busy = 0;
  proto::SiteId temp_owner = 0;
  std::vector<proto::SiteId> watchers;
  std::uint64_t max_epoch = 1;
  std::vector<proto::StreamId> opened;
  template <class A>
  void fields(A& a) {
    a(created, record, agents, code, in_flight, queue, busy, temp_owner, watchers, max_epoch,
      opened);
  }
};

struct SavedRetired {
  proto::SiteId site = 0;
  std::uint64_t epoch = 0;
  std::uint64_t order = 0;  // the leader's count of destroys when it was destroyed
  template <class A>
  void fields(A& a) {
    a(site, epoch, order);
  }
};

struct SavedPeer {
  wire::PeerRecord peer;
  std::uint64_t nonce = 0;
  wire::Controls controls;  // its controllers' policy events: checks go on across a restart
  template <class A>
  void fields(A& a) {
    a(peer, nonce, controls);
  }
};

struct SavedWaiter {
  proto::SiteId shell = 0;
  std::uint64_t req = 0;
  std::uint64_t appended = 0;
  template <class A>
  void fields(A& a) {
    a(shell, req, appended);
  }
};

struct SavedDelegated {
  proto::SiteId target = 0;
  proto::SiteId requester = 0;
  std::uint64_t req = 0;
  wire::StreamRecord rec;
  template <class A>
  void fields(A& a) {
    a(target, requester, req, rec);
  }
};

struct SavedCount {
  proto::SiteId site = 0;
  std::uint64_t count = 0;
  template <class A>
  void fields(A& a) {
    a(site, count);
  }
};

struct SavedMeta {
  std::uint32_t boot = 0;
  proto::SiteId next_site = 1;
  proto::SiteId next_shell = 0;
  proto::StreamId next_stream = 1;
  std::uint64_t next_agent = 1;
  std::uint8_t failures_seen = 0;
  std::vector<SavedWaiter> waiters;
  std::vector<SavedDelegated> delegated;
  std::vector<SavedCount> requests_done;
  template <class A>
  void fields(A& a) {
    a(boot, next_site, next_shell, next_stream, next_agent, failures_seen, waiters, delegated,
      requests_done);
  }
};

// The leader's control channels with one peer, in the site-0 transport.
struct SavedChannels {
  std::vector<wire::OutChannel> out;  // none or one: leader -> peer (overflow included)
  std::vector<wire::InChannel> in;    // none or one: peer -> leader
  template <class A>
  void fields(A& a) {
    a(out, in);
  }
};

}  // namespace mstream::leader
