// The hostile member of `mstream sim --hostile` (SessionScenario::hostile). It is a member:
// it joined with the session's secret and holds the keys of its own pairs, so sealing stops
// none of what it sends in its own name. Its core is honest (it acks, answers and stays idle
// like any site); its lies go out through a lying network card, in its own name, and, in a
// secured seed, some in another member's name, sealed under a key it has (kSealAsOther): the
// receiver opens a datagram of X only with its key with X, so those must all be refused
// as forged (the driver checks each one: forgery_refused). Each lie is
// well-formed and aimed where, believed, it would do harm: releasing messages a receiver
// never had, refusing messages for their receiver, commanding a site as the leader would,
// confusing numberings and boots, or admitting a joiner twice. The checkers then prove that
// none of it reached an honest stream: every invariant holds as in any other run, and the
// honest nodes' transport statistics count what they dropped (impostor_frames,
// wrong_site_frames, bogus_acks, stale_numbering, stale_boot_in, rejected_frames).

#include <algorithm>

#include "sim/session_driver.hpp"
#include "site/ids.hpp"
#include "wire/control.hpp"
#include "wire/crypto.hpp"

namespace mstream::sim {

const char* lie_name(Lie kind) {
  switch (kind) {
    case Lie::kConsumedForeign:
      return "consumed_foreign";
    case Lie::kRejectForeign:
      return "reject_foreign";
    case Lie::kImpersonate:
      return "impersonate";
    case Lie::kAckUnsent:
      return "ack_unsent";
    case Lie::kWrongOrigin:
      return "wrong_origin";
    case Lie::kNoStream:
      return "no_stream";
    case Lie::kPathAckUnsent:
      return "path_ack_unsent";
    case Lie::kStaleBoot:
      return "stale_boot";
    case Lie::kStaleJoin:
      return "stale_join";
    case Lie::kArriveForeign:
      return "arrive_foreign";
    case Lie::kControlForeign:
      return "control_foreign";
    case Lie::kControlRule:
      return "control_rule";
    case Lie::kSealAsOther:
      return "seal_as_other";
    case Lie::kUnopened:
      return "unopened";
    case Lie::kImpersonateUser:
      return "impersonate_user";
    case Lie::kCount:
      break;
  }
  return "?";
}

}  // namespace mstream::sim

namespace mstream::sim::detail {
namespace {

constexpr std::size_t kSeenFrames = 256;
constexpr std::size_t kJoinsKept = 32;
// Most of what it sends carries a lie, but not so many that its own honest traffic (the acks
// its core owes) is crowded out of the mtu.
constexpr double kLieChance = 0.9;
constexpr int kMostLiesPerDatagram = 3;
constexpr double kOwnDatagramChance = 0.5;

}  // namespace

void SessionDriver::observe_for_lies() {
  const wire::DatagramHeader& h = decoded_.header;
  for (const wire::Frame& f : decoded_.frames) {
    if (f.type != wire::FrameType::kData && f.type != wire::FrameType::kFragment) continue;
    Seen s{{f.from_stream, f.to_stream}, f.seq, f.origin, h.src_site, h.dst_site};
    if (seen_.size() < kSeenFrames) {
      seen_.push_back(s);
    } else {
      seen_[seen_next_] = s;
      seen_next_ = (seen_next_ + 1) % kSeenFrames;
    }
  }
}

void SessionDriver::record_join(std::uint32_t n, const wire::Bytes& bytes) {
  if (!sc_.hostile) return;
  SeenJoin j{bytes, n, nodes_[n].restarts, nodes_[0].restarts};
  if (joins_seen_.size() < kJoinsKept) {
    joins_seen_.push_back(std::move(j));
  } else {
    joins_seen_[hostile_rng_.below(kJoinsKept)] = std::move(j);
  }
}

// An unsecured session trusts the network: a join request is believed from wherever it
// comes, so a replay that beats its joiner's own request, or reaches a later leader process
// (which has no record of it), would be taken for a new joiner there. Those seeds replay only
// what cannot be: a request of a process that was admitted, to the leader process it joined.
// A secured leader's cookies, bound to the joiner's address, stop every replay.
const SessionDriver::SeenJoin* SessionDriver::pick_stale_join() {
  std::vector<const SeenJoin*> usable;
  for (const SeenJoin& j : joins_seen_) {
    const NodeRun& nr = nodes_[j.node];
    if (sc_.secured || (nr.node && !nr.joiner && nr.restarts == j.process &&
                        nodes_[0].restarts == j.leader_process))
      usable.push_back(&j);
  }
  return usable.empty() ? nullptr : usable[hostile_rng_.below(usable.size())];
}

wire::Bytes SessionDriver::lie(std::uint32_t n, std::uint32_t to, const proto::OutDatagram& out) {
  const wire::DatagramHeader h = decoded_.header;
  const SiteId self = nodes_[n].id;
  const std::optional<wire::Key> key = nodes_[n].core->transport().pair_key(h.dst_site);

  if (hostile_rng_.chance(kOwnDatagramChance)) send_lying_datagram(n, to, h);
  if (key && h.packet_number != 0 && hostile_rng_.chance(0.1)) send_as_other(n, to, h);
  // A replayed join goes to the leader from here: an answer to it must not admit anyone twice
  // or move anyone's address here.
  if (to == 0 && hostile_rng_.chance(0.1)) {
    if (const SeenJoin* j = pick_stale_join()) {
      ++sum_.lies[static_cast<std::size_t>(Lie::kStaleJoin)];
      const wire::Bytes bytes = j->bytes;
      transmit(n, 0, bytes);
    }
  }
  // Control messages in its own name, about others' streams, through its core's own control
  // channel (numbered as it numbers them): they leave with a later datagram.
  if (hostile_rng_.chance(0.2) && !sc_.streams.empty()) {
    const auto victim = ids_.find(sc_.streams[hostile_rng_.below(sc_.streams.size())].name);
    if (victim != ids_.end()) {
      const std::uint64_t epoch = 1 + hostile_rng_.below(1u << 20);
      const std::uint64_t pick = hostile_rng_.below(3);
      if (h.dst_site != 0 || pick == 0) {
        // "The stream moves here, from me": a copy of it, with no state, at a newer epoch.
        wire::Arrive a;
        a.stream.id = victim->second;
        a.stream.name = "/lie";
        a.stream.epoch = epoch;
        a.stream.site = h.dst_site;
        ++sum_.lies[static_cast<std::size_t>(Lie::kArriveForeign)];
        count_control_lie(a);
        nodes_[n].site->send_raw_control(h.dst_site, site::control_stream(h.dst_site), a);
      } else if (pick == 1) {
        ++sum_.lies[static_cast<std::size_t>(Lie::kControlForeign)];
        const wire::Installed lie{victim->second, epoch, 0, 0, {}, {}};
        count_control_lie(lie);
        nodes_[n].site->send_raw_control(0, site::kLeaderStream, lie);
      } else {
        ++sum_.lies[static_cast<std::size_t>(Lie::kControlForeign)];
        const wire::Settled lie{victim->second, epoch, 1};
        count_control_lie(lie);
        nodes_[n].site->send_raw_control(0, site::kLeaderStream, lie);
      }
    }
  }
  if (hostile_rng_.chance(0.3)) break_a_sender_rule(n, h.dst_site);
  // Frames are taken only in a numbered datagram (wire/datagram.hpp).
  if (h.packet_number == 0 || !hostile_rng_.chance(kLieChance)) return out.bytes;

  // What it knows of the receiver's channels, by what the lie needs.
  std::vector<const Seen*> sent_by_them;     // a channel the receiver sends to a third site
  std::vector<const Seen*> sent_to_us;       // a channel the receiver sends to us
  std::vector<const Seen*> control_to_them;  // another's control stream to the receiver
  std::vector<const Seen*> user_to_them;     // another site's user stream to the receiver
  for (const Seen& s : seen_) {
    if (s.from_site == h.dst_site && s.to_site != self) sent_by_them.push_back(&s);
    if (s.from_site == h.dst_site && s.to_site == self) sent_to_us.push_back(&s);
    if (s.to_site == h.dst_site && site::is_control(s.key.from) &&
        site::control_site(s.key.from) != self)
      control_to_them.push_back(&s);
    if (s.to_site == h.dst_site && !site::is_control(s.key.from) && s.from_site != self)
      user_to_them.push_back(&s);
  }
  auto any = [this](const std::vector<const Seen*>& v) {
    return v.empty() ? nullptr : v[hostile_rng_.below(v.size())];
  };

  wire::Bytes plain = key ? opened_ : out.bytes;
  const std::size_t room = sc_.transport.path.mtu - (key ? wire::kSealOverhead : 0);
  bool lied = false;
  const int count = 1 + static_cast<int>(hostile_rng_.below(kMostLiesPerDatagram));
  for (int i = 0; i < count; ++i) {
    const std::size_t before = plain.size();
    // The first six kinds, kImpersonateUser and kUnopened.
    const std::uint64_t pick = hostile_rng_.below(8);
    const Lie kind = pick == 6   ? Lie::kImpersonateUser
                     : pick == 7 ? Lie::kUnopened
                                 : static_cast<Lie>(pick);
    switch (kind) {
      case Lie::kConsumedForeign:
        if (const Seen* s = any(sent_by_them))
          wire::encode_consumed(s->key.from, s->key.to, s->seq, &plain, s->origin);
        break;
      case Lie::kRejectForeign:
        if (const Seen* s = any(sent_by_them))
          wire::encode_reject(s->key.from, s->key.to, s->seq,
                              hostile_rng_.chance(0.5) ? wire::RejectReason::kNoSuchStream
                                                       : wire::RejectReason::kTooLarge,
                              &plain);
        break;
      case Lie::kImpersonate:
        if (const Seen* s = any(control_to_them)) {
          // The next message of that control channel, as its real sender would number it: a
          // command to shut down, or to destroy a stream.
          wire::Bytes command;
          const auto victim = ids_.find(sc_.streams[hostile_rng_.below(sc_.streams.size())].name);
          if (hostile_rng_.chance(0.5) || victim == ids_.end()) {
            wire::encode_control(wire::Shutdown{0, "the hostile member"}, &command);
          } else {
            wire::encode_control(wire::DestroyStream{victim->second}, &command);
          }
          wire::encode_data(s->key.from, s->key.to, s->seq + 1, command, &plain,
                            wire::SenderTag{0, s->origin, s->seq});
        }
        break;
      case Lie::kImpersonateUser:
        if (const Seen* s = any(user_to_them)) {
          // The next message of a user stream's channel, as its host would number it (a
          // newer incarnation, so that believed, it would also take the channel's acks here).
          static constexpr std::uint8_t kForged[] = {'f', 'o', 'r', 'g', 'e', 'd'};
          wire::encode_data(s->key.from, s->key.to, s->seq + 1, kForged, &plain,
                            wire::SenderTag{1u << 20, s->origin, s->seq});
        }
        break;
      case Lie::kAckUnsent:
        if (const Seen* s = any(sent_to_us))
          wire::encode_consumed(s->key.from, s->key.to, s->seq + 1000 + hostile_rng_.below(1000),
                                &plain, s->origin);
        break;
      case Lie::kWrongOrigin:
        if (const Seen* s = any(sent_to_us))
          wire::encode_consumed(s->key.from, s->key.to, s->seq, &plain, s->origin + 1);
        break;
      case Lie::kUnopened:
        // From its own control stream (which is its to speak for) to a stream at the
        // receiver: taken, it would be a message nobody appended.
        for (const auto& [name, id] : ids_) {
          const wire::StreamRecord* r = nodes_[n].core->directory().find(id);
          if (!r || r->site != h.dst_site) continue;
          wire::encode_data(site::control_stream(self), id, 1 + hostile_rng_.below(4),
                            wire::ByteView(reinterpret_cast<const std::uint8_t*>("lie"), 3),
                            &plain);
          break;
        }
        break;
      case Lie::kNoStream:
        // From a stream id nobody has to one nobody has: refused, and nothing kept for it.
        wire::encode_data((1ull << 40) + hostile_rng_.below(1000),
                          (1ull << 41) + hostile_rng_.below(1000), 1,
                          wire::ByteView(reinterpret_cast<const std::uint8_t*>("lie"), 3), &plain);
        break;
      default:
        break;
    }
    if (plain.size() > room) {
      plain.resize(before);  // it does not fit: not this one
      break;
    }
    if (plain.size() == before) continue;
    ++sum_.lies[static_cast<std::size_t>(kind)];
    trace("node " + std::to_string(n) + " lies to site " + std::to_string(h.dst_site) + ": " +
          lie_name(kind));
    lied = true;
  }
  if (!lied) return out.bytes;
  wire::seal(&plain, key ? wire::Integrity::kSealed : wire::Integrity::kChecksum);
  if (!key) return plain;
  // Under the counter its core chose for this datagram, which is never sent as it was.
  wire::SealedHeader sh;
  (void)wire::peek_sealed(out.bytes, &sh);
  wire::Bytes sealed;
  wire::seal_datagram(*key, sh, plain, &sealed);
  return sealed;
}

// A control message of any type, each field aimed where, believed, it would do harm: the
// victim stream moved here or destroyed, its agents replaced, a site shut down or expelled,
// a checkpoint at the victim's epoch, an answer to a request never made. It goes, in its
// own name, to a site (every type is refused there: a site takes commands only from the
// leader, answers only from whom it asked, reports only from the stream's host) or to the
// leader (all but the member requests it may make).
void SessionDriver::break_a_sender_rule(std::uint32_t n, SiteId dst) {
  if (sc_.streams.empty()) return;
  const SiteId self = nodes_[n].id;
  const auto victim = ids_.find(sc_.streams[hostile_rng_.below(sc_.streams.size())].name);
  if (victim == ids_.end()) return;
  const wire::StreamRecord* known = nodes_[n].core->directory().find(victim->second);
  if (!known || known->site == wire::kNoSite) return;
  const wire::StreamRecord rec = *known;
  const std::size_t type = hostile_rng_.below(wire::kControlTypes);
  wire::ControlMessage m = wire::control_of_type(type);
  std::visit(
      [&](auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (requires { v.stream.id; }) {
          v.stream = rec;
          if constexpr (!std::is_same_v<T, wire::Install>) v.stream.site = self;
        } else if constexpr (requires { v.stream = std::uint64_t{}; }) {
          v.stream = rec.id;
        }
        // The stream's epoch, or the next: a move in flight's, which an answer would name.
        if constexpr (requires { v.epoch = std::uint64_t{}; })
          v.epoch = rec.epoch + hostile_rng_.below(2);
        if constexpr (requires { v.req = std::uint64_t{}; }) v.req = hostile_rng_.below(1u << 16);
        if constexpr (requires { v.target = SiteId{}; }) v.target = self;
        if constexpr (requires { v.source = SiteId{}; }) v.source = self;
        if constexpr (std::is_same_v<T, wire::Checkpoint>) {
          v.state.stream = rec;
          v.version = 1ull << 40;  // newer than any the host will send at this epoch
        }
        if constexpr (std::is_same_v<T, wire::Checkpointed>) v.version = 1 + hostile_rng_.below(8);
        if constexpr (std::is_same_v<T, wire::Settled>) v.present = 1;
        if constexpr (std::is_same_v<T, wire::Shutdown>) v.reason = "the hostile member";
        if constexpr (std::is_same_v<T, wire::PeerUpdate>) {
          v.peer.site = rec.site;  // the victim's site, failed
          v.peer.live = 0;
        }
        if constexpr (std::is_same_v<T, wire::ErrorReport>) {
          v.text = "a forged handler error";
          v.told = nodes_[sc_.shell_node()].id;
        }
        if constexpr (std::is_same_v<T, wire::Code>) v.body = "proc lie args {}";
      },
      m);
  const wire::Sender rule = wire::sender_rule(m);
  const bool to_leader =
      rule != wire::Sender::kMember && rule != wire::Sender::kSite && hostile_rng_.chance(0.5);
  SiteId to = dst;
  StreamId to_stream = site::control_stream(dst);
  if (to_leader) {
    to = 0;
    to_stream = site::kLeaderStream;
  } else if (std::holds_alternative<wire::SyncResult>(m) ||
             std::holds_alternative<wire::ErrorReport>(m)) {
    to = nodes_[sc_.shell_node()].id;  // what a shell takes from a stream's host
    to_stream = site::control_stream(to);
  } else if (std::holds_alternative<wire::Checkpoint>(m)) {
    to = rec.failure_manager;
    to_stream = site::control_stream(to);
  }
  if (to == self) return;
  ++sum_.lies[static_cast<std::size_t>(Lie::kControlRule)];
  count_control_lie(m);
  nodes_[n].site->send_raw_control(to, to_stream, m);
}

void SessionDriver::send_lying_datagram(std::uint32_t n, std::uint32_t to,
                                        const wire::DatagramHeader& h) {
  // Unnumbered, so that its receiver acks nothing its core did not send.
  wire::DatagramHeader lie = h;
  lie.packet_number = 0;
  Lie kind = Lie::kPathAckUnsent;
  wire::AckFrame ack;
  if (hostile_rng_.chance(0.5)) {
    // Everything up to far beyond what the receiver ever sent us.
    ack.cumulative = (1ull << 40) + hostile_rng_.below(1u << 20);
  } else {
    kind = Lie::kStaleBoot;
    lie.dst_boot = h.dst_boot + 1 + static_cast<std::uint32_t>(hostile_rng_.below(3));
    ack.cumulative = hostile_rng_.below(1000);
  }
  wire::Bytes plain;
  wire::encode_header(lie, &plain);
  wire::encode_ack(ack, &plain);
  ++sum_.lies[static_cast<std::size_t>(kind)];
  const std::optional<wire::Key> key = nodes_[n].core->transport().pair_key(h.dst_site);
  wire::seal(&plain, key ? wire::Integrity::kSealed : wire::Integrity::kChecksum);
  if (!key) {
    transmit(n, to, plain);
    return;
  }
  wire::Bytes sealed;
  wire::seal_datagram(*key, {h.src_site, h.src_boot, wire::kKeepaliveCounters + ++hostile_counter_},
                      plain, &sealed);
  transmit(n, to, sealed);
}

// What its core just sent to `to` (decoded_: numbered, so that its frames would be taken),
// as if another member X had sent it: X's id in both headers, sealed under its own key with
// the receiver or its key with X. The receiver opens what says it is from X only with its
// key with X, which the hostile member does not have.
void SessionDriver::send_as_other(std::uint32_t n, std::uint32_t to,
                                  const wire::DatagramHeader& h) {
  const SiteId self = nodes_[n].id;
  std::vector<SiteId> others;
  for (const NodeRun& other : nodes_)
    if (other.node && other.id != self && other.id != h.dst_site) others.push_back(other.id);
  if (others.empty()) return;
  const SiteId x = others[hostile_rng_.below(others.size())];
  const bool with_receiver = hostile_rng_.chance(0.5);
  const std::optional<wire::Key> key =
      nodes_[n].core->transport().pair_key(with_receiver ? h.dst_site : x);
  if (!key) return;
  wire::DecodedDatagram as_other = decoded_;
  as_other.header.src_site = x;
  as_other.header.src_boot = 0;
  wire::Bytes plain;
  wire::encode_header(as_other.header, &plain);
  if (as_other.has_ack) wire::encode_ack(as_other.ack, &plain);
  for (const wire::Frame& f : as_other.frames) {
    const wire::SenderTag tag{f.incarnation, f.origin, f.floor};
    if (f.type == wire::FrameType::kData)
      wire::encode_data(f.from_stream, f.to_stream, f.seq, f.payload, &plain, tag);
    else if (f.type == wire::FrameType::kFragment)
      wire::encode_fragment(f.from_stream, f.to_stream, f.seq, f.total_len, f.offset, f.payload,
                            &plain, tag);
    else if (f.type == wire::FrameType::kConsumed)
      wire::encode_consumed(f.from_stream, f.to_stream, f.seq, &plain, f.origin);
  }
  wire::seal(&plain, wire::Integrity::kSealed);
  wire::Bytes sealed;
  wire::seal_datagram(*key, {x, 0, wire::kKeepaliveCounters + ++hostile_counter_}, plain, &sealed);
  ++sum_.lies[static_cast<std::size_t>(Lie::kSealAsOther)];
  trace("node " + std::to_string(n) + " lies to site " + std::to_string(h.dst_site) +
        ": seal_as_other (as site " + std::to_string(x) + ")");
  if (forgeries_.size() > 4096) forgeries_.clear();
  forgeries_.insert(hash_bytes(sealed));
  transmit(n, to, sealed);
}

}  // namespace mstream::sim::detail
