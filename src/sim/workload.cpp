#include <algorithm>

#include "sim/driver.hpp"

namespace mstream::sim::detail {
namespace {

wire::Bytes make_payload(std::uint64_t seed, std::size_t channel, std::size_t index,
                         std::size_t size) {
  Rng rng(mix64(seed) ^ mix64((std::uint64_t{channel} << 32) + index));
  wire::Bytes b(size);
  for (std::size_t i = 0; i < size; i += 8) {
    const std::uint64_t w = rng.next();
    for (std::size_t k = 0; k < 8 && i + k < size; ++k)
      b[i + k] = static_cast<std::uint8_t>(w >> (8 * k));
  }
  return b;
}

}  // namespace

void Driver::on_append(std::uint32_t c) {
  ChannelRun& ch = channels_[c];
  const ChannelPlan& plan = sc_.channels[c];
  if (ch.next >= plan.sizes.size()) return;
  const std::size_t size = plan.sizes[ch.next];
  const bool probe = size > sc_.transport.channel.max_message_bytes;
  const wire::Bytes payload = make_payload(sc_.seed, c, ch.next, size);
  Result<Seq> r =
      sites_[ch.from_site]->append(ch.key.from, ch.key.to, ch.sender_view, payload, now_);
  auto next_gap = [&] {
    return plan.mean_gap == 0
               ? Time{0}
               : static_cast<Time>(rng_.exponential(static_cast<double>(plan.mean_gap)));
  };
  if (r.ok()) {
    if (probe)
      checker_.fail("api_contract", "channel " + describe(ch.key) + " accepted a " +
                                        std::to_string(size) + "-byte message above the maximum");
    const std::uint64_t h = hash_bytes(payload);
    checker_.on_append(ch.key, r.value(), h);
    ++ch.appended;
    ++ch.next;
    ++sum_.appended;
    note(Kind::kAppend, c, r.value(), h);
    trace("append " + describe(ch.key) + " #" + std::to_string(r.value()) + " " +
          std::to_string(size) + "B");
    if (ch.next < plan.sizes.size()) schedule(now_ + next_gap(), Kind::kAppend, c);
  } else if (r.status().code() == Status::Code::kWouldBlock) {
    ++sum_.would_block;
    const proto::SendChannel* sc = sites_[ch.from_site]->send_channel(ch.key);
    if (!sc || sc->unconsumed_count() == 0)
      checker_.fail("api_contract", "channel " + describe(ch.key) + " refused a " +
                                        std::to_string(size) +
                                        "-byte append with kWouldBlock while its buffer is empty");
    ch.blocked = true;
    note(Kind::kRefused, c, size);
    trace("append " + describe(ch.key) + " " + std::to_string(size) + "B would block");
  } else if (probe && r.status().code() == Status::Code::kTooLarge) {
    ++sum_.too_large;
    ++ch.next;
    note(Kind::kRefused, c, size, 1);
    if (ch.next < plan.sizes.size()) schedule(now_, Kind::kAppend, c);
  } else {
    checker_.fail("api_contract", "channel " + describe(ch.key) + " append of " +
                                      std::to_string(size) + " bytes: " + r.status().to_string());
    ++ch.next;
    if (ch.next < plan.sizes.size()) schedule(now_ + next_gap(), Kind::kAppend, c);
  }
  drain(ch.from_site);
}

void Driver::schedule_consumer(std::uint32_t stream) {
  Consumer& cons = consumers_[stream];
  if (cons.scheduled || cons.queue.empty()) return;
  const StreamPlan& st = sc_.streams[stream];
  const Time d = st.mean_processing == 0
                     ? 0
                     : static_cast<Time>(rng_.exponential(static_cast<double>(st.mean_processing)));
  Time at = now_ + d;
  if (at >= st.stall_start && at < st.stall_end) at = st.stall_end + d;
  cons.scheduled = true;
  schedule(at, Kind::kConsume, stream);
}

void Driver::on_consume(std::uint32_t stream) {
  Consumer& cons = consumers_[stream];
  cons.scheduled = false;
  if (cons.queue.empty()) return;
  const std::uint32_t c = cons.queue.front().channel;
  ChannelRun& ch = channels_[c];
  Seq up_to = 0;
  for (std::uint32_t n = 0;
       n < sc_.streams[stream].batch && !cons.queue.empty() && cons.queue.front().channel == c;
       ++n) {
    up_to = cons.queue.front().seq;
    checker_.on_consume(ch.key, up_to);
    cons.queue.pop_front();
    ++sum_.consumed;
  }
  Status status = sites_[ch.to_site]->consume(ch.key, up_to, now_);
  if (!status.ok())
    checker_.fail("api_contract", "consume(" + describe(ch.key) + ", " + std::to_string(up_to) +
                                      "): " + status.to_string());
  ch.consumed = std::max(ch.consumed, up_to);
  note(Kind::kConsume, c, up_to);
  trace("site " + std::to_string(ch.to_site) + " consumed " + describe(ch.key) + " up to #" +
        std::to_string(up_to));
  drain(ch.to_site);
  schedule_consumer(stream);
}

void Driver::on_released(const proto::Released& r) {
  checker_.on_released(r.key, r.up_to);
  note(Kind::kRelease, r.key.from, r.key.to, r.up_to);
  trace("released " + describe(r.key) + " up to #" + std::to_string(r.up_to));
  auto it = channel_of_.find(r.key);
  if (it == channel_of_.end()) return;
  ChannelRun& ch = channels_[it->second];
  ch.released = std::max(ch.released, r.up_to);
  if (ch.blocked) {
    ch.blocked = false;
    schedule(now_, Kind::kAppend, it->second);
  }
}

void Driver::on_move(std::uint32_t m) {
  const MovePlan& mv = sc_.moves[m];
  const auto stream = static_cast<std::uint32_t>(mv.stream);
  const SiteId from = stream_site_[stream], to = mv.to;
  const StreamId id = sc_.streams[stream].id;
  if (from == to) return;
  // The stream's receive state travels; what was delivered but not consumed is dropped here
  // and delivered again at the new site (seed 004: senders re-send what is unconsumed).
  std::vector<std::pair<ChannelKey, proto::RecvState>> states;
  for (ChannelRun& ch : channels_) {
    if (ch.to_stream != stream) continue;
    Result<proto::RecvState> r = sites_[from]->export_recv_state(ch.key);
    if (r.ok()) {
      if (r->consumed_up_to != ch.consumed)
        checker_.fail("api_contract", "exported receive state of " + describe(ch.key) + " says " +
                                          std::to_string(r->consumed_up_to) +
                                          " consumed, the application consumed " +
                                          std::to_string(ch.consumed));
      states.emplace_back(ch.key, *r);
    } else if (ch.consumed > 0) {
      checker_.fail("api_contract", "no receive state of " + describe(ch.key) + " at site " +
                                        std::to_string(from) + " after " +
                                        std::to_string(ch.consumed) + " consumed");
    }
    checker_.on_receiver_moved(ch.key);
    ch.to_site = to;
  }
  Status st = sites_[from]->close_stream(id);
  if (st.ok()) st = sites_[to]->open_stream(id);
  for (const auto& [key, state] : states)
    if (st.ok()) st = sites_[to]->import_recv_state(key, state);
  if (!st.ok())
    checker_.fail("api_contract", "moving stream " + std::to_string(id) + ": " + st.to_string());
  consumers_[stream].queue.clear();
  stream_site_[stream] = to;
  ++moved_[stream];
  ++sum_.moves;
  rebuild_receiving();
  note(Kind::kMove, id, from, to);
  trace("stream " + std::to_string(id) + " moves from site " + std::to_string(from) + " to " +
        std::to_string(to));
  drain(from);
  drain(to);
  std::vector<SiteId> told;
  for (const ChannelRun& ch : channels_) {
    if (ch.to_stream != stream || std::find(told.begin(), told.end(), ch.from_site) != told.end())
      continue;
    told.push_back(ch.from_site);
    Time& last = last_notice_[ch.from_site * sc_.streams.size() + stream];
    last = std::max(
        last, now_ + static_cast<Time>(rng_.exponential(static_cast<double>(mv.notify_mean))));
    relocations_.push_back(Relocation{ch.from_site, stream, to});
    schedule(last, Kind::kRelocate, static_cast<std::uint32_t>(relocations_.size() - 1));
  }
}

void Driver::on_relocate(std::uint32_t r) {
  const Relocation& rel = relocations_[r];
  const StreamId id = sc_.streams[rel.stream].id;
  sites_[rel.sender_site]->relocate_receiver(id, rel.site);
  for (ChannelRun& ch : channels_)
    if (ch.to_stream == rel.stream && ch.from_site == rel.sender_site) ch.sender_view = rel.site;
  note(Kind::kRelocate, rel.sender_site, id, rel.site);
  trace("site " + std::to_string(rel.sender_site) + " learns stream " + std::to_string(id) +
        " is at site " + std::to_string(rel.site));
  drain(rel.sender_site);
}

}  // namespace mstream::sim::detail
