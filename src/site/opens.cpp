// Opens (seed 004 §2.2, figure 3: streams are opened like sockets). A sender appends only to a
// stream it has opened; its first append to another opens it, with the checks of stream_open.
// Where a lying member cannot skip it: the receiving stream's site takes a channel only from
// a sender the leader told it opened the stream (wire::Opened), and that set travels with the
// stream (Arrive::opened) and survives its recoveries (Recover::opened). The sending side
// keeps which pairs it opened, so that only a first append waits.

#include <algorithm>

#include "site/site_core.hpp"

namespace mstream::site {

bool SiteCore::has_opened(Hosted* h, proto::ChannelKey key) const {
  // A channel out of a stream that moved here was opened where it started.
  return opened_.contains(key) || (h && h->out_peers.contains(key.to));
}

void SiteCore::append_opened(Hosted* h, StreamId from, const std::string& to, std::string message,
                             const std::string& from_name) {
  const wire::StreamRecord* rec = view_->directory.find(to);
  // Behind earlier appends that wait for an open (brought here by a move, say), even where
  // this site knows the pair opened: per-pair FIFO.
  if (rec && ((!opening_.empty() && opening_.contains({from, rec->id})) ||
              !has_opened(h, {from, rec->id}))) {
    OpenWait& w = open_for(h, from, rec->id, to);
    w.messages.push_back(std::move(message));
    return;
  }
  if (h && h->durable) {
    hold_append(*h, to, message, from_name);
    return;
  }
  Result<proto::Seq> r = append_from(from, to, message, false);
  if (!r.ok())
    report_error("site " + std::to_string(options_.self) + ": stream_append from stream \"" +
                 from_name + "\": " + r.status().message());
}

// One open request per pair at a time; appends wait behind it in order. They go with the
// stream if it moves (Arrive::waiting) and are part of its checkpoints: they are what its
// handlers did, only not sent yet.
SiteCore::OpenWait& SiteCore::open_for(Hosted* h, StreamId from, StreamId to,
                                       const std::string& name) {
  const proto::ChannelKey key{from, to};
  auto [it, fresh] = opening_.try_emplace(key);
  if (!fresh) return it->second;
  it->second.name = name;
  if (h) it->second.from_name = h->rec.name;
  ask_open(key, name);
  return it->second;
}

void SiteCore::ask_open(proto::ChannelKey key, const std::string& name) {
  const std::uint64_t req = view_->next_req.fetch_add(1, std::memory_order_relaxed);
  if (!options_.shell) {  // a handler's: counted for quiescence, its denial reported as such
    ++counters_.requests;
    handler_requests_.insert(req);
  }
  open_requests_[req] = key;
  send_numbered_request(req, wire::OpenReq{0, name, key.from});
}

void SiteCore::on_open_answer(proto::ChannelKey key, const wire::Reply& r) {
  auto it = opening_.find(key);
  if (it == opening_.end()) return;
  if (r.code == static_cast<std::uint64_t>(Status::Code::kUnavailable)) {
    // A site failed while the open was under way (the stream's, or a controller's): no
    // verdict. Ask again; the appends keep waiting.
    ask_open(key, it->second.name);
    return;
  }
  OpenWait w = std::move(it->second);
  opening_.erase(it);
  auto host = hosted_.find(key.from);
  Hosted* h = host == hosted_.end() ? nullptr : host->second.get();
  if (options_.shell && key.from == sender_id() && r.code != 0) open_denied_[key.to] = r.text;
  if (r.code == 0 && h && (h->departing || (h->durable && h->durable->in_flight))) {
    // They leave with the stream (take_waiting); flush_opened sends them if it stays. A
    // durable stream's checkpoint under way counts them as waiting (waiting_of): held now,
    // they would be in neither it nor, should it be the last, anywhere.
    opened_.insert(key);
    w.answered = true;
    opening_[key] = std::move(w);
    return;
  }
  if (r.code == 0) {
    opened_.insert(key);
    for (std::string& m : w.messages) append_opened(h, key.from, w.name, std::move(m), w.from_name);
    // Its sender was destroyed while the open was under way: what it appended goes all the
    // same, and the channel goes once drained.
    if (!h && !is_control(key.from)) {
      counters_.opened_after_destroy += !w.messages.empty();
      retire_sender(key.from, {key.to});
      if (!opens_waiting(key.from)) transport_.set_sender_origin(key.from, 0);
    }
  } else if (!h && !is_control(key.from) && !opens_waiting(key.from)) {
    // A destroyed sender's last open was denied: its numbering goes now (destroy_here kept it).
    transport_.set_sender_origin(key.from, 0);
  }
  if (r.code != 0 && !w.messages.empty()) {
    // Never appended: nothing to count as discarded. The denial itself reaches the shells as
    // the handler's request's error (LeaderCore::finish).
    report_error("site " + std::to_string(options_.self) + ": " +
                 std::to_string(w.messages.size()) + " message(s) from stream \"" + w.from_name +
                 "\" to \"" + w.name + "\" dropped: " + r.text);
  }
  if (h && h->durable) maybe_checkpoint(*h);
}

void SiteCore::flush_opened(Hosted& h) {
  std::vector<proto::ChannelKey> answered;
  for (const auto& [key, w] : opening_)
    if (key.from == h.rec.id && w.answered) answered.push_back(key);
  for (const proto::ChannelKey& key : answered) {
    OpenWait w = std::move(opening_[key]);
    opening_.erase(key);
    for (std::string& m : w.messages)
      append_opened(&h, key.from, w.name, std::move(m), w.from_name);
  }
  if (h.durable && !answered.empty()) maybe_checkpoint(h);
}

std::vector<wire::WaitingAppends> SiteCore::take_waiting(StreamId from) {
  std::vector<wire::WaitingAppends> out = waiting_of(from);
  for (auto it = opening_.begin(); it != opening_.end();)
    it = it->first.from == from ? opening_.erase(it) : std::next(it);
  return out;  // the requests' answers then find nothing waiting here
}

std::vector<wire::WaitingAppends> SiteCore::waiting_of(StreamId from) const {
  std::vector<wire::WaitingAppends> out;
  for (const auto& [key, w] : opening_) {
    if (key.from != from) continue;
    out.push_back({key.to, w.name, {w.messages.begin(), w.messages.end()}});
  }
  return out;
}

bool SiteCore::opens_waiting(StreamId from) const {
  return std::any_of(opening_.begin(), opening_.end(),
                     [from](const auto& o) { return o.first.from == from; });
}

void SiteCore::wait_again(Hosted& h, std::vector<wire::WaitingAppends> waiting) {
  for (wire::WaitingAppends& w : waiting) {
    OpenWait& again = open_for(&h, h.rec.id, w.to, w.name);
    for (std::string& m : w.messages) again.messages.push_back(std::move(m));
  }
}

// The receiver's site refused a channel of ours as never opened: its set lost our open (it
// cannot, as long as the leader's records hold). Open again; the channel is re-sent after.
void SiteCore::on_not_opened(proto::ChannelKey key) {
  opened_.erase(key);
  const wire::StreamRecord* rec = view_->directory.find(key.to);
  if (!rec || opening_.contains(key)) return;
  auto host = hosted_.find(key.from);
  (void)open_for(host == hosted_.end() ? nullptr : host->second.get(), key.from, key.to, rec->name);
}

// The receiving side: a sender's first frame makes a channel only if it opened the stream.
bool SiteCore::sender_opened(proto::ChannelKey key) const {
  if (is_control(key.to)) return true;
  auto it = hosted_.find(key.to);
  if (it == hosted_.end()) return true;  // not here: refused as such
  const std::vector<StreamId>& o = it->second->opened;
  return std::find(o.begin(), o.end(), key.from) != o.end();
}

void SiteCore::on_opened(const wire::Opened& m) {
  auto it = hosted_.find(m.stream);
  if (it == hosted_.end()) {
    reply_installed(wire::Installed{m.stream, 0, 0,
                                    static_cast<std::uint64_t>(Status::Code::kNotFound),
                                    "stream not at site " + std::to_string(options_.self)});
    return;
  }
  Hosted& h = *it->second;
  if (std::find(h.opened.begin(), h.opened.end(), m.opener) == h.opened.end())
    h.opened.push_back(m.opener);
  reply_installed(wire::Installed{m.stream, h.rec.epoch, 0, 0, {}});
}

}  // namespace mstream::site
