#include "sim/checker.hpp"

#include <algorithm>

namespace mstream::sim {

using proto::ChannelKey;
using proto::Seq;

std::string describe(ChannelKey key) {
  return std::to_string(key.from) + "->" + std::to_string(key.to);
}

void InvariantChecker::fail(std::string_view invariant, std::string detail) {
  // One entry per invariant keeps a cascading bug from flooding the report; the first
  // occurrence is usually the one to read.
  for (Violation& v : violations_) {
    if (v.invariant == invariant) {
      ++v.count;
      return;
    }
  }
  violations_.push_back(Violation{std::string(invariant), std::move(detail), 1});
}

void InvariantChecker::add_channel(ChannelKey key) { records_.try_emplace(key); }

InvariantChecker::Record* InvariantChecker::find(ChannelKey key, std::string_view invariant,
                                                 std::string_view what) {
  auto it = records_.find(key);
  if (it != records_.end()) return &it->second;
  fail(invariant, std::string(what) + " on unknown channel " + describe(key));
  return nullptr;
}

const InvariantChecker::Record* InvariantChecker::find(ChannelKey key) const {
  auto it = records_.find(key);
  return it == records_.end() ? nullptr : &it->second;
}

Seq InvariantChecker::appended(ChannelKey key) const {
  const Record* r = find(key);
  return r ? r->hashes.size() : 0;
}
Seq InvariantChecker::consumed(ChannelKey key) const {
  const Record* r = find(key);
  return r ? r->consumed : 0;
}
Seq InvariantChecker::released(ChannelKey key) const {
  const Record* r = find(key);
  return r ? r->released : 0;
}

void InvariantChecker::on_append(ChannelKey key, Seq seq, std::uint64_t payload_hash) {
  Record* r = find(key, "api_contract", "append");
  if (!r) return;
  if (seq != r->hashes.size() + 1) {
    fail("api_contract", "channel " + describe(key) + ": append returned seq " +
                             std::to_string(seq) + ", expected " +
                             std::to_string(r->hashes.size() + 1));
  }
  r->hashes.push_back(payload_hash);
}

void InvariantChecker::on_delivery(ChannelKey key, Seq seq, std::uint64_t payload_hash) {
  Record* r = find(key, "integrity", "delivery");
  if (!r) return;
  const std::string where = "channel " + describe(key) + " seq " + std::to_string(seq);
  if (seq <= r->delivered) {
    fail("no_duplicate",
         where + " delivered again (highest delivered " + std::to_string(r->delivered) + ")");
    return;
  }
  if (seq != r->delivered + 1)
    fail("fifo", where + " delivered after " + std::to_string(r->delivered) + " (a gap)");
  r->delivered = seq;
  if (seq > r->hashes.size()) {
    fail("integrity",
         where + " delivered but only " + std::to_string(r->hashes.size()) + " appended");
  } else if (r->hashes[seq - 1] != payload_hash) {
    fail("integrity", where + " payload differs from the appended one");
  }
  // The sender holds at most max_unconsumed_messages beyond what it had released, and it
  // releases nothing the application has not consumed; so no delivery can run further ahead.
  if (seq > r->consumed + config_.channel.max_unconsumed_messages) {
    fail("bounded_buffers", where + " delivered with only " + std::to_string(r->consumed) +
                                " consumed (max_unconsumed_messages " +
                                std::to_string(config_.channel.max_unconsumed_messages) + ")");
  }
}

void InvariantChecker::on_receiver_moved(ChannelKey key) {
  if (Record* r = find(key, "integrity", "move")) r->delivered = r->consumed;
}

void InvariantChecker::on_consume(ChannelKey key, Seq seq) {
  Record* r = find(key, "fifo", "consumption");
  if (!r) return;
  const std::string where = "channel " + describe(key) + " seq " + std::to_string(seq);
  if (seq <= r->consumed) {
    fail("no_duplicate",
         where + " consumed again (consumed up to " + std::to_string(r->consumed) + ")");
    return;
  }
  if (seq != r->consumed + 1)
    fail("fifo", where + " consumed after " + std::to_string(r->consumed) + " (out of order)");
  if (seq > r->delivered)
    fail("fifo",
         where + " consumed before delivery (delivered " + std::to_string(r->delivered) + ")");
  r->consumed = seq;
}

void InvariantChecker::on_consumed_frame(ChannelKey key, Seq up_to) {
  Record* r = find(key, "ack_after_consumption", "CONSUMED frame");
  if (r && up_to > r->consumed) {
    fail("ack_after_consumption", "CONSUMED " + describe(key) + " up_to " + std::to_string(up_to) +
                                      " sent with only " + std::to_string(r->consumed) +
                                      " consumed");
  }
}

void InvariantChecker::on_released(ChannelKey key, Seq up_to) {
  Record* r = find(key, "ack_after_consumption", "Released event");
  if (!r) return;
  if (up_to > r->consumed) {
    fail("ack_after_consumption", "Released " + describe(key) + " up_to " + std::to_string(up_to) +
                                      " with only " + std::to_string(r->consumed) + " consumed");
  }
  r->released = std::max(r->released, up_to);
}

void InvariantChecker::on_packet_received(proto::SiteId from, proto::SiteId to,
                                          proto::PacketNumber pn) {
  if (pn == 0) return;
  Received& r = received_[std::uint64_t{from} << 32 | to];
  if (pn >= r.got.size()) r.got.resize(std::max<std::size_t>(pn + 1, 2 * r.got.size()));
  r.got[pn] = true;
  while (r.has(r.cumulative + 1)) ++r.cumulative;
}

void InvariantChecker::on_ack_sent(proto::SiteId acker, proto::SiteId peer,
                                   const wire::AckFrame& ack) {
  const Received& r = received_[std::uint64_t{peer} << 32 | acker];
  const std::string path =
      "site " + std::to_string(acker) + " acknowledged to site " + std::to_string(peer) + " ";
  if (ack.cumulative > r.cumulative) {
    fail("ack_only_received", path + "every packet <= " + std::to_string(ack.cumulative) +
                                  " but only <= " + std::to_string(r.cumulative) + " arrived");
    return;
  }
  // The ends of each range: where an off-by-one would show.
  for (const wire::AckRange& range : ack.ranges) {
    if (!r.has(range.first) || !r.has(range.last)) {
      fail("ack_only_received", path + "range [" + std::to_string(range.first) + ", " +
                                    std::to_string(range.last) +
                                    "] including a packet never "
                                    "received");
      return;
    }
  }
}

void InvariantChecker::check_site(const proto::Transport& t, std::span<const ChannelKey> sending,
                                  std::span<const ChannelKey> receiving,
                                  std::span<const proto::SiteId> peers) {
  const proto::ChannelConfig& cc = config_.channel;
  const proto::PathConfig& pc = config_.path;
  const std::string at = " at site " + std::to_string(t.self());
  for (ChannelKey key : sending) {
    const proto::SendChannel* ch = t.send_channel(key);
    if (!ch) continue;
    // One message may exceed the byte bound on its own (an empty buffer takes any legal
    // message, or it could never be sent); two or more may not.
    const std::size_t byte_bound = ch->unconsumed_count() <= 1
                                       ? std::max(cc.max_unconsumed_bytes, cc.max_message_bytes)
                                       : cc.max_unconsumed_bytes;
    if (ch->unconsumed_count() > cc.max_unconsumed_messages ||
        ch->unconsumed_bytes() > byte_bound) {
      fail("bounded_buffers", "sender " + describe(key) + at + " holds " +
                                  std::to_string(ch->unconsumed_count()) + " messages, " +
                                  std::to_string(ch->unconsumed_bytes()) + " bytes");
    }
  }
  for (ChannelKey key : receiving) {
    const proto::RecvChannel* ch = t.recv_channel(key);
    if (!ch) continue;
    if (ch->buffered_messages() > cc.max_unconsumed_messages ||
        ch->buffered_bytes() > std::max(cc.max_unconsumed_bytes, cc.max_message_bytes)) {
      fail("bounded_buffers", "receiver " + describe(key) + at + " buffers " +
                                  std::to_string(ch->buffered_messages()) + " messages, " +
                                  std::to_string(ch->buffered_bytes()) + " bytes");
    }
  }
  for (proto::SiteId peer : peers) {
    const proto::Path* p = t.path(peer);
    if (!p) continue;
    if (p->outstanding() > pc.max_window) {
      fail("bounded_buffers", "path" + at + " to " + std::to_string(peer) + " has " +
                                  std::to_string(p->outstanding()) + " outstanding > max_window " +
                                  std::to_string(pc.max_window));
    }
    const proto::Time rto = p->rtt().rto();
    if (rto < pc.min_rto || rto > pc.max_rto) {
      fail("rto_bounds", "path" + at + " to " + std::to_string(peer) + " rto " +
                             std::to_string(rto) + "ns outside [" + std::to_string(pc.min_rto) +
                             ", " + std::to_string(pc.max_rto) + "]");
    }
  }
}

void InvariantChecker::check_end() {
  // Sorted, so the first reported channel does not depend on hash-table order.
  std::vector<std::pair<ChannelKey, const Record*>> all;
  for (const auto& [key, r] : records_) all.emplace_back(key, &r);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.first.from != b.first.from ? a.first.from < b.first.from : a.first.to < b.first.to;
  });
  for (const auto& [key, r] : all) {
    if (r->consumed < r->hashes.size()) {
      fail("no_loss", "channel " + describe(key) + ": " + std::to_string(r->consumed) + " of " +
                          std::to_string(r->hashes.size()) + " appended messages consumed (" +
                          std::to_string(r->delivered) + " delivered)");
    }
  }
}

}  // namespace mstream::sim
