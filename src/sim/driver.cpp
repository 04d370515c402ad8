#include "sim/driver.hpp"

#include <algorithm>
#include <cstdio>

namespace mstream::sim {

void add_transport_stats(const proto::TransportStats& st, proto::TransportStats* total) {
  proto::TransportStats& s = *total;
  s.datagrams_in += st.datagrams_in;
  s.datagrams_out += st.datagrams_out;
  s.malformed_in += st.malformed_in;
  s.misaddressed_in += st.misaddressed_in;
  s.duplicate_packets += st.duplicate_packets;
  s.dropped_out_of_order += st.dropped_out_of_order;
  s.duplicate_messages += st.duplicate_messages;
  s.consumed_answers_merged += st.consumed_answers_merged;
  s.caught_up += st.caught_up;
  s.rejected_frames += st.rejected_frames;
  s.bogus_acks += st.bogus_acks;
  s.retransmissions += st.retransmissions;
  s.messages_delivered += st.messages_delivered;
  s.messages_released += st.messages_released;
  s.paths_refused += st.paths_refused;
  s.unknown_site_in += st.unknown_site_in;
  s.stale_numbering += st.stale_numbering;
  s.stale_boot_in += st.stale_boot_in;
  s.paths_restarted += st.paths_restarted;
  s.forged_in += st.forged_in;
  s.replayed_in += st.replayed_in;
  s.unsealed_in += st.unsealed_in;
  s.impostor_frames += st.impostor_frames;
  s.wrong_site_frames += st.wrong_site_frames;
  s.held_frames += st.held_frames;
  s.held_refused += st.held_refused;
  s.misdirected_acks += st.misdirected_acks;
  s.unopened_frames += st.unopened_frames;
}

}  // namespace mstream::sim

namespace mstream::sim::detail {
namespace {

const char* damage_name(Damage d) {
  switch (d) {
    case Damage::kNone:
      return "intact";
    case Damage::kCorrupted:
      return "corrupted";
    case Damage::kTruncated:
      return "truncated";
    case Damage::kMisrouted:
      return "misrouted";
  }
  return "?";
}

}  // namespace

Driver::Driver(const Scenario& s, const RunOptions& o)
    : sc_(s),
      opt_(o),
      // Run-time draws (consumer delays, gaps, notices) and the network's fates each have
      // their own stream off the seed, apart from the streams that derived the scenario.
      rng_(mix64(s.seed) ^ 0xA0761D6478BD642Full),
      net_(s.network, Rng(mix64(s.seed) ^ 0xE7037ED1A0B428DBull)),
      checker_(s.transport) {
  const std::uint32_t n = s.sites();
  timer_at_.assign(n, proto::kNever);
  last_timer_.assign(n, -1);
  same_time_timers_.assign(n, 0);
  sending_.resize(n);
  receiving_.resize(n);
  peers_.resize(n);
  for (SiteId site = 0; site < n; ++site) {
    sites_.push_back(std::make_unique<proto::Transport>(site, s.transport));
    for (SiteId p = 0; p < n; ++p) {
      if (p == site) continue;
      peers_[site].push_back(p);
      sites_[site]->admit_site(p);
    }
  }
  for (const Scenario::ClassOverride& o : s.class_overrides)
    sites_[o.site]->set_retransmission(o.peer, o.retransmission);
  consumers_.resize(s.streams.size());
  moved_.assign(s.streams.size(), 0);
  newest_pn_.assign(n * n, 0);
  last_notice_.assign(n * s.streams.size(), 0);
  for (const StreamPlan& st : s.streams) {
    stream_site_.push_back(st.site);
    Status status = sites_[st.site]->open_stream(st.id);
    if (!status.ok())
      checker_.fail("api_contract", "open_stream(" + std::to_string(st.id) + ") at site " +
                                        std::to_string(st.site) + ": " + status.to_string());
  }
  for (std::uint32_t c = 0; c < s.channels.size(); ++c) {
    const ChannelPlan& plan = s.channels[c];
    ChannelRun run;
    run.key = ChannelKey{s.streams[plan.from].id, s.streams[plan.to].id};
    run.from_site = s.streams[plan.from].site;
    run.to_site = s.streams[plan.to].site;
    run.to_stream = static_cast<std::uint32_t>(plan.to);
    run.sender_view = run.to_site;
    channels_.push_back(run);
    channel_of_[run.key] = c;
    checker_.add_channel(run.key);
    sending_[run.from_site].push_back(run.key);
    if (!plan.sizes.empty()) schedule(plan.start, Kind::kAppend, c);
  }
  rebuild_receiving();
  for (std::uint32_t m = 0; m < s.moves.size(); ++m) schedule(s.moves[m].at, Kind::kMove, m);
  for (SiteId site = 0; site < n; ++site) timer_at_[site] = sites_[site]->next_timeout();
}

void Driver::rebuild_receiving() {
  for (auto& keys : receiving_) keys.clear();
  for (const ChannelRun& ch : channels_) receiving_[ch.to_site].push_back(ch.key);
}

void Driver::note(Kind kind, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  digest_.add_signed(now_);
  digest_.add(static_cast<std::uint64_t>(kind));
  digest_.add(a);
  digest_.add(b);
  digest_.add(c);
}

void Driver::trace(const std::string& line) {
  if (!opt_.trace) return;
  char stamp[40];
  std::snprintf(stamp, sizeof stamp, "%14.6fms ", static_cast<double>(now_) / proto::kMillisecond);
  *opt_.trace << stamp << line << '\n';
}

void Driver::schedule(Time at, Kind kind, std::uint32_t target) {
  heap_.push_back(Event{at, order_++, kind, target, 0, 0, Damage::kNone, {}});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
}

void Driver::schedule_arrival(SiteId from, proto::PacketNumber pn, Arrival&& a) {
  heap_.push_back(
      Event{a.at, order_++, Kind::kArrival, a.to, from, pn, a.damage, std::move(a.bytes)});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
}

SeedResult Driver::run() {
  for (SiteId site = 0; site < sites_.size(); ++site) drain(site);
  for (;;) {
    if (done_ && quiescent()) break;
    if (sum_.steps >= opt_.max_steps) {
      checker_.fail("progress", "more than " + std::to_string(opt_.max_steps) +
                                    " steps by t=" + std::to_string(now_) + "ns");
      break;
    }
    SiteId timer_site = 0;
    Time timer = proto::kNever;
    for (SiteId site = 0; site < sites_.size(); ++site) {
      if (timer_at_[site] < timer) {
        timer = timer_at_[site];
        timer_site = site;
      }
    }
    const Time event = heap_.empty() ? proto::kNever : heap_.front().at;
    const Time next = std::min(timer, event);
    if (next == proto::kNever) break;  // nothing can ever happen again
    if (next > sc_.calm_start() + sc_.liveness_bound) break;
    now_ = std::max(now_, next);
    ++sum_.steps;
    if (timer <= event) {
      fire_timer(timer_site);
    } else {
      std::pop_heap(heap_.begin(), heap_.end(), Later{});
      Event e = std::move(heap_.back());
      heap_.pop_back();
      switch (e.kind) {
        case Kind::kArrival:
          on_arrival(e);
          break;
        case Kind::kAppend:
          on_append(e.target);
          break;
        case Kind::kConsume:
          on_consume(e.target);
          break;
        case Kind::kMove:
          on_move(e.target);
          break;
        case Kind::kRelocate:
          on_relocate(e.target);
          break;
        default:
          break;
      }
    }
    if (stop_) break;
    if (!done_ && workload_done()) {
      done_ = true;
      sum_.done_at = now_;
    }
  }

  if (!stop_) judge_liveness();
  checker_.check_end();
  for (const auto& t : sites_) add_transport_stats(t->stats(), &sum_.transport);
  // No peer in a simulation lies: an acknowledgement of something never sent is a bug.
  if (sum_.transport.bogus_acks > 0)
    checker_.fail("bogus_ack", std::to_string(sum_.transport.bogus_acks) +
                                   " acknowledgements of packets or messages never sent");
  sum_.end_time = now_;
  sum_.network = net_.stats();
  SeedResult r;
  r.seed = sc_.seed;
  digest_.add(sum_.appended);
  digest_.add(sum_.consumed);
  r.trace_hash = digest_.value();
  r.violations = checker_.violations();
  r.summary = sum_;
  return r;
}

void Driver::judge_liveness() {
  const Time deadline = sc_.calm_start() + sc_.liveness_bound;
  if (!done_) {
    for (std::uint32_t c = 0; c < channels_.size(); ++c) {
      const ChannelRun& ch = channels_[c];
      const std::size_t planned = sc_.channels[c].sizes.size();
      if (ch.next == planned && ch.released == ch.appended && ch.consumed == ch.appended) continue;
      checker_.fail("liveness",
                    "channel " + std::to_string(c) + " " + describe(ch.key) + " (site " +
                        std::to_string(ch.from_site) + "->" + std::to_string(ch.to_site) +
                        "): " + std::to_string(ch.appended) + " appended (" +
                        std::to_string(planned - ch.next) + " plan entries left" +
                        (ch.blocked ? ", blocked" : "") + "), " + std::to_string(ch.consumed) +
                        " consumed, " + std::to_string(ch.released) + " released at t=" +
                        std::to_string(now_) + "ns, deadline " + std::to_string(deadline) + "ns");
      return;
    }
  }
  for (SiteId site = 0; site < sites_.size(); ++site) {
    if (!sites_[site]->idle()) {
      checker_.fail("liveness", "site " + std::to_string(site) +
                                    " not idle after every message was released (t=" +
                                    std::to_string(now_) + "ns)");
      return;
    }
  }
}

bool Driver::workload_done() const {
  for (std::uint32_t c = 0; c < channels_.size(); ++c) {
    const ChannelRun& ch = channels_[c];
    if (ch.next < sc_.channels[c].sizes.size() || ch.consumed < ch.appended ||
        ch.released < ch.appended)
      return false;
  }
  return true;
}

bool Driver::quiescent() const {
  return std::all_of(sites_.begin(), sites_.end(), [](const auto& t) { return t->idle(); });
}

void Driver::fire_timer(SiteId site) {
  // A timeout that stays due after on_timeout() would spin the loop at one instant.
  if (timer_at_[site] == last_timer_[site]) {
    if (++same_time_timers_[site] > 1000) {
      checker_.fail("progress", "site " + std::to_string(site) + " timeout at " +
                                    std::to_string(timer_at_[site]) +
                                    "ns stays due after 1000 on_timeout() calls");
      stop_ = true;
      return;
    }
  } else {
    same_time_timers_[site] = 0;
    last_timer_[site] = timer_at_[site];
  }
  ++sum_.timer_steps;
  sites_[site]->on_timeout(now_);
  note(Kind::kTimer, site);
  trace("site " + std::to_string(site) + " timeout");
  drain(site);
}

void Driver::on_arrival(Event& e) {
  const SiteId site = e.target;
  Status status = sites_[site]->on_datagram(e.bytes, now_);
  note(Kind::kArrival, site, hash_bytes(e.bytes),
       static_cast<std::uint64_t>(status.code()) << 8 | static_cast<std::uint64_t>(e.damage));
  if (e.damage != Damage::kNone) {
    if (status.ok()) {
      checker_.fail("corruption_rejected", std::string("site ") + std::to_string(site) +
                                               " accepted a " + damage_name(e.damage) +
                                               " datagram of " + std::to_string(e.bytes.size()) +
                                               " bytes at t=" + std::to_string(now_) + "ns");
    } else {
      ++sum_.damaged_refused;
    }
  } else if (status.code() == Status::Code::kMalformed) {
    checker_.fail("wire_valid", "site " + std::to_string(site) +
                                    " refused an intact datagram: " + status.to_string());
  } else {
    checker_.on_packet_received(e.from, site, e.pn);
  }
  if (opt_.trace)
    trace("site " + std::to_string(site) + " got " + std::to_string(e.bytes.size()) + "B " +
          damage_name(e.damage) + " -> " + status.to_string());
  drain(site);
}

void Driver::on_transmit(SiteId site, const proto::OutDatagram& out) {
  const std::string from = "site " + std::to_string(site);
  if (out.to >= sites_.size() || out.to == site) {
    checker_.fail("wire_valid", from + " sent a datagram to site " + std::to_string(out.to));
    return;
  }
  Status status = wire::decode_datagram(out.bytes, &decoded_);
  if (!status.ok()) {
    checker_.fail("wire_valid", from + " sent an undecodable datagram: " + status.to_string());
  } else {
    if (decoded_.header.src_site != site || decoded_.header.dst_site != out.to)
      checker_.fail("wire_valid", from + " sent a datagram for " + std::to_string(out.to) +
                                      " with header " + wire::describe(decoded_));
    if (out.bytes.size() > sc_.transport.path.mtu)
      checker_.fail("wire_valid", from + " sent " + std::to_string(out.bytes.size()) +
                                      " bytes, more than the mtu " +
                                      std::to_string(sc_.transport.path.mtu));
    if (decoded_.has_ack) checker_.on_ack_sent(site, out.to, decoded_.ack);
    // A repeat carries the frames of its first transmission, judged then: its CONSUMED may
    // come from a site the receiver has left since.
    PacketNumber& first = newest_pn_[site * sites_.size() + out.to];
    const bool repeat = decoded_.header.packet_number <= first;
    first = std::max(first, decoded_.header.packet_number);
    for (const wire::Frame& f : decoded_.frames) {
      if (repeat) break;
      if (f.type == wire::FrameType::kReject) check_reject_frame(site, f);
      if (f.type != wire::FrameType::kConsumed) continue;
      const ChannelKey key{f.from_stream, f.to_stream};
      checker_.on_consumed_frame(key, f.seq);
      auto it = channel_of_.find(key);
      if (it != channel_of_.end() && channels_[it->second].to_site != site)
        checker_.fail("ack_after_consumption", "CONSUMED " + describe(key) + " sent by " + from +
                                                   ", where the receiver does not live");
    }
    if (opt_.trace) trace(from + " sends " + wire::describe(decoded_));
  }
  note(Kind::kSend, site, out.to, hash_bytes(out.bytes));
  arrivals_.clear();
  net_.transmit(site, out.to, out.bytes, now_, &arrivals_);
  const proto::PacketNumber pn = status.ok() ? decoded_.header.packet_number : 0;
  for (Arrival& a : arrivals_) schedule_arrival(site, pn, std::move(a));
}

void Driver::check_reject_frame(SiteId site, const wire::Frame& f) {
  const ChannelKey key{f.from_stream, f.to_stream};
  auto it = channel_of_.find(key);
  // A site may refuse data for a stream that is not there; only a stream that never moved
  // is surely there whenever the frame was queued.
  if (f.reason == wire::RejectReason::kNoSuchStream && it != channel_of_.end()) {
    const ChannelRun& ch = channels_[it->second];
    if (moved_[ch.to_stream] > 0 || ch.to_site != site) return;
  }
  checker_.fail("unexpected_reject", "site " + std::to_string(site) + " sent REJECT " +
                                         describe(key) + " #" + std::to_string(f.seq) + " reason " +
                                         std::to_string(static_cast<int>(f.reason)));
}

void Driver::drain(SiteId site) {
  proto::Transport& t = *sites_[site];
  for (std::uint64_t n = 0; t.poll_transmit(now_, &out_); ++n) {
    if (n > 1'000'000) {
      checker_.fail("progress",
                    "site " + std::to_string(site) + " poll_transmit() never returns false");
      stop_ = true;
      return;
    }
    on_transmit(site, out_);
  }
  while (t.poll_delivery(&delivery_)) {
    const std::uint64_t h = hash_bytes(delivery_.payload);
    checker_.on_delivery(delivery_.key, delivery_.seq, h);
    note(Kind::kDeliver, delivery_.key.from ^ (delivery_.key.to << 20), delivery_.seq, h);
    trace("site " + std::to_string(site) + " delivers " + describe(delivery_.key) + " #" +
          std::to_string(delivery_.seq) + " " + std::to_string(delivery_.payload.size()) + "B");
    auto it = channel_of_.find(delivery_.key);
    if (it == channel_of_.end()) continue;  // reported by the checker
    const ChannelRun& ch = channels_[it->second];
    if (ch.to_site != site) {
      checker_.fail("integrity", "channel " + describe(ch.key) + " delivered at site " +
                                     std::to_string(site) + ", receiver lives at " +
                                     std::to_string(ch.to_site));
      continue;
    }
    consumers_[ch.to_stream].queue.push_back({it->second, delivery_.seq});
    schedule_consumer(ch.to_stream);
  }
  proto::Released released;
  while (t.poll_released(&released)) on_released(released);
  proto::Rejected rejected;
  while (t.poll_rejected(&rejected)) {
    // Refusals by a site the receiver left are how a sender learns of a move before the
    // location notice; REJECT frames were judged when sent (on_transmit), local ones here.
    if (rejected.reason == wire::RejectReason::kNoSuchStream) {
      auto it = channel_of_.find(rejected.key);
      if (rejected.site != site || it == channel_of_.end() ||
          moved_[channels_[it->second].to_stream] > 0) {
        ++sum_.refused_after_move;
        continue;
      }
    }
    checker_.fail("unexpected_reject", "site " + std::to_string(site) + ": " +
                                           describe(rejected.key) + " #" +
                                           std::to_string(rejected.seq) + " rejected by site " +
                                           std::to_string(rejected.site) + " reason " +
                                           std::to_string(static_cast<int>(rejected.reason)));
  }
  checker_.check_site(t, sending_[site], receiving_[site], peers_[site]);
  timer_at_[site] = t.next_timeout();
}

}  // namespace mstream::sim::detail
