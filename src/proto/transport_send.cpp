// What leaves a Transport: each datagram assembled from a path's queues (acks, consumption
// acks and refusals first, then data up to the window), repeats refreshed before they go, and
// keepalives. Beside transport.cpp, which takes what arrives and keeps the channels.
#include <algorithm>

#include "proto/transport.hpp"

namespace mstream::proto {
namespace {

// The smallest fragment worth starting in a partly filled datagram.
constexpr std::size_t kMinFragment = 64;

}  // namespace

bool Transport::poll_transmit(Time now, OutDatagram* out) {
  while (poll_path(now, out)) {
    auto p = paths_.find(out->to);
    if (secured_) {
      const bool opens_aegis = p != paths_.end() && p->second->peer_opens_aegis;
      // No key for it (none came with its admission): the datagram waits for its
      // retransmission, as if lost.
      if (!keys_.seal(out->to, boot_, seal_counter_ + 1, opens_aegis, out->bytes, &sealed_))
        continue;
      ++seal_counter_;
      std::swap(out->bytes, sealed_);
    }
    if (p != paths_.end()) p->second->last_sent = now;
    return true;
  }
  return false;
}

// A repeated datagram carries its frames as they were first sent. Since then the receiver
// may have consumed some of its messages and the sender been told: a repeat must not carry
// those again with the old floor, or a receiver that lost its state meanwhile (its site
// failed, DESIGN.md guarantee 6) would take the old floor for its starting point and consume
// them twice. So its messages now released are left out and the others carry today's floor.
// Repeats are few: decoding them again costs little.
void Transport::refresh_repeat(wire::Bytes* datagram) {
  if (!wire::decode_datagram(*datagram, &repeat_, integrity()).ok()) return;
  bool stale = false;
  for (const wire::Frame& f : repeat_.frames) {
    if (f.type != wire::FrameType::kData && f.type != wire::FrameType::kFragment) continue;
    auto it = send_.find(ChannelKey{f.from_stream, f.to_stream});
    if (it != send_.end() && it->second.origin == f.origin &&
        f.floor < it->second.consumed_up_to()) {
      stale = true;
      break;
    }
  }
  if (!stale) return;
  repeat_bytes_.clear();
  wire::encode_header(repeat_.header, &repeat_bytes_);
  if (repeat_.has_ack) wire::encode_ack(repeat_.ack, &repeat_bytes_);
  for (const wire::Frame& f : repeat_.frames) {
    switch (f.type) {
      case wire::FrameType::kData:
      case wire::FrameType::kFragment: {
        wire::SenderTag tag{f.incarnation, f.origin, f.floor};
        auto it = send_.find(ChannelKey{f.from_stream, f.to_stream});
        if (it != send_.end() && it->second.origin == f.origin) {
          if (f.seq <= it->second.consumed_up_to()) continue;  // released: not again
          tag.floor = std::max(tag.floor, it->second.consumed_up_to());
        }
        if (f.type == wire::FrameType::kData) {
          wire::encode_data(f.from_stream, f.to_stream, f.seq, f.payload, &repeat_bytes_, tag);
        } else {
          wire::encode_fragment(f.from_stream, f.to_stream, f.seq, f.total_len, f.offset, f.payload,
                                &repeat_bytes_, tag);
        }
        break;
      }
      case wire::FrameType::kConsumed:
        wire::encode_consumed(f.from_stream, f.to_stream, f.seq, &repeat_bytes_, f.origin);
        break;
      case wire::FrameType::kReject:
        wire::encode_reject(f.from_stream, f.to_stream, f.seq, f.reason, &repeat_bytes_);
        break;
      case wire::FrameType::kAck:
        break;
    }
  }
  wire::seal(&repeat_bytes_, integrity());
  std::swap(*datagram, repeat_bytes_);
}

bool Transport::poll_path(Time now, OutDatagram* out) {
  // Paths whose data became ready go first, in that order: the message made first leaves
  // first (a move's order to its source before the leader's word to its target), and on a
  // loaded machine each datagram sent costs its sender the receiver's wake-up (about 14 us
  // of a hop of `mstream bench move`, where the order used to follow the hash table's).
  while (!first_ready_.empty()) {
    const SiteId site = first_ready_.front();
    first_ready_.pop_front();
    auto it = paths_.find(site);
    if (it != paths_.end() && poll_one(site, *it->second, now, out)) return true;
  }
  for (auto& [site, pp] : paths_)
    if (poll_one(site, *pp, now, out)) return true;
  return false;
}

bool Transport::poll_one(SiteId site, Path& p, Time now, OutDatagram* out) {
  if (p.has_probe() && p.build_probe(now, &out->bytes)) {
    refresh_repeat(&out->bytes);
    out->to = site;
    ++stats_.datagrams_out;
    ++stats_.retransmissions;
    return true;
  }
  if (p.has_lost() && p.can_send() && p.build_retransmission(now, &out->bytes)) {
    refresh_repeat(&out->bytes);
    out->to = site;
    ++stats_.datagrams_out;
    ++stats_.retransmissions;
    return true;
  }
  // Control frames go with data, with an ACK that is due anyway, or when they waited long
  // enough.
  bool control_due = !p.control.empty() && (now >= p.control_deadline || p.ack_due(now));
  if (p.can_send() && (control_due || !p.data_ready.empty())) {
    body_.clear();
    fill_body(p, p.body_room(), &body_);
    if (p.control.empty()) {
      p.control_deadline = kNever;
      p.consumed_unreported = 0;
    }
    if (!body_.empty()) {
      p.build_new(body_, now, &out->bytes);
      out->to = site;
      ++stats_.datagrams_out;
      return true;
    }
  }
  if (p.ack_due(now)) {
    p.build_ack_only(&out->bytes);
    out->to = site;
    ++stats_.datagrams_out;
    return true;
  }
  if (keepalive_due(site, p, now)) {
    out->bytes.clear();
    wire::encode_header({self_, site, 0, boot_, p.peer_boot}, &out->bytes);
    wire::seal(&out->bytes, integrity());
    out->to = site;
    ++stats_.datagrams_out;
    return true;
  }
  return false;
}

bool Transport::keepalive_due(SiteId site, const Path& p, Time now) const {
  if (keepalive_.empty()) return false;
  auto k = keepalive_.find(site);
  return k != keepalive_.end() && (p.last_sent < 0 || now - p.last_sent >= k->second);
}

void Transport::fill_body(Path& p, std::size_t room, wire::Bytes* body) {
  while (!p.control.empty()) {
    const Path::Control& c = p.control.front();
    if (c.type == wire::FrameType::kConsumed && c.seq != 0) {  // a direct answer
      auto rc = recv_.find(c.key);
      if (rc == recv_.end()) {  // the receiver left meanwhile: its new site answers
        p.control.pop_front();
        continue;
      }
      const std::uint32_t origin = rc->second.origin();
      if (body->size() + wire::consumed_size(c.key.from, c.key.to, c.seq, origin) > room) return;
      wire::encode_consumed(c.key.from, c.key.to, c.seq, body, origin);
    } else if (c.type == wire::FrameType::kConsumed) {
      auto it = recv_.find(c.key);
      if (it == recv_.end() || !it->second.ack_queued || it->second.reply_site != p.remote()) {
        p.control.pop_front();
        continue;
      }
      Seq up_to = it->second.consumed_up_to();
      const std::uint32_t origin = it->second.origin();
      if (body->size() + wire::consumed_size(c.key.from, c.key.to, up_to, origin) > room) return;
      wire::encode_consumed(c.key.from, c.key.to, up_to, body, origin);
      it->second.ack_queued = false;
    } else {
      if (body->size() + wire::consumed_size(c.key.from, c.key.to, c.seq) + 1 > room) return;
      wire::encode_reject(c.key.from, c.key.to, c.seq, c.reason, body);
    }
    p.control.pop_front();
  }
  fill_data(p, room, body);
}

bool Transport::fill_data(Path& p, std::size_t room, wire::Bytes* body) {
  // Each ready channel gets one turn per datagram, so one busy channel cannot starve others.
  std::size_t turns = p.data_ready.size();
  while (turns-- > 0 && !p.data_ready.empty()) {
    ChannelKey key = p.data_ready.front();
    p.data_ready.pop_front();
    auto it = send_.find(key);
    if (it == send_.end()) continue;
    SendChannel& ch = it->second;
    if (ch.dest != p.remote()) continue;  // relocated; queued on its new path
    ch.queued = false;
    bool full = false;
    while (ch.has_unsent() && !full) {
      const wire::SenderTag tag{ch.incarnation, ch.origin, ch.consumed_up_to()};
      const wire::Bytes& m = ch.unsent_message();
      std::size_t off = ch.unsent_offset();
      Seq seq = ch.unsent_seq();
      std::size_t avail = room > body->size() ? room - body->size() : 0;
      if (off == 0) {
        std::size_t whole = wire::data_size(key.from, key.to, seq, m.size(), tag);
        if (whole <= avail) {
          wire::encode_data(key.from, key.to, seq, m, body, tag);
          ch.advance_unsent(m.size());
          continue;
        }
        if (whole <= room) {  // fits the next datagram whole: do not cut it
          full = true;
          break;
        }
      }
      std::size_t remaining = m.size() - off;
      std::size_t overhead =
          wire::fragment_size(key.from, key.to, seq, m.size(), off, remaining, tag) - remaining;
      if (avail <= overhead + std::min(kMinFragment, remaining)) {
        full = true;
        break;
      }
      std::size_t chunk = std::min(remaining, avail - overhead);
      wire::encode_fragment(key.from, key.to, seq, m.size(), off,
                            wire::ByteView(m).subspan(off, chunk), body, tag);
      ch.advance_unsent(chunk);
      if (chunk < remaining) full = true;
    }
    if (ch.has_unsent() && !ch.queued) {
      if (full)
        p.data_ready.push_front(key);  // it continues in the next datagram
      else
        p.data_ready.push_back(key);
      ch.queued = true;
    }
    if (full) return true;
  }
  return false;
}

}  // namespace mstream::proto
