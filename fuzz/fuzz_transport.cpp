// libFuzzer target for proto::Transport, the consumer of every decoded datagram.
//
// Two Transports (sites 1 and 2) talk through a network the fuzzer controls: it picks which
// datagram arrives next, drops, duplicates and corrupts them, advances time, appends,
// consumes, relocates, and injects datagrams of its own: raw bytes, well-formed headers sealed
// around arbitrary frame bytes, and frames built with the encoders from fuzzer-chosen fields.
//
// Checked on every input: no crash or sanitizer report; a datagram that does not decode is
// counted as malformed, a misaddressed one as misaddressed; every datagram sent decodes, is
// addressed from its sender and fits the MTU; each channel delivers seq 1, 2, 3... once each.
// When nothing was forged and no receiver moved, the network (lossy or not) is finally made
// reliable, and every appended message must be delivered with its bytes and released.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "proto/transport.hpp"
#include "fuzz_check.hpp"
#include "wire/datagram.hpp"

namespace {

using namespace mstream;
using namespace mstream::proto;

using mstream::fuzz::check;

// MSTREAM_FUZZ_TRACE=1 prints each operation, to turn a crash input into a unit test.
const bool kTrace = std::getenv("MSTREAM_FUZZ_TRACE") != nullptr;

template <typename... Args>
void trace(const char* fmt, Args... args) {
  if (kTrace) std::fprintf(stderr, fmt, args...);
}

// Reads the input front to back; past the end every read is 0, so any input is a program.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  wire::Bytes bytes(std::size_t n) {
    n = std::min(n, size_ - std::min(pos_, size_));
    wire::Bytes out(data_ + pos_, data_ + pos_ + n);
    pos_ += n;
    return out;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

constexpr SiteId kSiteA = 1, kSiteB = 2;
// Channels the fuzzer may append to: {from, to, site of `to`}. Stream 202 is open nowhere.
struct Route {
  int sender;  // index of the transport appending
  ChannelKey key;
  SiteId site;
};
constexpr Route kRoutes[] = {
    {0, {100, 200}, kSiteB},
    {0, {101, 201}, kSiteB},
    {1, {200, 100}, kSiteA},
    {0, {100, 202}, kSiteB},
};
constexpr StreamId kStreams[] = {0, 100, 101, 200, 201, 202, 999};

struct Packet {
  SiteId to;
  wire::Bytes bytes;
};

class Harness {
 public:
  explicit Harness(std::uint8_t flags) {
    TransportConfig cfg;
    if (flags & 1) cfg.path.retransmission = RetransmissionClass::kGoBackN;
    if (flags & 2) cfg.path.mtu = 200;
    if (flags & 4) cfg.channel.max_unconsumed_messages = 4;
    if (flags & 8) cfg.channel.max_message_bytes = 2000;
    if (flags & 16) cfg.path.initial_cwnd = cfg.path.min_cwnd;
    t_[0] = std::make_unique<Transport>(kSiteA, cfg);
    t_[1] = std::make_unique<Transport>(kSiteB, cfg);
    (void)t_[0]->open_stream(100);
    (void)t_[1]->open_stream(200);
    (void)t_[1]->open_stream(201);
    membership_ = (flags & 32) != 0;
    if (membership_) {
      // Membership on: each knows only the other, so forged sources are refused.
      t_[0]->admit_site(kSiteB);
      t_[1]->admit_site(kSiteA);
    }
  }

  void run(Input& in);
  void quiesce();
  bool checkable() const { return !forged_ && !disturbed_; }

 private:
  Transport& t(int i) { return *t_[i]; }
  void append(Input& in);
  void transmit(int who);
  void network(Input& in);
  void inject(int who, const wire::Bytes& bytes);
  void inject_raw(Input& in);
  void inject_framed(Input& in);
  void inject_structured(Input& in);
  void advance(Time dt);
  bool drain(int who, bool consume_all, Input* in);

  std::unique_ptr<Transport> t_[2];
  std::vector<Packet> net_;
  std::map<std::pair<StreamId, StreamId>, std::vector<wire::Bytes>> appended_;
  std::map<std::pair<StreamId, StreamId>, Seq> delivered_;
  std::map<std::pair<StreamId, StreamId>, std::uint32_t> delivered_origin_;
  std::map<std::pair<StreamId, StreamId>, Seq> released_;
  Time now_ = kSecond;
  bool forged_ = false;
  bool disturbed_ = false;
  bool membership_ = false;
};

void Harness::append(Input& in) {
  const Route& r = kRoutes[in.u8() % std::size(kRoutes)];
  std::size_t len = in.u16() % 3000;
  auto& sent = appended_[{r.key.from, r.key.to}];
  wire::Bytes payload(len);
  for (std::size_t i = 0; i < len; ++i)
    payload[i] = static_cast<std::uint8_t>(i * 31 + sent.size() * 7 + r.key.to);
  Result<Seq> seq = t(r.sender).append(r.key.from, r.key.to, r.site, payload, now_);
  trace("  %llu->%llu len %zu: %s\n", static_cast<unsigned long long>(r.key.from),
        static_cast<unsigned long long>(r.key.to), len,
        seq.ok() ? std::to_string(*seq).c_str() : seq.status().to_string().c_str());
  if (!seq.ok()) return;
  check(*seq == sent.size() + 1, "append numbered out of sequence");
  sent.push_back(std::move(payload));
  if (r.key.to == 202) disturbed_ = true;  // rejected forever: never releasable
}

void Harness::transmit(int who) {
  proto::OutDatagram out;
  int guard = 0;
  while (t(who).poll_transmit(now_, &out)) {
    check(++guard < 100000, "poll_transmit never runs dry");
    check(out.bytes.size() <= t(who).config().path.mtu, "datagram larger than the MTU");
    wire::DecodedDatagram d;
    check(wire::decode_datagram(out.bytes, &d).ok(), "sent datagram does not decode");
    check(d.header.src_site == t(who).self(), "sent datagram has the wrong source");
    check(d.header.dst_site == out.to, "sent datagram addressed elsewhere than its header");
    trace("  out %s\n", wire::describe(d).c_str());
    net_.push_back({out.to, out.bytes});
  }
}

void Harness::inject(int who, const wire::Bytes& bytes) {
  Transport& tr = t(who);
  TransportStats before = tr.stats();
  wire::DecodedDatagram d;
  bool decodes = wire::decode_datagram(bytes, &d).ok();
  const bool had_path = decodes && tr.path(d.header.src_site) != nullptr;
  Status s = tr.on_datagram(bytes, now_);
  trace("  in site %u: %s: %s\n", tr.self(), decodes ? wire::describe(d).c_str() : "-",
        s.to_string().c_str());
  const TransportStats& after = tr.stats();
  if (!decodes) {
    check(!s.ok(), "malformed datagram accepted");
    check(after.malformed_in == before.malformed_in + 1, "malformed datagram not counted");
  } else if (d.header.dst_site != tr.self() || d.header.src_site == tr.self()) {
    check(!s.ok(), "misaddressed datagram accepted");
    check(after.misaddressed_in == before.misaddressed_in + 1, "misaddressed not counted");
  } else if (d.header.packet_number == 0 && !d.frames.empty()) {
    // Only numbered datagrams may carry frames: the protocol refuses these as malformed.
    check(!s.ok(), "frames in an unnumbered datagram accepted");
    check(after.malformed_in == before.malformed_in + 1, "unnumbered frames not counted");
  } else if (membership_ && d.header.src_site != kSiteA && d.header.src_site != kSiteB) {
    check(!s.ok(), "datagram from a site not admitted accepted");
    check(after.unknown_site_in == before.unknown_site_in + 1, "unknown site not counted");
    // (A path may exist: this site itself sent towards that site.)
    check(had_path || tr.path(d.header.src_site) == nullptr, "state made for an unknown site");
  } else {
    check(after.malformed_in == before.malformed_in, "valid datagram counted as malformed");
    check(after.misaddressed_in == before.misaddressed_in, "valid datagram misaddressed");
  }
}

void Harness::network(Input& in) {
  if (net_.empty()) return;
  std::size_t i = in.u8() % net_.size();
  std::uint8_t action = in.u8() % 8;
  Packet p = net_[i];
  trace("  packet %zu action %d\n", i, int{action});
  if (action != 6) net_.erase(net_.begin() + static_cast<std::ptrdiff_t>(i));
  if (action == 5) return;  // lost
  if (action == 7 && !p.bytes.empty()) {
    // One corrupted byte: CRC-32C detects every burst of up to 32 bits.
    std::uint8_t flip = in.u8();
    p.bytes[in.u16() % p.bytes.size()] ^= flip ? flip : 1;
  }
  if (p.to == kSiteA || p.to == kSiteB) inject(p.to == kSiteA ? 0 : 1, p.bytes);
}

void Harness::inject_raw(Input& in) {
  int who = in.u8() & 1;
  wire::Bytes b = in.bytes(in.u8());
  wire::DecodedDatagram d;
  if (wire::decode_datagram(b, &d).ok()) forged_ = true;  // rare, but a forgery all the same
  inject(who, b);
}

wire::DatagramHeader forged_header(Input& in, int who) {
  static constexpr SiteId kSources[] = {kSiteA, kSiteB, 3, 0};
  wire::DatagramHeader h;
  h.src_site = kSources[in.u8() % 4];
  std::uint8_t b = in.u8();
  h.dst_site = (b & 0x80) ? static_cast<SiteId>(b & 3) : (who == 0 ? kSiteA : kSiteB);
  h.packet_number = in.u16() % 1100;
  return h;
}

void Harness::inject_framed(Input& in) {
  int who = in.u8() & 1;
  wire::Bytes b;
  wire::encode_header(forged_header(in, who), &b);
  wire::Bytes body = in.bytes(in.u8());
  b.insert(b.end(), body.begin(), body.end());
  wire::seal(&b);
  forged_ = true;
  inject(who, b);
}

void Harness::inject_structured(Input& in) {
  int who = in.u8() & 1;
  wire::Bytes b;
  wire::encode_header(forged_header(in, who), &b);
  int frames = in.u8() % 5;
  for (int k = 0; k < frames; ++k) {
    std::uint8_t type = in.u8() % 5;
    StreamId from = kStreams[in.u8() % std::size(kStreams)];
    StreamId to = kStreams[in.u8() % std::size(kStreams)];
    Seq seq = in.u8() % 12 + (type == 3 ? 0 : 1);
    // Copies from two incarnations of a sender (before and after a move), without taking
    // input bytes, so that committed inputs keep their meaning.
    auto incarnation = static_cast<std::uint32_t>(from & 1);
    // Likewise two numberings (a sender recovered after a failure) and a floor that skips
    // what a lost receiver state would wait for.
    auto origin = static_cast<std::uint32_t>((to >> 1) & 1);
    Seq floor = (from & 2) && seq > 0 ? seq - 1 : 0;
    if (type == 0) {
      wire::AckFrame ack{in.u16() % 1100u, {}};
      std::uint64_t end = ack.cumulative;
      for (int n = in.u8() % 6; n > 0; --n) {
        std::uint64_t first = end + 2 + in.u8() % 8;
        end = first + in.u8() % 8;
        ack.ranges.push_back({first, end});
      }
      wire::encode_ack(ack, &b);
    } else if (type == 1) {
      wire::encode_data(from, to, seq, in.bytes(in.u8()), &b, {incarnation, origin, floor});
    } else if (type == 2) {
      std::uint64_t total = in.u16() % 5000 + 1;
      std::uint64_t offset = in.u16() % total;
      wire::Bytes part = in.bytes(std::min<std::uint64_t>(in.u8() + 1, total - offset));
      if (part.empty()) part.push_back(0);
      if (offset + part.size() > total) offset = total - part.size();
      wire::encode_fragment(from, to, seq, total, offset, part, &b, {incarnation, origin, floor});
    } else if (type == 3) {
      wire::encode_consumed(from, to, seq, &b);
    } else {
      wire::encode_reject(from, to, seq, static_cast<wire::RejectReason>(in.u8() % 3 + 1), &b);
    }
  }
  wire::seal(&b);
  forged_ = true;
  inject(who, b);
}

void Harness::advance(Time dt) {
  now_ += dt;
  for (int i = 0; i < 2; ++i) {
    if (now_ >= t(i).next_timeout()) t(i).on_timeout(now_);
  }
}

// Drains deliveries, releases and rejections of `who`; returns whether there was any.
bool Harness::drain(int who, bool consume_all, Input* in) {
  bool any = false;
  Delivery d;
  while (t(who).poll_delivery(&d)) {
    any = true;
    auto k = std::make_pair(d.key.from, d.key.to);
    trace("  delivered %llu->%llu #%llu\n", static_cast<unsigned long long>(k.first),
          static_cast<unsigned long long>(k.second), static_cast<unsigned long long>(d.seq));
    // A forged copy may start a new numbering (origin) or skip what its floor says consumed;
    // within one numbering deliveries still only go forward, and numberings never go back.
    std::uint32_t& origin = delivered_origin_[k];
    check(d.origin >= origin, "delivery from an older numbering");
    if (d.origin > origin) {
      origin = d.origin;
      delivered_[k] = 0;
    }
    if (forged_) {
      check(d.seq > delivered_[k], "delivery out of order or duplicated");
    } else {
      check(d.seq == delivered_[k] + 1, "delivery out of order or duplicated");
    }
    delivered_[k] = d.seq;
    check(d.payload.size() <= t(who).config().channel.max_message_bytes, "oversized delivery");
    if (!forged_) {
      auto it = appended_.find(k);
      check(it != appended_.end() && d.seq <= it->second.size(), "delivered a never-sent seq");
      check(it->second[d.seq - 1] == d.payload, "delivered bytes differ from the appended");
    }
    bool now_consume = consume_all || (in != nullptr && (in->u8() & 1));
    if (now_consume)
      check(t(who).consume(d.key, d.seq, now_, d.origin).ok(), "in-order consume refused");
  }
  if (in != nullptr && (in->u8() & 3) == 3) {
    // An arbitrary consume: may be refused, must not break anything.
    (void)t(who).consume({in->u8() % 2 ? StreamId{100} : StreamId{200}, 200}, in->u8(), now_);
  }
  Released r;
  while (t(who).poll_released(&r)) {
    any = true;
    trace("  released %llu->%llu <=%llu\n", static_cast<unsigned long long>(r.key.from),
          static_cast<unsigned long long>(r.key.to), static_cast<unsigned long long>(r.up_to));
    Seq& last = released_[{r.key.from, r.key.to}];
    if (!forged_) {
      check(r.up_to >= last, "release went backwards");
      check(r.up_to <= appended_[{r.key.from, r.key.to}].size(), "released a never-sent seq");
    }
    last = std::max(last, r.up_to);
  }
  Rejected j;
  while (t(who).poll_rejected(&j)) any = true;
  return any;
}

void Harness::run(Input& in) {
  static constexpr const char* kOps[] = {
      "append",  "transmit", "network",  "inject-raw", "inject-framed", "inject-frames",
      "advance", "drain",    "relocate", "open/close", "export/import"};
  int steps = 0;
  while (!in.empty() && ++steps < 2000) {
    int op = in.u8() % 11;
    trace("t=%lld %s\n", static_cast<long long>(now_), kOps[op]);
    switch (op) {
      case 0:
        append(in);
        break;
      case 1:
        transmit(in.u8() & 1);
        break;
      case 2:
        network(in);
        break;
      case 3:
        inject_raw(in);
        break;
      case 4:
        inject_framed(in);
        break;
      case 5:
        inject_structured(in);
        break;
      case 6:
        advance(Time{in.u16()} * 100 * kMicrosecond);
        break;
      case 7:
        (void)drain(in.u8() & 1, false, &in);
        break;
      case 8: {
        SiteId site = in.u8() & 1 ? 3 : kSiteB;
        trace("  200 -> site %u\n", site);
        t(0).relocate_receiver(200, site);
        disturbed_ = true;
        break;
      }
      case 9: {
        bool close = in.u8() & 1;
        trace("  %s 201\n", close ? "close" : "open");
        if (close)
          (void)t(1).close_stream(201);
        else
          (void)t(1).open_stream(201);
        disturbed_ = true;
        break;
      }
      case 10: {
        ChannelKey key{100, 200};
        Result<SendState> s = t(0).export_send_state(key);
        if (s.ok()) (void)t(0).import_send_state(key, std::move(*s));
        disturbed_ = true;
        break;
      }
    }
  }
}

// A reliable network from here on: everything appended must arrive, be consumed, released.
void Harness::quiesce() {
  for (int i = 0; i < 2; ++i) (void)drain(i, true, nullptr);
  // Messages the run delivered but left unconsumed.
  for (const auto& [k, seq] : delivered_) {
    if (seq > 0) (void)t(k.second == 100 ? 0 : 1).consume({k.first, k.second}, seq, now_);
  }
  for (int round = 0; round < 20000; ++round) {
    transmit(0);
    transmit(1);
    bool progress = !net_.empty();
    while (!net_.empty()) {
      Packet p = net_.front();
      net_.erase(net_.begin());
      if (p.to == kSiteA || p.to == kSiteB) inject(p.to == kSiteA ? 0 : 1, p.bytes);
    }
    progress |= drain(0, true, nullptr);
    progress |= drain(1, true, nullptr);
    bool done = t(0).idle() && t(1).idle();
    for (const auto& [k, sent] : appended_) {
      done = done && delivered_[k] == sent.size() && released_[k] == sent.size();
    }
    if (done) return;
    if (!progress) {
      Time next = std::min(t(0).next_timeout(), t(1).next_timeout());
      check(next != kNever, "stalled: messages outstanding and no timer armed");
      now_ = std::max(now_, next);
      advance(0);
    }
  }
  check(false, "no quiescence on a reliable network");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  Harness h(in.u8());
  h.run(in);
  if (h.checkable()) h.quiesce();
  return 0;
}
