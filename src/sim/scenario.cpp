#include "sim/scenario.hpp"

#include <algorithm>
#include <cstdio>

#include "sim/random.hpp"

namespace mstream::sim {
namespace {

using proto::kMicrosecond;
using proto::kMillisecond;
using proto::kSecond;

// The fault profiles a seed draws from, mildest first. Limits are per directed link.
struct Profile {
  const char* name;
  double weight;
  double max_loss, max_burst_enter, max_burst_loss, max_duplicate, max_reorder;
  double max_tail, max_corrupt, max_truncate, max_misroute;
  int max_partitions, max_clogs;
};

constexpr Profile kProfiles[] = {
    {"calm", 0.10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"lossy", 0.30, 0.10, 0.02, 0.6, 0.03, 0.10, 0.02, 0.01, 0.01, 0.0, 0, 1},
    {"partitions", 0.25, 0.03, 0.01, 0.5, 0.02, 0.05, 0.01, 0.005, 0.005, 0.0, 4, 3},
    {"chaos", 0.35, 0.30, 0.05, 0.9, 0.10, 0.30, 0.05, 0.05, 0.05, 0.02, 4, 4},
};

const Profile& pick_profile(Rng& rng) {
  double u = rng.unit();
  for (const Profile& p : kProfiles) {
    if (u < p.weight) return p;
    u -= p.weight;
  }
  return kProfiles[std::size(kProfiles) - 1];
}

// Most links get a share of the profile's maximum; some get none of a given fault.
double share(Rng& rng, double max) {
  if (max <= 0 || rng.chance(0.3)) return 0;
  return max * rng.unit();
}

proto::TransportConfig derive_transport(Rng& rng) {
  proto::TransportConfig c;
  proto::PathConfig& p = c.path;
  static constexpr std::size_t kMtus[] = {512, 1200, 1400, 1500, 4096, 9000};
  static constexpr std::uint32_t kWindows[] = {4, 8, 32, 256, 1024};
  static constexpr std::uint32_t kCwnds[] = {2, 4, 16, 64};
  static constexpr double kBackoffs[] = {0.5, 0.7, 0.85};
  static constexpr Time kMinRtos[] = {1 * kMillisecond, 5 * kMillisecond, 20 * kMillisecond};
  static constexpr Time kMaxRtos[] = {500 * kMillisecond, 2 * kSecond, 5 * kSecond};
  p.mtu = rng.pick(kMtus);
  p.max_window = rng.pick(kWindows);
  p.initial_cwnd = std::min(rng.pick(kCwnds), p.max_window);
  p.min_cwnd = static_cast<std::uint32_t>(rng.between(1, 2));
  p.loss_backoff = rng.pick(kBackoffs);
  p.min_rto = rng.pick(kMinRtos);
  p.max_rto = rng.pick(kMaxRtos);
  p.initial_rto = rng.log_between(p.min_rto, p.max_rto);
  p.retransmission = rng.chance(0.5) ? proto::RetransmissionClass::kSelectiveRepeat
                                     : proto::RetransmissionClass::kGoBackN;

  proto::ChannelConfig& ch = c.channel;
  static constexpr std::uint32_t kMaxMessages[] = {1, 2, 3, 8, 32, 4096};
  static constexpr std::size_t kMaxBytes[] = {1024, 4096, 16384, 65536};
  // Buffer bounds in halves of the largest message: 1 is a byte bound below one message,
  // which the channel must still accept into an empty buffer.
  static constexpr std::size_t kBufferHalves[] = {1, 2, 4, 8, 128};
  ch.max_unconsumed_messages = rng.pick(kMaxMessages);
  ch.max_message_bytes = rng.pick(kMaxBytes);
  ch.max_unconsumed_bytes = ch.max_message_bytes * rng.pick(kBufferHalves) / 2;
  return c;
}

LinkFaults derive_link(Rng& rng, const Profile& pr) {
  LinkFaults f;
  f.base_delay = rng.log_between(20 * kMicrosecond, 20 * kMillisecond);
  f.jitter = rng.chance(0.3) ? 0 : rng.between(0, f.base_delay);
  f.loss = share(rng, pr.max_loss);
  f.burst_enter = share(rng, pr.max_burst_enter);
  f.burst_leave = f.burst_enter > 0 ? 0.05 + 0.5 * rng.unit() : 1.0;
  f.burst_loss = f.burst_enter > 0 ? pr.max_burst_loss * (0.5 + 0.5 * rng.unit()) : 0.0;
  f.duplicate = share(rng, pr.max_duplicate);
  f.reorder = share(rng, pr.max_reorder);
  f.reorder_max = f.reorder > 0 ? rng.log_between(100 * kMicrosecond, 50 * kMillisecond) : 0;
  f.tail = share(rng, pr.max_tail);
  f.tail_alpha = 1.05 + 1.5 * rng.unit();
  f.tail_cap = f.tail > 0 ? rng.log_between(10 * kMillisecond, 3 * kSecond) : 0;
  f.corrupt = share(rng, pr.max_corrupt);
  f.truncate = share(rng, pr.max_truncate);
  f.misroute = share(rng, pr.max_misroute);
  return f;
}

void derive_windows(Rng& rng, const Profile& pr, NetworkPlan* net) {
  const std::uint32_t n = net->sites;
  const int partitions =
      pr.max_partitions ? static_cast<int>(rng.between(0, pr.max_partitions)) : 0;
  for (int i = 0; i < partitions; ++i) {
    FaultWindow w;
    w.kind = rng.chance(0.4) ? FaultWindow::Kind::kOneWayPartition : FaultWindow::Kind::kPartition;
    // A random non-empty proper subset of the sites.
    const std::uint64_t mask = 1 + rng.below((std::uint64_t{1} << n) - 2);
    for (SiteId s = 0; s < n; ++s)
      if (mask >> s & 1) w.side.push_back(s);
    w.start = rng.between(0, net->calm_start - 1);
    w.end = std::min(net->calm_start, w.start + rng.log_between(10 * kMillisecond, 3 * kSecond));
    net->windows.push_back(std::move(w));
  }
  const int clogs = pr.max_clogs ? static_cast<int>(rng.between(0, pr.max_clogs)) : 0;
  for (int i = 0; i < clogs; ++i) {
    FaultWindow w;
    w.kind = FaultWindow::Kind::kClog;
    w.from = static_cast<SiteId>(rng.below(n));
    w.to = static_cast<SiteId>(rng.below(n - 1));
    if (w.to >= w.from) ++w.to;
    w.start = rng.between(0, net->calm_start - 1);
    w.end = std::min(net->calm_start, w.start + rng.log_between(5 * kMillisecond, 2 * kSecond));
    net->windows.push_back(std::move(w));
  }
}

std::uint32_t derive_size(Rng& rng, const proto::TransportConfig& c, double p_large, double p_max) {
  const auto max = static_cast<std::uint32_t>(c.channel.max_message_bytes);
  const auto mtu = static_cast<std::uint32_t>(c.path.mtu);
  if (rng.chance(p_max)) {
    // At or just under the limit, where off-by-one errors live.
    return max - static_cast<std::uint32_t>(rng.between(0, std::min<std::uint32_t>(16, max)));
  }
  if (rng.chance(p_large)) {
    // Larger than one datagram: fragmentation and reassembly.
    const std::uint32_t hi = std::min(max, 4 * mtu);
    return static_cast<std::uint32_t>(rng.between(std::min(mtu - 64, hi), hi));
  }
  if (rng.chance(0.02)) return 0;
  return static_cast<std::uint32_t>(rng.log_between(1, std::min<std::uint32_t>(max, mtu / 2)));
}

ChannelPlan derive_channel(Rng& rng, const Scenario& s, std::size_t from, std::size_t to) {
  ChannelPlan ch;
  ch.from = from;
  ch.to = to;
  const std::uint32_t max_messages = s.transport.channel.max_unconsumed_messages;
  // A few bulk channels: thousands of small messages back to back, so packet numbers run
  // through the receive window many times over (where ring-buffer bookkeeping breaks).
  // Only with roomy buffers and a quick consumer, or they would outlast the liveness bound.
  if (max_messages >= 32 && s.streams[to].mean_processing <= kMillisecond &&
      rng.chance(0.03)) {
    const auto count = static_cast<std::size_t>(rng.between(1000, 3000));
    for (std::size_t i = 0; i < count; ++i)
      ch.sizes.push_back(static_cast<std::uint32_t>(rng.between(1, 64)));
    ch.start = rng.between(0, s.calm_start() / 2);
    return ch;
  }
  // Tiny buffers make every message a round trip; keep those channels short.
  const std::int64_t most = max_messages <= 3 ? 60 : 200;
  const auto count = static_cast<std::size_t>(rng.log_between(5, most));
  const double p_large = rng.chance(0.5) ? 0.1 * rng.unit() : 0.0;
  const double p_max = rng.chance(0.3) ? 0.03 * rng.unit() : 0.0;
  const double p_probe = rng.chance(0.2) ? 0.02 : 0.0;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (rng.chance(p_probe)) {
      ch.sizes.push_back(
          static_cast<std::uint32_t>(s.transport.channel.max_message_bytes + 1 + rng.below(64)));
    }
    const std::uint32_t size = derive_size(rng, s.transport, p_large, p_max);
    // A byte budget per channel keeps a seed fast whatever its sizes draw.
    if (total + size > (1u << 20)) break;
    total += size;
    ch.sizes.push_back(size);
  }
  // Appends start in the fault phase; at most 200 gaps of at most 50 ms on average keep the
  // planned schedule (~10 s) far inside the liveness bound that starts with the calm phase.
  ch.start = rng.between(0, s.calm_start() / 2);
  ch.mean_gap = rng.chance(0.2) ? 0 : rng.log_between(10 * kMicrosecond, 50 * kMillisecond);
  return ch;
}

void derive_moves(Rng& rng, const ScenarioOverrides& overrides, Scenario* s) {
  if (!overrides.moves || !rng.chance(0.4)) return;
  std::vector<std::size_t> receivers;
  for (const ChannelPlan& c : s->channels)
    if (std::find(receivers.begin(), receivers.end(), c.to) == receivers.end())
      receivers.push_back(c.to);
  if (receivers.empty()) return;
  std::vector<Time> times(static_cast<std::size_t>(rng.between(1, 6)));
  for (Time& t : times) t = rng.between(0, s->calm_start() - 1);
  std::sort(times.begin(), times.end());
  std::vector<SiteId> where;
  for (const StreamPlan& st : s->streams) where.push_back(st.site);
  for (Time t : times) {
    MovePlan m;
    m.at = t;
    m.stream = receivers[rng.below(receivers.size())];
    m.to = static_cast<SiteId>(rng.below(s->sites() - 1));
    if (m.to >= where[m.stream]) ++m.to;
    where[m.stream] = m.to;
    m.notify_mean = rng.log_between(10 * kMicrosecond, 100 * kMillisecond);
    s->moves.push_back(m);
  }
}

std::string ms(Time t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fms", static_cast<double>(t) / kMillisecond);
  return buf;
}

}  // namespace

std::string draw_fault_profile(Rng& rng, bool faults) {
  return faults ? pick_profile(rng).name : kProfiles[0].name;
}

void derive_faults(Rng& rng, std::string_view profile, NetworkPlan* net) {
  const Profile* pr = &kProfiles[0];
  for (const Profile& p : kProfiles)
    if (profile == p.name) pr = &p;
  net->links.assign(std::size_t{net->sites} * net->sites, LinkFaults{});
  for (SiteId a = 0; a < net->sites; ++a)
    for (SiteId b = 0; b < net->sites; ++b)
      if (a != b) net->link(a, b) = derive_link(rng, *pr);
  derive_windows(rng, *pr, net);
}

std::uint64_t Scenario::message_count() const {
  std::uint64_t n = 0;
  for (const ChannelPlan& c : channels)
    for (std::uint32_t size : c.sizes) n += size <= transport.channel.max_message_bytes;
  return n;
}

std::uint64_t Scenario::message_bytes() const {
  std::uint64_t n = 0;
  for (const ChannelPlan& c : channels)
    for (std::uint32_t size : c.sizes)
      if (size <= transport.channel.max_message_bytes) n += size;
  return n;
}

void draw_ack_timing(Rng& rng, bool legacy, proto::PathConfig* p) {
  if (legacy) {
    p->max_ack_delay = 250 * kMicrosecond;
    p->ack_burst_gap = proto::kNever;
    p->prompt_consumption_acks = false;
    p->send_in_ready_order = false;
    return;
  }
  // Mostly the defaults; sometimes the old prompt timing, a long delay, or no burst rule (every
  // second datagram acknowledged at once, however far apart).
  static constexpr Time kDelays[] = {250 * kMicrosecond, 2 * kMillisecond, 2 * kMillisecond,
                                     10 * kMillisecond};
  p->max_ack_delay = rng.pick(kDelays);
  if (rng.chance(0.2)) p->ack_burst_gap = proto::kNever;
  if (rng.chance(0.2)) p->prompt_consumption_acks = false;
  if (rng.chance(0.2)) p->send_in_ready_order = false;
  // How a path that showed loss acknowledges: sometimes a short memory of it, or a delay
  // between the two (the ends' lossy states then disagree more often).
  if (rng.chance(0.2)) p->loss_memory = 10 * kMillisecond;
  if (rng.chance(0.2)) p->lossy_ack_delay = 1 * kMillisecond;
}

std::string describe_ack_timing(const proto::PathConfig& p) {
  return " ack_delay=" + ms(p.max_ack_delay) + " burst_gap=" +
         (p.ack_burst_gap == proto::kNever ? std::string("none") : ms(p.ack_burst_gap)) +
         (p.prompt_consumption_acks ? "" : " consumption_acks=wait") +
         (p.send_in_ready_order ? "" : " send_order=table") +
         " lossy_delay=" + ms(p.lossy_ack_delay) + " loss_memory=" + ms(p.loss_memory);
}

Scenario derive_scenario(std::uint64_t seed, const ScenarioOverrides& overrides) {
  Scenario s;
  s.seed = seed;
  Rng rng(seed);
  // Separate streams per concern: a change to how links are drawn does not reshuffle the
  // workload of every seed, and the reverse.
  Rng config_rng = rng.fork();
  Rng net_rng = rng.fork();
  Rng work_rng = rng.fork();
  Rng ack_rng = rng.fork();  // forked after the above: their draws stay those of earlier versions

  s.transport = derive_transport(config_rng);
  draw_ack_timing(ack_rng, overrides.legacy_acks, &s.transport.path);

  s.profile = draw_fault_profile(net_rng, overrides.faults);
  NetworkPlan& net = s.network;
  net.sites = static_cast<std::uint32_t>(net_rng.between(2, 8));
  net.calm_start = net_rng.log_between(200 * kMillisecond, 5 * kSecond);
  derive_faults(net_rng, s.profile, &net);

  for (SiteId site = 0; site < net.sites; ++site) {
    const auto per_site = work_rng.between(1, 3);
    for (std::int64_t k = 0; k < per_site; ++k) {
      StreamPlan st;
      st.id = proto::StreamId{site} * 100 + static_cast<proto::StreamId>(k) + 1;
      st.site = site;
      st.mean_processing =
          work_rng.chance(0.3) ? 0 : work_rng.log_between(10 * kMicrosecond, 20 * kMillisecond);
      st.batch = work_rng.chance(0.7) ? 1 : static_cast<std::uint32_t>(work_rng.between(2, 16));
      if (work_rng.chance(0.2)) {
        st.stall_start = work_rng.between(0, net.calm_start - 1);
        st.stall_end = st.stall_start + work_rng.log_between(10 * kMillisecond, 2 * kSecond);
      }
      s.streams.push_back(st);
    }
  }

  const auto wanted = static_cast<std::size_t>(work_rng.log_between(1, 20));
  for (std::size_t attempt = 0; s.channels.size() < wanted && attempt < 4 * wanted; ++attempt) {
    const std::size_t from = work_rng.below(s.streams.size());
    // A receiver at another site: channels within a site do not touch the network.
    std::vector<std::size_t> remote;
    for (std::size_t i = 0; i < s.streams.size(); ++i)
      if (s.streams[i].site != s.streams[from].site) remote.push_back(i);
    const std::size_t to = remote[work_rng.below(remote.size())];
    const bool taken = std::any_of(s.channels.begin(), s.channels.end(),
                                   [&](const auto& c) { return c.from == from && c.to == to; });
    if (!taken) s.channels.push_back(derive_channel(work_rng, s, from, to));
  }
  derive_moves(work_rng, overrides, &s);
  if (net_rng.chance(0.25)) {
    for (SiteId a = 0; a < net.sites; ++a)
      for (SiteId b = 0; b < net.sites; ++b)
        if (a != b && net_rng.chance(0.5))
          s.class_overrides.push_back({a, b,
                                       net_rng.chance(0.5)
                                           ? proto::RetransmissionClass::kSelectiveRepeat
                                           : proto::RetransmissionClass::kGoBackN});
  }
  return s;
}

std::string describe(const Scenario& s) {
  const proto::PathConfig& p = s.transport.path;
  const proto::ChannelConfig& c = s.transport.channel;
  std::string out;
  auto line = [&out](const std::string& l) { out += l + "\n"; };
  line("seed " + std::to_string(s.seed) + " profile " + s.profile + " sites " +
       std::to_string(s.sites()) + " fault phase " + ms(s.calm_start()) + " liveness bound " +
       ms(s.liveness_bound));
  line("path: mtu=" + std::to_string(p.mtu) +
       " class=" + proto::retransmission_class_name(p.retransmission) +
       " initial_cwnd=" + std::to_string(p.initial_cwnd) +
       " min_cwnd=" + std::to_string(p.min_cwnd) + " max_window=" + std::to_string(p.max_window) +
       " loss_backoff=" + std::to_string(p.loss_backoff) + " rto=" + ms(p.initial_rto) + " in [" +
       ms(p.min_rto) + ", " + ms(p.max_rto) + "]" + describe_ack_timing(p));
  line("channel: max_unconsumed_messages=" + std::to_string(c.max_unconsumed_messages) +
       " max_unconsumed_bytes=" + std::to_string(c.max_unconsumed_bytes) +
       " max_message_bytes=" + std::to_string(c.max_message_bytes));
  for (SiteId a = 0; a < s.sites(); ++a)
    for (SiteId b = 0; b < s.sites(); ++b)
      if (a != b)
        line("link " + std::to_string(a) + "->" + std::to_string(b) + ": " +
             describe(s.network.link(a, b)));
  for (const FaultWindow& w : s.network.windows) line(describe(w));
  for (const StreamPlan& st : s.streams) {
    std::string l = "stream " + std::to_string(st.id) + " at site " + std::to_string(st.site) +
                    ": processing ~" + ms(st.mean_processing) + " batch " +
                    std::to_string(st.batch);
    if (st.stall_end > st.stall_start)
      l += " stalls [" + ms(st.stall_start) + ", " + ms(st.stall_end) + ")";
    line(l);
  }
  for (std::size_t i = 0; i < s.channels.size(); ++i) {
    const ChannelPlan& ch = s.channels[i];
    std::uint64_t bytes = 0, fragmented = 0, probes = 0, count = 0;
    std::uint32_t largest = 0;
    for (std::uint32_t size : ch.sizes) {
      if (size > c.max_message_bytes) {
        ++probes;
        continue;
      }
      ++count;
      bytes += size;
      fragmented += size > p.mtu;
      largest = std::max(largest, size);
    }
    line("channel " + std::to_string(i) + " " + std::to_string(s.streams[ch.from].id) + "->" +
         std::to_string(s.streams[ch.to].id) + ": " + std::to_string(count) + " messages, " +
         std::to_string(bytes) + " bytes, largest " + std::to_string(largest) + ", " +
         std::to_string(fragmented) + " over mtu, " + std::to_string(probes) +
         " too-large probes, start " + ms(ch.start) + ", mean gap " + ms(ch.mean_gap));
  }
  for (const MovePlan& m : s.moves)
    line("move stream " + std::to_string(s.streams[m.stream].id) + " to site " +
         std::to_string(m.to) + " at " + ms(m.at) + ", senders told after ~" + ms(m.notify_mean));
  for (const Scenario::ClassOverride& o : s.class_overrides)
    line("path " + std::to_string(o.site) + "->" + std::to_string(o.peer) + " class " +
         proto::retransmission_class_name(o.retransmission));
  line("total: " + std::to_string(s.channels.size()) + " channels, " +
       std::to_string(s.message_count()) + " messages, " + std::to_string(s.message_bytes()) +
       " bytes");
  return out;
}

}  // namespace mstream::sim
