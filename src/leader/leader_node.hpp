#pragma once
// LeaderNode: the leader's process as one proto::Node: site 0 (a SiteCore, hosting streams
// like any site) and the LeaderCore, sharing site 0's transport. Control messages to the
// leader's stream are handed to the LeaderCore; what it sends leaves from that stream.
//
// Thread-safety: none.

#include <array>
#include <memory>
#include <unordered_map>

#include "leader/leader_core.hpp"
#include "site/site_core.hpp"

namespace mstream::leader {

// A secured session's keys at its leader (doc/security.md).
struct JoinSecurity {
  wire::Key join_key{};    // derived from the session secret: a joiner proves it has it
  wire::Key master_key{};  // the session's: the key of every pair derives from it
  wire::Key cookie_key{};  // this process's own: the challenges it sends joiners
  // The leader's long-term X25519 pair (beside the secret file): it seals each join accept
  // for the one joiner, which pins its public key.
  wire::KxKeyPair kx{};
};

class LeaderNode final : public proto::Node {
 public:
  // With `security`, the session is secured: site 0's transport derives the key of each of
  // its pairs from the master key, and a joiner must prove it holds the session secret
  // (wire/join.hpp) before it is given an id and its key with the leader, in an accept only
  // it can open; the Welcome and PeerUpdates give each member its keys with the others. With
  // --state, the master key and key pair of the session resumed replace security's
  // (open_state).
  LeaderNode(site::SiteOptions site_options, LeaderOptions leader_options,
             std::optional<JoinSecurity> security = std::nullopt);

  // Where the other sites reach this process ("HOST:PORT").
  void set_own_address(std::string address, std::uint64_t pid) {
    leader_.set_own_address(std::move(address), pid);
  }

  SiteId self() const override { return 0; }
  void on_datagram(wire::ByteView bytes, Time now) override { site_.on_datagram(bytes, now); }
  SiteId last_source() const override { return site_.last_source(); }
  bool on_join(wire::ByteView bytes, const std::string& from, Time now,
               wire::Bytes* reply) override;
  void step(Time now) override;
  bool has_work() const override { return site_.has_work(); }
  Time next_timeout() const override;
  void on_timeout(Time now) override;
  bool poll_transmit(Time now, proto::OutDatagram* out) override {
    return site_.poll_transmit(now, out);
  }
  std::optional<std::string> peer_address(SiteId site) const override;
  bool finished() const override { return site_.finished(); }

  site::SiteCore& site() { return site_; }
  LeaderCore& leader() { return leader_; }

  // With LeaderOptions::state: loads the state a previous process of this leader left there,
  // if any, and resumes its session (LeaderCore::resume); else starts the state. Call once,
  // before the first datagram. Errors: the store's, or kMalformed for an unreadable state
  // (the store is left as it was; the node must not be used then).
  Status open_state(Time now);
  // Whether open_state() found a session to resume.
  bool resumed() const { return resumed_; }

 private:
  // Commits what the leader changed, before anything it sent meanwhile can leave the process
  // (output commit: a peer never hears of a state the restarted leader would not have).
  void save();
  // The answers of a secured leader, and of an unsecured one to a secured joiner.
  bool on_secured_join(wire::ByteView bytes, const std::string& from, Time now, wire::Bytes* reply);
  std::array<std::uint8_t, 16> cookie(std::uint64_t nonce, const std::string& from) const;
  void challenge(std::uint64_t nonce, const std::string& from, wire::Bytes* reply) const;
  static void refuse(std::uint64_t nonce, std::string reason, wire::Bytes* reply,
                     wire::JoinMessage::Op op = wire::JoinMessage::Op::kRefuse);
  // What LeaderCore sends, with the receiver's pair keys added to a Welcome or PeerUpdate.
  void send_keyed(SiteId to, const wire::ControlMessage& m);

  site::SiteCore site_;
  LeaderCore leader_;
  std::shared_ptr<proto::DurableStore> state_;
  std::uint64_t channel_writes_ = 0;
  bool resumed_ = false;
  Time now_ = 0;
  std::optional<JoinSecurity> security_;
  bool keys_saved_ = false;
  // The public key each admitted join nonce came with (this process's): a repeated request
  // is answered only for the same key, so nobody can swap a joiner's key exchange.
  std::unordered_map<std::uint64_t, wire::KxPublicKey> join_publics_;
};

}  // namespace mstream::leader
