#pragma once
// A few Transports in one process joined by a network the test controls: it carries each
// datagram from poll_transmit() of one site to on_datagram() of its addressee, may lose or
// reorder them, and advances a simulated clock to the next timer when nothing moves.
// Thread-safety: none; one test thread.

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "proto/transport.hpp"
#include "wire/datagram.hpp"

namespace mstream::proto::testing {

// The sites and the channel most tests use.
inline constexpr SiteId kA = 1, kB = 2, kC = 3;
inline constexpr ChannelKey kAB{100, 200};

class Cluster {
 public:
  explicit Cluster(std::vector<SiteId> ids, TransportConfig cfg = {}) {
    for (SiteId id : ids) sites_[id] = std::make_unique<Transport>(id, cfg);
  }

  Transport& operator[](SiteId id) { return *sites_.at(id); }
  Time now = kSecond;

  // Site `id` crashes and a new process of it starts under `boot`: its transport is new, what
  // it had delivered is forgotten, and the datagrams on their way to it are lost.
  Transport& restart(SiteId id, std::uint32_t boot, TransportConfig cfg = {}) {
    sites_[id] = std::make_unique<Transport>(id, cfg);
    sites_[id]->set_boot(boot);
    delivered.erase(id);
    std::erase_if(in_flight_, [id](const OutDatagram& d) { return d.to == id; });
    return *sites_[id];
  }

  // Returns true to lose the datagram (called once per transmission, in send order).
  std::function<bool(const OutDatagram&)> lose;
  // Hands each batch of datagrams over in reverse order.
  bool reverse = false;
  // Consumes every delivered message at once.
  bool auto_consume = true;

  std::map<SiteId, std::vector<Delivery>> delivered;
  std::map<SiteId, std::vector<Released>> released;
  std::map<SiteId, std::vector<Rejected>> rejected;
  std::vector<OutDatagram> sent;  // every datagram any site sent, in order

  Result<Seq> append(SiteId at, ChannelKey key, SiteId to_site, const wire::Bytes& payload) {
    return (*this)[at].append(key.from, key.to, to_site, payload, now);
  }

  // Collects what every site has to send now.
  void transmit() {
    for (auto& [id, t] : sites_) {
      OutDatagram out;
      while (t->poll_transmit(now, &out)) {
        EXPECT_LE(out.bytes.size(), t->config().path.mtu);
        sent.push_back(out);
        in_flight_.push_back(out);
      }
    }
  }

  // Hands over every datagram in flight (losing those `lose` picks).
  void deliver() {
    std::vector<OutDatagram> batch;
    batch.swap(in_flight_);
    if (reverse) std::reverse(batch.begin(), batch.end());
    for (const OutDatagram& d : batch) {
      if (lose && lose(d)) continue;
      auto it = sites_.find(d.to);
      if (it != sites_.end()) (void)it->second->on_datagram(d.bytes, now);
    }
  }

  void drain() {
    for (auto& [id, t] : sites_) {
      Delivery d;
      while (t->poll_delivery(&d)) {
        if (auto_consume) {
          EXPECT_TRUE(t->consume(d.key, d.seq, now, d.origin).ok());
        }
        delivered[id].push_back(d);
      }
      Released r;
      while (t->poll_released(&r)) released[id].push_back(r);
      Rejected j;
      while (t->poll_rejected(&j)) rejected[id].push_back(j);
    }
  }

  // One exchange; returns whether any datagram moved.
  bool step() {
    transmit();
    bool moved = !in_flight_.empty();
    deliver();
    drain();
    return moved;
  }

  // Steps, firing timers when nothing moves, until `done` or `budget` of simulated time.
  bool run_until(const std::function<bool()>& done, Time budget = 60 * kSecond) {
    const Time end = now + budget;
    for (int i = 0; i < 200000 && now <= end; ++i) {
      if (done()) return true;
      if (step()) continue;
      Time next = kNever;
      for (auto& [id, t] : sites_) next = std::min(next, t->next_timeout());
      if (next == kNever) return done();
      now = std::max(now, next);
      for (auto& [id, t] : sites_) {
        if (t->next_timeout() <= now) t->on_timeout(now);
      }
    }
    return done();
  }

  // Runs until every site is idle and nothing is in flight.
  bool settle(Time budget = 60 * kSecond) {
    return run_until(
        [this] {
          if (!in_flight_.empty()) return false;
          for (auto& [id, t] : sites_) {
            if (!t->idle()) return false;
          }
          return true;
        },
        budget);
  }

  // Advances the clock by `dt`, exchanging and firing timers on the way.
  void run_for(Time dt) {
    (void)run_until([] { return false; }, dt);
  }

  std::vector<Seq> delivered_seqs(SiteId at, ChannelKey key) const {
    std::vector<Seq> out;
    auto it = delivered.find(at);
    if (it == delivered.end()) return out;
    for (const Delivery& d : it->second) {
      if (d.key == key) out.push_back(d.seq);
    }
    return out;
  }

  Seq released_up_to(SiteId at, ChannelKey key) const {
    Seq up_to = 0;
    auto it = released.find(at);
    if (it == released.end()) return 0;
    for (const Released& r : it->second) {
      if (r.key == key) up_to = std::max(up_to, r.up_to);
    }
    return up_to;
  }

  std::vector<OutDatagram>& in_flight() { return in_flight_; }

 private:
  std::map<SiteId, std::unique_ptr<Transport>> sites_;
  std::vector<OutDatagram> in_flight_;
};

inline wire::Bytes pattern(std::size_t n, std::uint64_t tag) {
  wire::Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 131 + tag * 7 + 1);
  return b;
}

inline std::vector<Seq> one_to(Seq n) {
  std::vector<Seq> v;
  for (Seq s = 1; s <= n; ++s) v.push_back(s);
  return v;
}

}  // namespace mstream::proto::testing
