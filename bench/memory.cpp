// memory: heap bytes per idle channel and per idle path, measured in one process on the
// sans-IO core (proto::Transport), with datagrams handed between transports in memory.
// Method: warm up (so one-off allocations such as reused buffers are not charged to the
// channels), snapshot the heap in use (mallinfo2: arena bytes in use plus mmapped blocks, so
// malloc's own chunk overhead is counted, as it is in a real process), create many channels
// or paths, exchange one 64-byte message on each until every transport is idle, snapshot
// again, divide. Hash-table growth is charged to the entries that caused it, amortised.
//
// Baselines: a channel is compared with the target (256 bytes, "baseline":"target",
// a fixed number, not a measurement) and with a bare std::unordered_map entry keyed by the
// same ChannelKey, measured the same way in the same run: the least a per-channel table could
// cost. A path end (one site's state for one remote site) is compared with a bare map entry
// keyed by SiteId.
//
// Then, in a real session, bytes per idle stream with a C++ agent and per Tcl agent at the
// site that hosts them (session_memory.cpp, run_session_memory).
#include <malloc.h>

#include <array>
#include <memory>
#include <unordered_map>
#include <vector>

#include "bench/bench.hpp"
#include "proto/transport.hpp"

namespace mstream::bench {
namespace {

using proto::Time;
using proto::Transport;

constexpr double kChannelTargetBytes = 256;
// Each site's receiving stream has its own id: a channel is a (sender, receiver) stream pair,
// whatever the sites.
constexpr std::uint64_t receiver_stream(proto::SiteId site) { return 1'000'000'000ull + site; }

std::int64_t heap_in_use() {
  struct mallinfo2 mi = mallinfo2();
  return static_cast<std::int64_t>(mi.uordblks + mi.hblkhd);
}

// A set of transports exchanging datagrams in memory, indexed by site id.
class InMemoryNetwork {
 public:
  // Sites 1..count.
  explicit InMemoryNetwork(std::size_t count) {
    for (std::size_t i = 1; i <= count; ++i) {
      proto::TransportConfig config;
      config.path.mtu = 65000;  // as on loopback
      sites_.push_back(std::make_unique<Transport>(static_cast<proto::SiteId>(i), config));
    }
  }
  Transport& site(proto::SiteId id) { return *sites_.at(id - 1); }
  Time& now() { return now_; }

  // Moves datagrams, consumes deliveries and fires timers until every transport is idle and
  // nothing is left to send. False if that did not happen within a bounded amount of work.
  bool settle() {
    const Time horizon = now_ + proto::kSecond;
    for (int round = 0; round < 1'000'000; ++round) {
      if (move_everything()) continue;
      Time next = proto::kNever;
      bool idle = true;
      for (auto& t : sites_) {
        next = std::min(next, t->next_timeout());
        idle = idle && t->idle();
      }
      // Timers still armed while idle (delayed acks) are run a little further, then not:
      // an idle core may keep periodic timers, and they would never let us stop.
      if (next == proto::kNever || (idle && next > horizon)) return idle;
      now_ = std::max(now_, next);
      for (auto& t : sites_) {
        if (t->next_timeout() <= now_) t->on_timeout(now_);
      }
    }
    return false;
  }

 private:
  bool move_everything() {
    bool moved = false;
    for (auto& t : sites_) {
      while (t->poll_transmit(now_, &datagram_)) {
        moved = true;
        if (datagram_.to >= 1 && datagram_.to <= sites_.size()) {
          (void)site(datagram_.to).on_datagram(datagram_.bytes, now_);
        }
      }
      proto::Delivery d;
      while (t->poll_delivery(&d)) {
        moved = true;
        (void)t->consume(d.key, d.seq, now_);
      }
      proto::Released r;
      while (t->poll_released(&r)) moved = true;
      proto::Rejected rj;
      while (t->poll_rejected(&rj)) moved = true;
    }
    return moved;
  }

  std::vector<std::unique_ptr<Transport>> sites_;
  proto::OutDatagram datagram_;
  Time now_ = proto::kSecond;
};

// Appends one message from each of `senders` streams at site 1 to the receiving stream of
// each of the sites first_site .. first_site + sites - 1. Errors: those of append.
Status append_one_each(InMemoryNetwork& net, std::uint64_t first_sender, std::uint64_t senders,
                       proto::SiteId first_site, proto::SiteId sites) {
  std::array<std::uint8_t, 64> payload{};
  for (std::uint64_t s = 0; s < senders; ++s) {
    for (proto::SiteId r = first_site; r < first_site + sites; ++r) {
      auto seq = net.site(1).append(first_sender + s, receiver_stream(r), r, payload, net.now());
      if (!seq.ok()) return seq.status();
    }
  }
  return Status::ok_status();
}

// Bytes per channel: `count` channels from distinct sender streams at site 1 to one stream
// at site 2, after `warm` channels were made and settled.
Result<double> bytes_per_channel(std::uint32_t warm, std::uint32_t count) {
  InMemoryNetwork net(2);
  if (Status s = net.site(2).open_stream(receiver_stream(2)); !s.ok()) return s;
  if (Status s = append_one_each(net, 1, warm, 2, 1); !s.ok()) return s;
  if (!net.settle()) return Status::error(Status::Code::kInternal, "warm-up did not settle");
  const std::int64_t before = heap_in_use();
  if (Status s = append_one_each(net, 1 + warm, count, 2, 1); !s.ok()) return s;
  if (!net.settle()) return Status::error(Status::Code::kInternal, "channels did not settle");
  const std::int64_t after = heap_in_use();
  if (net.site(1).send_channel_count() != warm + count ||
      net.site(2).recv_channel_count() != warm + count) {
    return Status::error(Status::Code::kInternal, "channel count is not what was made");
  }
  return static_cast<double>(after - before) / count;
}

// Bytes per path end: one sender at site 1 to a stream at each of `count` other sites,
// after `warm` sites were used. Each new site adds two path ends (one at site 1, one at the
// remote) and one channel (both its halves); the channel's cost, measured separately, is
// subtracted and the rest shared between the two ends.
Result<double> bytes_per_path_end(std::uint32_t warm, std::uint32_t count, double per_channel) {
  InMemoryNetwork net(1 + warm + count);
  for (proto::SiteId s = 2; s <= 1 + warm + count; ++s) {
    if (Status st = net.site(s).open_stream(receiver_stream(s)); !st.ok()) return st;
  }
  if (Status s = append_one_each(net, 1, 1, 2, warm); !s.ok()) return s;
  if (!net.settle()) return Status::error(Status::Code::kInternal, "warm-up did not settle");
  const std::int64_t before = heap_in_use();
  if (Status s = append_one_each(net, 1, 1, 2 + warm, count); !s.ok()) return s;
  if (!net.settle()) return Status::error(Status::Code::kInternal, "paths did not settle");
  const std::int64_t after = heap_in_use();
  return (static_cast<double>(after - before) / count - per_channel) / 2;
}

// The heap cost of one entry of a bare std::unordered_map<Key, std::uint64_t>, measured the
// same way: the floor for any table keyed per channel or per site.
template <typename Key, typename Hash, typename MakeKey>
double bytes_per_map_entry(std::uint32_t warm, std::uint32_t count, MakeKey make_key) {
  std::unordered_map<Key, std::uint64_t, Hash> map;
  for (std::uint32_t i = 0; i < warm; ++i) map.emplace(make_key(i), i);
  const std::int64_t before = heap_in_use();
  for (std::uint32_t i = warm; i < warm + count; ++i) map.emplace(make_key(i), i);
  const std::int64_t after = heap_in_use();
  return static_cast<double>(after - before) / count;
}

}  // namespace

Result<std::vector<BenchResult>> run_memory(const BenchOptions& options) {
  // Not shortened by quick: the run takes milliseconds.
  const std::uint32_t channels = options.channels > 0 ? options.channels : 10000;
  // As many warm-up entries as measured ones: the hash tables then double about once during
  // the measured window, so their growth is charged at its long-run average rather than at
  // whatever point of a growth step the window happened to fall.
  const std::uint32_t warm_channels = channels;
  const std::uint32_t sites = std::max<std::uint32_t>(channels / 20, 10);
  const std::uint32_t warm_sites = sites;

  auto channel = bytes_per_channel(warm_channels, channels);
  if (!channel.ok()) return channel.status();
  auto path = bytes_per_path_end(warm_sites, sites, *channel);
  if (!path.ok()) return path.status();
  const double channel_map = bytes_per_map_entry<proto::ChannelKey, proto::ChannelKeyHash>(
      warm_channels, channels, [](std::uint32_t i) {
        return proto::ChannelKey{1 + i, receiver_stream(2)};
      });
  const double site_map = bytes_per_map_entry<proto::SiteId, std::hash<proto::SiteId>>(
      warm_sites, sites, [](std::uint32_t i) { return static_cast<proto::SiteId>(2 + i); });

  const std::string placement = "in-process";
  std::vector<BenchResult> out{
      {"memory", "bytes_per_idle_channel", *channel, "bytes", "target", kChannelTargetBytes, "",
       placement},
      {"memory", "bytes_per_idle_channel", *channel, "bytes", "bare_unordered_map_entry",
       channel_map, "", placement},
      {"memory", "bytes_per_idle_path_end", *path, "bytes", "bare_unordered_map_entry", site_map,
       "", placement},
  };
  // Streams and agents at a site of a real session (session_memory.cpp).
  auto streams = run_session_memory(options);
  if (!streams.ok()) return streams.status();
  out.insert(out.end(), streams->begin(), streams->end());
  return out;
}

}  // namespace mstream::bench
