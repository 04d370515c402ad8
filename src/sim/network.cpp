#include "sim/network.hpp"

#include <algorithm>
#include <cstdio>

#include "wire/datagram.hpp"

namespace mstream::sim {
namespace {

std::string ms(Time t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fms", static_cast<double>(t) / proto::kMillisecond);
  return buf;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

std::string describe(const LinkFaults& f) {
  return "delay=" + ms(f.base_delay) + "+U(0," + ms(f.jitter) + ") loss=" + num(f.loss) +
         " burst(enter=" + num(f.burst_enter) + ",leave=" + num(f.burst_leave) +
         ",loss=" + num(f.burst_loss) + ") dup=" + num(f.duplicate) + " reorder=" + num(f.reorder) +
         "/" + ms(f.reorder_max) + " tail=" + num(f.tail) + "/alpha" + num(f.tail_alpha) + "/cap" +
         ms(f.tail_cap) + " corrupt=" + num(f.corrupt) + " truncate=" + num(f.truncate) +
         " misroute=" + num(f.misroute);
}

std::string describe(const FaultWindow& w) {
  std::string s;
  switch (w.kind) {
    case FaultWindow::Kind::kPartition:
      s = "partition {";
      break;
    case FaultWindow::Kind::kOneWayPartition:
      s = "one-way partition from {";
      break;
    case FaultWindow::Kind::kClog:
      s = "clog " + std::to_string(w.from) + "->" + std::to_string(w.to);
      break;
  }
  if (w.kind != FaultWindow::Kind::kClog) {
    for (std::size_t i = 0; i < w.side.size(); ++i) s += (i ? "," : "") + std::to_string(w.side[i]);
    s += "} | rest";
  }
  return s + " during [" + ms(w.start) + ", " + ms(w.end) + ")";
}

SimNetwork::SimNetwork(NetworkPlan plan, Rng rng)
    : plan_(std::move(plan)),
      rng_(rng),
      bad_state_(plan_.sites * plan_.sites, 0),
      fifo_tail_(plan_.sites * plan_.sites, 0),
      blocked_(plan_.sites * plan_.sites),
      clogs_(plan_.sites * plan_.sites) {
  for (const FaultWindow& w : plan_.windows) {
    if (w.kind == FaultWindow::Kind::kClog) {
      clogs_[index(w.from, w.to)].push_back({w.start, w.end});
      continue;
    }
    std::vector<bool> inside(plan_.sites, false);
    for (SiteId s : w.side) inside[s] = true;
    for (SiteId a = 0; a < plan_.sites; ++a) {
      for (SiteId b = 0; b < plan_.sites; ++b) {
        if (!inside[a] || inside[b]) continue;
        blocked_[index(a, b)].push_back({w.start, w.end});
        if (w.kind == FaultWindow::Kind::kPartition)
          blocked_[index(b, a)].push_back({w.start, w.end});
      }
    }
  }
}

bool SimNetwork::partitioned(SiteId from, SiteId to, Time t) const {
  for (const Span& s : blocked_[index(from, to)])
    if (t >= s.start && t < s.end) return true;
  return false;
}

Time SimNetwork::clogged_until(SiteId from, SiteId to, Time t) const {
  Time until = t;
  // Overlapping clogs chain: a datagram released by one may land inside the next.
  for (bool moved = true; moved;) {
    moved = false;
    for (const Span& s : clogs_[index(from, to)]) {
      if (until >= s.start && until < s.end) {
        until = s.end;
        moved = true;
      }
    }
  }
  return until;
}

Time SimNetwork::arrival(std::size_t link, const LinkFaults& f, Time t, bool faulty,
                         bool duplicate) {
  Time d = f.base_delay;
  if (f.jitter > 0) d += rng_.between(0, f.jitter);
  bool own_route = duplicate;
  if (faulty && rng_.chance(f.tail)) {
    double extra = rng_.pareto(static_cast<double>(f.base_delay), f.tail_alpha) -
                   static_cast<double>(f.base_delay);
    d += std::min(static_cast<Time>(extra), f.tail_cap);
    ++stats_.tail_delayed;
    own_route = true;
  }
  if (faulty && f.reorder_max > 0 && rng_.chance(f.reorder)) {
    d += rng_.between(0, f.reorder_max);
    ++stats_.reordered;
    own_route = true;
  }
  if (own_route) return t + d;
  // In order behind the previous datagram of the link; equal times keep the send order
  // because the simulator breaks ties by scheduling order.
  fifo_tail_[link] = std::max(fifo_tail_[link], t + d);
  return fifo_tail_[link];
}

bool SimNetwork::lost(std::size_t link, const LinkFaults& f) {
  // The burst state moves on every datagram, lost or not, so bursts last in datagrams.
  std::uint8_t& bad = bad_state_[link];
  if (bad) {
    if (rng_.chance(f.burst_leave)) bad = 0;
  } else if (rng_.chance(f.burst_enter)) {
    bad = 1;
  }
  if (bad && rng_.chance(f.burst_loss)) {
    ++stats_.lost_burst;
    return true;
  }
  if (rng_.chance(f.loss)) {
    ++stats_.lost_random;
    return true;
  }
  return false;
}

void SimNetwork::damage(const LinkFaults& f, Arrival* a) {
  wire::Bytes& b = a->bytes;
  if (b.empty()) return;
  if (rng_.chance(f.corrupt)) {
    // A burst of 1..4 bytes wholly inside the fixed header or wholly inside the checksummed
    // rest, so that detection is certain (see the header comment).
    std::size_t lo = 0, hi = std::min(b.size(), wire::kFixedHeaderSize);
    if (b.size() > wire::kFixedHeaderSize && rng_.chance(0.8)) {
      lo = wire::kFixedHeaderSize;
      hi = b.size();
    }
    std::size_t len = std::min<std::size_t>(hi - lo, 1 + rng_.below(4));
    std::size_t at = lo + rng_.below(hi - lo - len + 1);
    for (std::size_t i = 0; i < len; ++i) {
      std::uint8_t flip = static_cast<std::uint8_t>(rng_.next());
      // The first byte of the burst always changes, so the datagram really is damaged.
      if (i == 0 && flip == 0) flip = 0x01;
      b[at + i] ^= flip;
    }
    a->damage = Damage::kCorrupted;
    ++stats_.corrupted;
    return;
  }
  if (rng_.chance(f.truncate)) {
    b.resize(rng_.below(b.size()));
    a->damage = Damage::kTruncated;
    ++stats_.truncated;
  }
}

void SimNetwork::transmit(SiteId from, SiteId to, const wire::Bytes& bytes, Time now,
                          std::vector<Arrival>* out) {
  ++stats_.sent;
  const bool faulty = now < plan_.calm_start;
  const LinkFaults& f = plan_.link(from, to);
  const std::size_t link = index(from, to);
  if (faulty) {
    if (partitioned(from, to, now)) {
      ++stats_.lost_partition;
      return;
    }
    if (lost(link, f)) return;
  }
  const Time released = faulty ? clogged_until(from, to, now) : now;
  if (released != now) ++stats_.clogged;
  const int copies = faulty && rng_.chance(f.duplicate) ? 2 : 1;
  if (copies == 2) ++stats_.duplicated;
  for (int c = 0; c < copies; ++c) {
    Arrival a;
    a.at = arrival(link, f, released, faulty, c == 1);
    a.to = to;
    a.bytes = bytes;
    if (faulty) {
      damage(f, &a);
      if (a.damage == Damage::kNone && plan_.sites > 2 && rng_.chance(f.misroute)) {
        SiteId other = static_cast<SiteId>(rng_.below(plan_.sites - 2));
        // Any site but the sender and the addressee.
        for (SiteId skip : {std::min(from, to), std::max(from, to)})
          if (other >= skip) ++other;
        a.to = other;
        a.damage = Damage::kMisrouted;
        ++stats_.misrouted;
      }
    }
    ++stats_.arrivals;
    out->push_back(std::move(a));
  }
}

}  // namespace mstream::sim
