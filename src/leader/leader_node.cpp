#include "leader/leader_node.hpp"

#include "leader/leader_state.hpp"
#include "wire/fields.hpp"

namespace mstream::leader {

LeaderNode::LeaderNode(site::SiteOptions site_options, LeaderOptions leader_options,
                       std::optional<JoinSecurity> security)
    : site_([&] {
        site_options.self = 0;
        site_options.shell = false;
        if (security) site_options.master_key = security->master_key;
        return site_options;
      }()),
      leader_(
          leader_options, [this](SiteId to, const wire::ControlMessage& m) { send_keyed(to, m); },
          [this, timeout = leader_options.failure_timeout](SiteId site) {
            site_.admit(site);
            // The leader keeps every member hearing from it, so that one it declared failed
            // (and no longer pings) notices within the timeout.
            if (timeout > 0) site_.set_keepalive(site, site::SiteCore::keepalive_interval(timeout));
          }),
      state_(leader_options.state),
      security_(security) {
  leader_.set_last_heard([this](SiteId site) { return site_.last_heard(site); });
  site_.set_leader_inbox([this](StreamId from, wire::ByteView payload) {
    if (!site::is_control(from)) return;
    auto m = wire::decode_control(payload);
    if (!m.ok()) return;  // counted by nobody: only admitted sites reach this stream
    leader_.on_message(site::control_site(from), *m, now_);
  });
  // Site 0 learns the directory like any site, from the leader.
  wire::Welcome w;
  for (const auto& [id, p] : leader_.peers()) w.peers.push_back(p);
  site_.send_from_leader(0, w);
}

namespace {
std::string key_string(const wire::Key& k) { return std::string(k.begin(), k.end()); }
}  // namespace

// The keys go in here, not in LeaderCore, because only the leader's process holds the master:
// the core's messages (and its state) are the same secured or not.
void LeaderNode::send_keyed(SiteId to, const wire::ControlMessage& m) {
  if (!security_ || to == 0) {
    site_.send_from_leader(to, m);
    return;
  }
  const wire::Key& master = security_->master_key;
  if (const auto* w = std::get_if<wire::Welcome>(&m)) {
    wire::Welcome keyed = *w;
    for (const wire::PeerRecord& p : w->peers)
      if (p.live && p.site != 0 && p.site != to)
        keyed.keys.push_back({p.site, key_string(wire::pair_key(master, to, p.site))});
    site_.send_from_leader(to, keyed);
    return;
  }
  if (const auto* u = std::get_if<wire::PeerUpdate>(&m); u && u->peer.live && u->peer.site != to) {
    wire::PeerUpdate keyed = *u;
    keyed.key = key_string(wire::pair_key(master, to, u->peer.site));
    site_.send_from_leader(to, keyed);
    return;
  }
  site_.send_from_leader(to, m);
}

void LeaderNode::refuse(std::uint64_t nonce, std::string reason, wire::Bytes* reply,
                        wire::JoinMessage::Op op) {
  wire::JoinMessage answer;
  answer.op = op;
  answer.nonce = nonce;
  answer.reason = std::move(reason);
  wire::encode_join(answer, reply);
}

// The cookie covers the address the hello came from: a request is taken only from there.
std::array<std::uint8_t, 16> LeaderNode::cookie(std::uint64_t nonce,
                                                const std::string& from) const {
  wire::Bytes data;
  wire::Writer(&data).u64(nonce);
  data.insert(data.end(), from.begin(), from.end());
  return wire::short_mac(security_->cookie_key, data);
}

void LeaderNode::challenge(std::uint64_t nonce, const std::string& from, wire::Bytes* reply) const {
  wire::JoinMessage c;
  c.op = wire::JoinMessage::Op::kChallenge;
  c.nonce = nonce;
  c.cookie = cookie(nonce, from);
  wire::encode_join(c, reply);
}

bool LeaderNode::on_secured_join(wire::ByteView bytes, const std::string& from, Time now,
                                 wire::Bytes* reply) {
  using Op = wire::JoinMessage::Op;
  if (wire::datagram_kind(bytes) == wire::kKindJoin) {
    auto m = wire::decode_join(bytes);
    if (!m.ok()) return false;
    if (m->op == Op::kRequest) {
      if (!security_) return false;  // on_join's
      refuse(m->nonce,
             "this session is secured: the joiner needs the session's secret (--secret-file; "
             "doc/security.md)",
             reply);
      return true;
    }
    if (m->op != Op::kHello) return false;
    if (!security_) {
      refuse(m->nonce, "this session is not secured: join it with --insecure", reply);
      return true;
    }
    challenge(m->nonce, from, reply);
    return true;
  }
  auto nonce = wire::sealed_join_nonce(bytes);
  if (!nonce.ok()) return false;
  if (!security_) {
    refuse(*nonce, "this session is not secured: join it with --insecure", reply);
    return true;
  }
  auto m = wire::decode_sealed_join(bytes, security_->join_key);
  if (!m.ok()) {
    refuse(*nonce,
           "the join request did not authenticate: the joiner's session secret is not this "
           "session's",
           reply, Op::kUnauthentic);  // or damaged on its way: the joiner keeps asking
    return true;
  }
  if (m->op != Op::kRequest) return false;
  if (!m->has_cookie || m->cookie != cookie(m->nonce, from)) {
    // An old process's challenge, a recording, or a request sent from another address than
    // its hello's (a replay that would take the joiner's place in the directory): a fresh
    // challenge, to where it came from, sorts out the honest cases.
    challenge(m->nonce, from, reply);
    return true;
  }
  if (!m->has_public) {
    refuse(m->nonce, "the joiner sent no public key: it runs an older mstream", reply);
    return true;
  }
  auto seal_key = wire::kx_leader_seal_key(security_->kx, m->public_key);
  if (!seal_key.ok()) {
    refuse(m->nonce, "the join request's public key is unusable", reply);
    return true;
  }
  auto known = join_publics_.find(m->nonce);
  if (known != join_publics_.end() && known->second != m->public_key) {
    // The same join with another key exchange: not the joiner that was answered.
    refuse(m->nonce, "this join was answered for another public key", reply);
    return true;
  }
  wire::JoinMessage answer;
  if (!leader_.on_join(*m, from, &answer, now)) return false;
  save();
  if (answer.op != Op::kAccept) {
    wire::encode_join(answer, reply);
    return true;
  }
  join_publics_.emplace(m->nonce, m->public_key);
  answer.has_key = true;
  answer.key = wire::pair_key(security_->master_key, 0, answer.site);
  // For the joiner alone: a member holding the secret cannot open it.
  wire::encode_sealed_join(answer, *seal_key, reply);
  return true;
}

bool LeaderNode::on_join(wire::ByteView bytes, const std::string& from, Time now,
                         wire::Bytes* reply) {
  now_ = now;
  if (security_ || wire::datagram_kind(bytes) == wire::kKindSealedJoin)
    return on_secured_join(bytes, from, now, reply);
  auto m = wire::decode_join(bytes);
  if (!m.ok()) return false;
  if (m->op == wire::JoinMessage::Op::kHello) return on_secured_join(bytes, from, now, reply);
  wire::JoinMessage answer;
  if (!leader_.on_join(*m, from, &answer, now)) return false;
  save();  // the reply leaves as soon as this returns
  wire::encode_join(answer, reply);
  return true;
}

void LeaderNode::step(Time now) {
  now_ = now;
  site_.step(now);
  save();
}

Status LeaderNode::open_state(Time now) {
  now_ = now;
  if (!state_) return Status::ok_status();
  auto records = state_->scan();
  if (!records.ok()) return records.status();
  if (records->empty()) {
    save();
    return Status::ok_status();
  }
  for (const proto::StoredRecord& r : *records) {
    if (r.key != kTrafficKeyKey) continue;
    if (!security_)
      return Status::error(Status::Code::kInvalidArgument,
                           "the state is of a secured session: run the leader with its "
                           "--secret-file");
    // The master key, then the leader's key pair (public, secret); a state of before the pair
    // has the key alone, and goes on with the pair it was given (and saves it).
    if (r.value.size() != wire::kKeyBytes && r.value.size() != 3 * wire::kKeyBytes)
      return Status::error(Status::Code::kMalformed, "the state's session keys are damaged");
    auto at = r.value.begin();
    std::copy(at, at + wire::kKeyBytes, security_->master_key.begin());
    if (r.value.size() == 3 * wire::kKeyBytes) {
      const wire::KxPublicKey given = security_->kx.public_key;
      at += wire::kKeyBytes;
      std::copy(at, at + wire::kKeyBytes, security_->kx.public_key.begin());
      at += wire::kKeyBytes;
      std::copy(at, at + wire::kKeyBytes, security_->kx.secret_key.begin());
      keys_saved_ = true;
      if (given != security_->kx.public_key)
        leader_.report(
            "leader: its state holds another key pair than the one beside its secret file; it "
            "answers joins with the state's, so members that pinned the file's public key "
            "refuse its answers");
    }
    site_.set_master_key(security_->master_key);
  }
  if (Status st = leader_.restore(*records); !st.ok()) return st;
  resumed_ = true;
  site_.set_boot(leader_.boot());
  // The channels first: what the old process had sent keeps its numbers, and whatever the
  // resumed leader sends comes after it. Their peers are members already, or the transport
  // would queue the restored messages for nobody.
  for (const auto& [id, p] : leader_.peers())
    if (id != 0 && p.live) site_.admit(id);
  for (const proto::StoredRecord& r : *records) {
    if ((r.key & kKeyKind) != kChannelKeys || r.key == kTrafficKeyKey) continue;
    SavedChannels ch;
    if (!wire::decode_fields(r.value, &ch).ok()) continue;  // its peer repeats what it sent
    site_.restore_leader_channels(static_cast<SiteId>(r.key & ~kKeyKind), ch.out, ch.in);
  }
  wire::Welcome w;
  for (const auto& [id, p] : leader_.peers()) w.peers.push_back(p);
  for (const auto& [id, rec] : leader_.streams()) w.streams.push_back(rec);
  w.settled_below = leader_.settled_below();
  site_.send_from_leader(0, w);
  // Moves to site 0 under way at the crash are settled without it (resume): the arrivals the
  // sources sent its old process must not install a second copy here.
  site_.refuse_arrivals(leader_.max_epochs());
  leader_.resume(now);
  save();
  return Status::ok_status();
}

void LeaderNode::save() {
  if (!state_ || (!leader_.has_changes() && (keys_saved_ || !security_))) return;
  std::vector<proto::StoredRecord> records;
  std::vector<SiteId> peers;
  leader_.take_changes(&records, &peers);
  if (security_ && !keys_saved_) {
    proto::StoredRecord r;
    r.key = kTrafficKeyKey;
    r.epoch = leader_.boot();
    r.version = 1;
    const JoinSecurity& s = *security_;
    r.value.assign(s.master_key.begin(), s.master_key.end());
    r.value.insert(r.value.end(), s.kx.public_key.begin(), s.kx.public_key.end());
    r.value.insert(r.value.end(), s.kx.secret_key.begin(), s.kx.secret_key.end());
    records.push_back(std::move(r));
    keys_saved_ = true;
  }
  for (SiteId peer : peers) {
    if (peer == 0) continue;
    if (!leader_.peers().contains(peer)) {  // forgotten: so are its channels
      records.push_back({kChannelKeys | peer, leader_.boot(), ++channel_writes_, {}});
      continue;
    }
    SavedChannels ch;
    site_.leader_channels(peer, &ch.out, &ch.in);
    proto::StoredRecord r;
    r.key = kChannelKeys | peer;
    r.epoch = leader_.boot();
    r.version = ++channel_writes_;
    wire::encode_fields(ch, &r.value);
    records.push_back(std::move(r));
  }
  if (Status st = state_->put(records); !st.ok())
    leader_.report(
        "leader: its state could not be saved (a restart would lose the latest "
        "changes): " +
        st.message());
}

Time LeaderNode::next_timeout() const {
  return std::min(site_.next_timeout(), leader_.next_timeout());
}

void LeaderNode::on_timeout(Time now) {
  now_ = now;
  site_.on_timeout(now);
  leader_.on_timeout(now);
  save();
}

std::optional<std::string> LeaderNode::peer_address(SiteId site) const {
  auto it = leader_.peers().find(site);
  if (it == leader_.peers().end() || it->second.address.empty()) return std::nullopt;
  return it->second.address;
}

}  // namespace mstream::leader
