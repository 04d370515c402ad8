#include "proto/transport.hpp"

#include <algorithm>
#include <limits>
#include <string>

namespace mstream::proto {
namespace {

TransportConfig sanitize(TransportConfig c) {
  // Below these, a datagram cannot carry a header, an ACK and a useful fragment.
  c.path.mtu = std::max<std::size_t>(c.path.mtu, 256);
  c.path.max_window = std::max<std::uint32_t>(c.path.max_window, 4);
  c.path.min_cwnd = std::max<std::uint32_t>(c.path.min_cwnd, 1);
  c.path.min_rto = std::max<Time>(c.path.min_rto, kMicrosecond);
  c.path.max_rto = std::max(c.path.max_rto, c.path.min_rto);
  c.channel.max_unconsumed_messages = std::max<std::uint32_t>(c.channel.max_unconsumed_messages, 1);
  c.channel.max_message_bytes =
      std::min<std::size_t>(c.channel.max_message_bytes, wire::kMaxMessageBytes);
  return c;
}

}  // namespace

Transport::Transport(SiteId self, TransportConfig config)
    : self_(self),
      config_(sanitize(config)),
      consumed_burst_(std::max<std::uint32_t>(1, config_.channel.max_unconsumed_messages / 4)),
      keys_(self, config_.aes && wire::aegis_available()) {}

void Transport::set_master_key(const wire::Key& master) {
  keys_.set_master(master);
  secured_ = true;
}

void Transport::set_pair_key(SiteId peer, const wire::Key& key) {
  keys_.set(peer, key);
  secured_ = true;
}

PathConfig Transport::path_config() const {
  PathConfig c = config_.path;
  // The seal goes around what the path builds; sanitize() left far more room than this.
  if (secured_) c.mtu -= wire::kSealOverhead;
  return c;
}

Status Transport::open_sealed(wire::ByteView bytes) {
  Status st = keys_.open(bytes, &sealed_header_, &opened_);
  if (st.ok()) return st;
  if (st.code() == Status::Code::kNotFound)
    // A new member whose key the leader's PeerUpdate has not brought yet (it repeats what it
    // sent), or one that left or never was: as from a site not admitted, not a forgery.
    ++stats_.unknown_site_in;
  else if (st.code() == Status::Code::kPermissionDenied)
    ++stats_.forged_in;
  else
    ++stats_.unsealed_in;
  return st;
}

Status Transport::open_stream(StreamId id) {
  if (id == 0) return Status::error(Status::Code::kInvalidArgument, "stream id 0 is reserved");
  if (!open_.insert(id).second)
    return Status::error(Status::Code::kAlreadyExists,
                         "stream " + std::to_string(id) + " is already open");
  return Status::ok_status();
}

Status Transport::close_stream(StreamId id) {
  if (open_.erase(id) == 0)
    return Status::error(Status::Code::kNotFound, "no such stream " + std::to_string(id));
  // Only the channels into this stream: a move's cost must not grow with the number of
  // channels at the site (DESIGN.md guarantee 4).
  auto idx = recv_index_.find(id);
  if (idx != recv_index_.end()) {
    for (StreamId from : idx->second) {
      recv_.erase(ChannelKey{from, id});
      count_recv_from(from, -1);
    }
    recv_index_.erase(idx);
  }
  std::erase_if(deliveries_, [id](const Delivery& d) { return d.key.to == id; });
  return Status::ok_status();
}

bool Transport::is_open(StreamId id) const { return open_.contains(id); }

void Transport::index_add(ChannelIndex& index, ChannelKey key) {
  index[key.to].push_back(key.from);
}

void Transport::recv_added(ChannelKey key) {
  index_add(recv_index_, key);
  count_recv_from(key.from, 1);
}

void Transport::recv_removed(ChannelKey key) {
  index_remove(recv_index_, key);
  count_recv_from(key.from, -1);
}

void Transport::count_recv_from(StreamId from, int delta) {
  auto [it, fresh] = recv_from_.try_emplace(from, 0);
  it->second = static_cast<std::uint32_t>(static_cast<int>(it->second) + delta);
  if (it->second == 0) recv_from_.erase(it);
}

void Transport::forget_sender(StreamId from) {
  std::vector<ChannelKey> keys;
  for (const auto& [key, ch] : recv_)
    if (key.from == from) keys.push_back(key);
  for (ChannelKey key : keys) {
    recv_.erase(key);
    recv_removed(key);
  }
  std::erase_if(deliveries_, [from](const Delivery& d) { return d.key.from == from; });
}

void Transport::index_remove(ChannelIndex& index, ChannelKey key) {
  auto it = index.find(key.to);
  if (it == index.end()) return;
  std::erase(it->second, key.from);
  if (it->second.empty()) index.erase(it);
}

Path& Transport::path_to(SiteId site) {
  auto it = paths_.find(site);
  if (it == paths_.end()) {
    it = paths_.emplace(site, std::make_unique<Path>(self_, site, path_config())).first;
    it->second->boot = boot_;
    it->second->integrity = integrity();
  }
  return *it->second;
}

void Transport::set_boot(std::uint32_t boot) {
  boot_ = boot;
  for (auto& [site, p] : paths_) p->boot = boot;
}

Path& Transport::reset_path(SiteId site, std::uint32_t peer_boot, Time now) {
  auto old = paths_.find(site);
  PathConfig cfg = old != paths_.end() ? old->second->config() : path_config();
  auto fresh = std::make_unique<Path>(self_, site, cfg);
  fresh->boot = boot_;
  fresh->integrity = integrity();
  fresh->peer_boot = peer_boot;
  fresh->last_heard = now;
  Path& p = *fresh;
  paths_[site] = std::move(fresh);
  ++stats_.paths_restarted;
  // Datagrams the old path had out may never have arrived, and what arrived there the remote
  // may have lost with its process: its durable state says which messages it consumed, and
  // the channel layer drops what it already has.
  for (auto& [key, ch] : send_) {
    if (ch.dest != site) continue;
    ch.queued = false;
    ch.resend_unconsumed();
    queue_data(ch, key);
  }
  for (auto& [key, ch] : recv_) {
    if (ch.reply_site != site) continue;
    ch.ack_queued = false;
    if (ch.consumed_up_to() > 0) queue_consumed(ch, key, now);
  }
  return p;
}

void Transport::expel_site(SiteId site) {
  admitted_.erase(site);
  paths_.erase(site);
  // Its keys go with it: nothing more is sealed for it or taken from it.
  keys_.drop(site);
  keepalive_.erase(site);
  // What was queued on the path is gone with it; a later relocation queues it again.
  for (auto& [key, ch] : send_)
    if (ch.dest == site) ch.queued = false;
  for (auto& [key, ch] : recv_)
    if (ch.reply_site == site) ch.ack_queued = false;
}

void Transport::set_keepalive(SiteId site, Time interval) {
  if (interval <= 0 || !reachable(site)) {
    keepalive_.erase(site);
    return;
  }
  keepalive_[site] = interval;
  (void)path_to(site);
}

Time Transport::last_heard(SiteId site) const {
  auto it = paths_.find(site);
  return it == paths_.end() ? -1 : it->second->last_heard;
}

void Transport::set_sender_origin(StreamId from, std::uint32_t origin) {
  if (origin == 0) {
    sender_origin_.erase(from);
  } else {
    sender_origin_[from] = origin;
  }
}

const Path* Transport::path(SiteId site) const {
  auto it = paths_.find(site);
  return it == paths_.end() ? nullptr : it->second.get();
}

const SendChannel* Transport::send_channel(ChannelKey key) const {
  auto it = send_.find(key);
  return it == send_.end() ? nullptr : &it->second;
}

const RecvChannel* Transport::recv_channel(ChannelKey key) const {
  auto it = recv_.find(key);
  return it == recv_.end() ? nullptr : &it->second;
}

bool Transport::idle() const {
  for (const auto& [key, ch] : send_)
    if (ch.unconsumed_count() > 0) return false;
  // A consumption ack still owed is work too: the sender waits for it.
  for (const auto& [site, p] : paths_)
    if (p->outstanding() > 0 || !p->control.empty()) return false;
  return true;
}

// ---------------------------------------------------------------------------------------
// Sending side

Result<Seq> Transport::append(StreamId from, StreamId to, SiteId to_site, wire::ByteView payload,
                              Time /*now*/) {
  if (from == 0 || to == 0)
    return Status::error(Status::Code::kInvalidArgument, "stream id 0 is reserved");
  ChannelKey key{from, to};
  auto [it, inserted] = send_.try_emplace(key);
  SendChannel& ch = it->second;
  if (inserted) {
    ch.dest = to_site;
    if (!sender_origin_.empty()) {
      auto o = sender_origin_.find(from);
      if (o != sender_origin_.end()) ch.origin = o->second;
    }
  }
  Status st = ch.check_append(payload.size(), config_.channel);
  if (!st.ok()) {
    if (inserted) send_.erase(it);
    return st;
  }
  if (inserted) index_add(send_index_, key);
  Seq seq = ch.push(wire::Bytes(payload.begin(), payload.end()));
  if (ch.dest != to_site) {
    // The caller knows a newer location than the channel: everything unconsumed goes there.
    relocate_receiver(to, to_site);
  } else {
    queue_data(ch, key);
  }
  return seq;
}

void Transport::queue_data(SendChannel& ch, ChannelKey key) {
  if (!ch.has_unsent()) return;
  if (ch.dest == self_) {
    deliver_local(ch, key);
    return;
  }
  if (ch.queued || !reachable(ch.dest)) return;  // an expelled site's: wait for relocation
  Path& p = path_to(ch.dest);
  if (p.data_ready.empty() && config_.path.send_in_ready_order) first_ready_.push_back(ch.dest);
  p.data_ready.push_back(key);
  ch.queued = true;
}

void Transport::deliver_local(SendChannel& ch, ChannelKey key) {
  while (ch.has_unsent()) {
    if (!is_open(key.to)) {
      rejected_.push_back(Rejected{key, ch.unsent_seq(), self_, wire::RejectReason::kNoSuchStream});
      // Leave it unsent: a later relocation re-sends it.
      return;
    }
    auto [it, inserted] = recv_.try_emplace(key);
    if (inserted) recv_added(key);
    RecvChannel& rc = it->second;
    // The sender is here and live: its acks stay here, and copies its earlier incarnations
    // sent from other sites must not take them away.
    if (!rc.on_sender(ch.origin, ch.consumed_up_to())) {
      ++stats_.stale_numbering;  // cannot happen: a local sender has one numbering
      ch.advance_unsent(ch.unsent_message().size());
      continue;
    }
    (void)rc.accept_incarnation(ch.incarnation);
    rc.reply_site = self_;
    const wire::Bytes& m = ch.unsent_message();
    auto outcome = rc.on_fragment(ch.unsent_seq(), m.size(), 0, m, config_.channel);
    if (outcome == RecvChannel::Outcome::kDuplicate) ++stats_.duplicate_messages;
    ch.advance_unsent(m.size());
    flush_ready(rc, key);
  }
  // A sender that moved here may carry copies of messages consumed before it came (their
  // ack went to the site it left): they are duplicates now, and released at once.
  auto it = recv_.find(key);
  if (it != recv_.end() && it->second.consumed_up_to() > ch.consumed_up_to())
    release(ch, key, it->second.consumed_up_to());
}

void Transport::relocate_receiver(StreamId to, SiteId new_site) {
  auto idx = send_index_.find(to);
  if (idx == send_index_.end()) return;
  for (StreamId from : idx->second) {
    ChannelKey key{from, to};
    auto it = send_.find(key);
    if (it == send_.end()) continue;
    SendChannel& ch = it->second;
    ch.dest = new_site;
    ch.queued = false;  // a stale entry on the old path's list is skipped (dest differs)
    ch.resend_unconsumed();
    queue_data(ch, key);
  }
}

void Transport::release(SendChannel& ch, ChannelKey key, Seq up_to) {
  bool bogus = false;
  std::size_t n = ch.release(up_to, &bogus);
  if (bogus) {
    ++stats_.bogus_acks;
    if (up_to >= ch.next_seq() && acked_ahead_.size() < kMaxAckedAhead)
      acked_ahead_.push_back(AckedAhead{key, up_to});
    return;
  }
  if (n == 0) return;
  stats_.messages_released += n;
  released_.push_back(Released{key, ch.consumed_up_to()});
}

// ---------------------------------------------------------------------------------------
// Receiving side

Status Transport::on_datagram(wire::ByteView bytes, Time now) {
  ++stats_.datagrams_in;
  if (secured_) {
    if (Status st = open_sealed(bytes); !st.ok()) return st;
    bytes = opened_;
  }
  // Secured, `bytes` authenticated as they were opened: their checksum is not checked.
  Status st = wire::decode_datagram(bytes, &decoded_, integrity());
  if (!st.ok()) {
    ++stats_.malformed_in;
    return st;
  }
  const wire::DatagramHeader& h = decoded_.header;
  if (h.dst_site != self_ || h.src_site == self_) {
    ++stats_.misaddressed_in;
    return Status::error(Status::Code::kInvalidArgument,
                         "datagram for site " + std::to_string(h.dst_site) + " from site " +
                             std::to_string(h.src_site) + " reached site " + std::to_string(self_));
  }
  if (h.packet_number == 0 && !decoded_.frames.empty()) {
    // Only acknowledged datagrams may carry frames: an unnumbered one could be lost unseen.
    ++stats_.malformed_in;
    return Status::error(Status::Code::kMalformed, "frames in an unnumbered datagram");
  }
  if (membership_ && !admitted_.contains(h.src_site)) {
    ++stats_.unknown_site_in;
    return Status::error(
        Status::Code::kNotFound,
        "datagram from site " + std::to_string(h.src_site) + ", not a member of the session");
  }
  if (!paths_.contains(h.src_site) && paths_.size() >= kMaxPaths) {
    ++stats_.paths_refused;
    return Status::error(Status::Code::kUnavailable, "too many sites");
  }
  if (secured_) {
    // Opened under the key of the pair with the site the sealed header names; the datagram
    // inside must name the same.
    if (h.src_site != sealed_header_.src_site || h.src_boot != sealed_header_.src_boot) {
      ++stats_.malformed_in;
      return Status::error(Status::Code::kMalformed, "sealed datagram: its header lies");
    }
    if (!replay_[h.src_site].accept(h.src_boot, sealed_header_.counter)) {
      ++stats_.replayed_in;
      return Status::error(Status::Code::kAlreadyExists, "a replayed datagram");
    }
  }
  Path* path = &path_to(h.src_site);
  // Even a stale datagram says its sender is alive: a peer that has not yet heard of our new
  // boot must not be declared failed for it.
  path->last_heard = now;
  if (h.dst_boot != boot_ || h.src_boot < path->peer_boot) {
    ++stats_.stale_boot_in;
    return Status::ok_status();
  }
  if (h.src_boot > path->peer_boot) path = &reset_path(h.src_site, h.src_boot, now);
  Path& p = *path;
  // What the sender's process opens, as its datagrams say (a restarted leader may run on a
  // machine without AES: its path is a new one).
  if (secured_) p.peer_opens_aegis = sealed_header_.kind != wire::kKindSealed;
  if (decoded_.has_ack && !p.on_ack(decoded_.ack, now)) ++stats_.bogus_acks;
  if (h.packet_number == 0) return Status::ok_status();
  switch (p.on_packet(h.packet_number, bytes.size(), now)) {
    case Path::Accept::kDuplicate:
      ++stats_.duplicate_packets;
      return Status::ok_status();
    case Path::Accept::kDiscard:
      ++stats_.dropped_out_of_order;
      return Status::ok_status();
    case Path::Accept::kNew:
      break;
  }
  for (const wire::Frame& f : decoded_.frames) on_frame(h.src_site, f, now);
  return Status::ok_status();
}

void Transport::on_frame(SiteId src, const wire::Frame& f, Time now) {
  switch (f.type) {
    case wire::FrameType::kData:
    case wire::FrameType::kFragment:
      on_data(src, f, now);
      break;
    case wire::FrameType::kConsumed:
      on_consumed(src, f);
      break;
    case wire::FrameType::kReject:
      on_reject(src, f);
      break;
    case wire::FrameType::kAck:
      break;  // decoded separately
  }
}

void Transport::on_data(SiteId src, const wire::Frame& f, Time now) {
  ChannelKey key{f.from_stream, f.to_stream};
  if (pin_ != nullptr) {
    const SiteId pinned = pin_(key.from);
    if (pinned == kByLocation) {
      if (!user_frame_taken(src, f, now)) return;
    } else if (pinned != kNoPin && pinned != src) {
      ++stats_.impostor_frames;
      return;
    }
  }
  if (!is_open(key.to)) {
    ++stats_.rejected_frames;
    queue_reject(src, key, f.seq, wire::RejectReason::kNoSuchStream);
    return;
  }
  auto [it, inserted] = recv_.try_emplace(key);
  if (inserted) {
    if (open_gate_ && !open_gate_(key)) {
      recv_.erase(it);
      ++stats_.unopened_frames;
      queue_reject(src, key, f.seq, wire::RejectReason::kNotOpened);
      return;
    }
    recv_added(key);
  }
  RecvChannel& ch = it->second;
  if (!ch.on_sender(f.origin, f.floor)) {
    ++stats_.stale_numbering;
    if (inserted) {
      recv_.erase(it);
      recv_removed(key);
    }
    return;
  }
  bool whole = f.type == wire::FrameType::kData;
  auto outcome = ch.on_fragment(f.seq, whole ? f.payload.size() : f.total_len, whole ? 0 : f.offset,
                                f.payload, config_.channel);
  // Acks go where the sender now is: to the site of the newest incarnation that sent a copy
  // we accepted or already had. A copy from an older incarnation (a site the sender left;
  // it may arrive after the new site's, in any order) and a refused frame never redirect them.
  bool accepted = outcome == RecvChannel::Outcome::kAccepted;
  if ((accepted || outcome == RecvChannel::Outcome::kDuplicate) &&
      ch.accept_incarnation(f.incarnation))
    set_reply_site(ch, key, src, now);
  switch (outcome) {
    case RecvChannel::Outcome::kAccepted:
      flush_ready(ch, key);
      break;
    case RecvChannel::Outcome::kDuplicate:
      ++stats_.duplicate_messages;
      // The sender repeats what was consumed: our ack may have gone to a site it left, so
      // tell the site this copy came from (the regular ack may be on its way elsewhere; a
      // stale site ignores the answer).
      if (f.seq <= ch.consumed_up_to()) queue_direct_consumed(src, key, ch.consumed_up_to(), now);
      break;
    case RecvChannel::Outcome::kOutOfWindow:
      ++stats_.rejected_frames;
      queue_reject(src, key, f.seq, wire::RejectReason::kOutOfWindow);
      break;
    case RecvChannel::Outcome::kTooLarge:
      ++stats_.rejected_frames;
      queue_reject(src, key, f.seq, wire::RejectReason::kTooLarge);
      break;
    case RecvChannel::Outcome::kInconsistent:
      ++stats_.rejected_frames;
      break;
  }
  if (inserted && ch.buffered_messages() == 0 && ch.next_expected() == 1 &&
      outcome != RecvChannel::Outcome::kAccepted) {
    recv_.erase(it);  // nothing was accepted: do not keep state for a refused sender
    recv_removed(key);
  }
}

void Transport::set_reply_site(RecvChannel& ch, ChannelKey key, SiteId site, Time now) {
  if (ch.reply_site == site) return;
  // The sender moved: an ack still queued for its old site goes to the new one instead (the
  // stale entry is skipped there, see fill_body).
  bool owed = ch.ack_queued;
  ch.ack_queued = false;
  ch.reply_site = site;
  if (owed) queue_consumed(ch, key, now);
}

void Transport::flush_ready(RecvChannel& ch, ChannelKey key) {
  Delivery d;
  d.key = key;
  d.origin = ch.origin();
  while (ch.pop_ready(&d.seq, &d.payload)) {
    ++stats_.messages_delivered;
    deliveries_.push_back(std::move(d));
    d = Delivery{};
    d.key = key;
    d.origin = ch.origin();
  }
}

void Transport::on_consumed(SiteId src, const wire::Frame& f) {
  auto it = send_.find(ChannelKey{f.from_stream, f.to_stream});
  if (it == send_.end()) {
    ++stats_.bogus_acks;
    return;
  }
  // Only the site we send the receiver's messages to speaks for what it consumed: from any
  // other, an ack could release messages it never had. An old site's late confirmation after
  // the receiver moved is dropped too; the new site answers the re-send for it (the
  // duplicates it sees are answered with what it consumed).
  if (src != it->second.dest) {
    ++stats_.misdirected_acks;
    return;
  }
  if (f.origin != it->second.origin) {  // for an earlier life of the sender
    ++stats_.stale_numbering;
    return;
  }
  release(it->second, it->first, f.seq);
}

void Transport::on_reject(SiteId src, const wire::Frame& f) {
  ChannelKey key{f.from_stream, f.to_stream};
  auto it = send_.find(key);
  if (it == send_.end()) return;
  // As for acks: only the site the messages go to may refuse them.
  if (src != it->second.dest) {
    ++stats_.misdirected_acks;
    return;
  }
  rejected_.push_back(Rejected{key, f.seq, src, f.reason});
}

Status Transport::consume(ChannelKey key, Seq up_to, Time now, std::uint32_t origin) {
  auto it = recv_.find(key);
  if (it == recv_.end())
    return Status::error(Status::Code::kNotFound,
                         "no channel " + std::to_string(key.from) + "->" + std::to_string(key.to));
  if (it->second.origin() != origin)
    return Status::error(Status::Code::kUnavailable, "the channel started a new numbering");
  Status st = it->second.consume(up_to);
  if (!st.ok()) return st;
  queue_consumed(it->second, key, now);
  return Status::ok_status();
}

void Transport::queue_consumed(RecvChannel& ch, ChannelKey key, Time now) {
  if (ch.consumed_up_to() == 0) return;
  if (ch.reply_site == self_) {
    auto it = send_.find(key);
    if (it != send_.end() && it->second.origin == ch.origin())
      release(it->second, key, ch.consumed_up_to());
    return;
  }
  if (!reachable(ch.reply_site)) return;
  Path& p = path_to(ch.reply_site);
  // An ack of one message can wait for a datagram to ride on; a sender that streams fills its
  // buffer meanwhile and, once it stops sending, no datagram comes to ride on (a stall of
  // max_ack_delay per buffer). So past a quarter of a channel's bound, consumption acks go at
  // once (PathConfig::prompt_consumption_acks).
  const bool prompt =
      ++p.consumed_unreported >= consumed_burst_ && config_.path.prompt_consumption_acks;
  const Time wait = prompt ? 0 : p.ack_delay(now);
  p.control_deadline = std::min(p.control_deadline, now + wait);
  if (ch.ack_queued) return;
  ch.ack_queued = true;
  p.control.push_back(Path::Control{wire::FrameType::kConsumed, key, 0, {}});
}

void Transport::queue_direct_consumed(SiteId site, ChannelKey key, Seq up_to, Time now) {
  if (site == self_) {
    auto it = send_.find(key);
    auto rc = recv_.find(key);
    if (it != send_.end() && rc != recv_.end() && it->second.origin == rc->second.origin())
      release(it->second, key, up_to);
    return;
  }
  if (!reachable(site)) return;
  Path& p = path_to(site);
  p.control_deadline = std::min(p.control_deadline, now + p.ack_delay(now));
  // The answer is never dropped: the sender's datagrams are acknowledged, so it sends these
  // messages again only if it learns of another move, and would otherwise wait for ever (sim
  // seed 30020469: a sender re-sent its window to a stream's new site, and the answers
  // overflowed the path's queue). One answer per channel, raised to the newest count, bounds
  // the queue by the channels instead.
  for (Path::Control& c : p.control) {
    if (c.type == wire::FrameType::kConsumed && c.seq != 0 && c.key == key) {
      c.seq = std::max(c.seq, up_to);
      ++stats_.consumed_answers_merged;
      return;
    }
  }
  p.control.push_back(Path::Control{wire::FrameType::kConsumed, key, up_to, {}});
}

void Transport::queue_reject(SiteId site, ChannelKey key, Seq seq, wire::RejectReason reason) {
  if (!reachable(site)) return;
  Path& p = path_to(site);
  // A flood of refused frames must not grow the queue without bound.
  if (p.control.size() >= config_.path.max_window) return;
  p.control.push_back(Path::Control{wire::FrameType::kReject, key, seq, reason});
  p.control_deadline = 0;  // a refusal goes at once: the sender may be waiting on it
}

// ---------------------------------------------------------------------------------------
// Output

Time Transport::next_timeout() const {
  Time t = pins_.next_expiry();
  for (const auto& [site, p] : paths_) {
    t = std::min(t, p->next_timeout());
    if (!keepalive_.empty()) {
      auto k = keepalive_.find(site);
      if (k != keepalive_.end()) t = std::min(t, p->last_sent < 0 ? 0 : p->last_sent + k->second);
    }
    // Without window room the control frames wait for an ack, which wakes the driver anyway.
    if (!p->control.empty() && p->can_send()) t = std::min(t, p->control_deadline);
  }
  return t;
}

void Transport::on_timeout(Time now) {
  for (auto& [site, p] : paths_)
    if (p->next_timeout() <= now) p->on_timeout(now);
  if (pins_.next_expiry() <= now) {
    // No word within the hold time: refused, and judged when the leader's answer comes.
    judged_.clear();
    pins_.expire(now, &judged_);
    for (SenderPins::Held& h : judged_) refuse_held(h);
  }
}

bool Transport::poll_delivery(Delivery* out) {
  if (deliveries_.empty()) return false;
  *out = std::move(deliveries_.front());
  deliveries_.pop_front();
  return true;
}

bool Transport::poll_released(Released* out) {
  if (released_.empty()) return false;
  *out = released_.front();
  released_.pop_front();
  return true;
}

bool Transport::poll_acked_ahead(AckedAhead* out) {
  if (acked_ahead_.empty()) return false;
  *out = acked_ahead_.front();
  acked_ahead_.pop_front();
  return true;
}

std::size_t Transport::catch_up(ChannelKey key, Seq up_to, std::deque<wire::Bytes>* waiting) {
  auto it = send_.find(key);
  if (it == send_.end()) return 0;
  SendChannel& ch = it->second;
  std::size_t taken = 0;
  while (!waiting->empty() && ch.next_seq() <= up_to) {
    ch.push(std::move(waiting->front()));
    waiting->pop_front();
    ++taken;
  }
  if (taken == 0) return 0;
  stats_.caught_up += taken;
  ch.resend_unconsumed();
  queue_data(ch, key);
  return taken;
}

bool Transport::poll_rejected(Rejected* out) {
  if (rejected_.empty()) return false;
  *out = rejected_.front();
  rejected_.pop_front();
  return true;
}

// ---------------------------------------------------------------------------------------
// Sequence state

}  // namespace mstream::proto
