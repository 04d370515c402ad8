// Writes the seed corpus of the fuzz targets: make_corpus DIR writes DIR/<target>/seed-N.
// The same files are committed under fuzz/corpus/; regenerate them with this program when
// the wire format or fuzz_transport's input language changes.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "wire/control.hpp"
#include "wire/crypto.hpp"
#include "wire/datagram.hpp"
#include "wire/join.hpp"

namespace {

using namespace mstream::wire;

Bytes datagram(std::uint32_t src, std::uint32_t dst, std::uint64_t pn, auto&& frames,
               std::uint32_t src_boot = 0, std::uint32_t dst_boot = 0) {
  Bytes b;
  encode_header(DatagramHeader{src, dst, pn, src_boot, dst_boot}, &b);
  frames(&b);
  seal(&b);
  return b;
}

std::vector<Bytes> datagram_seeds() {
  const Bytes p{'h', 'e', 'l', 'l', 'o'};
  return {
      datagram(1, 2, 0, [](Bytes*) {}),
      datagram(1, 2, 1, [&](Bytes* b) { encode_data(100, 200, 1, p, b); }),
      datagram(1, 2, 2, [&](Bytes* b) { encode_fragment(100, 200, 2, 12, 5, p, b); }),
      datagram(3, 2, 3, [&](Bytes* b) { encode_data(100, 200, 1, p, b, {1}); }),  // moved sender
      // A sender recovered after a failure (new numbering), and one whose floor skips ahead.
      datagram(3, 2, 5,
               [&](Bytes* b) {
                 encode_data(100, 200, 1, p, b, {0, 7, 0});
               }),
      datagram(3, 2, 6,
               [&](Bytes* b) {
                 encode_data(100, 200, 9, p, b, {2, 0, 8});
               }),
      // From a restarted leader (boot 2), and to it.
      datagram(
          0, 2, 1, [&](Bytes* b) { encode_data(100, 200, 1, p, b); }, 2, 0),
      datagram(
          2, 0, 1, [&](Bytes* b) { encode_data(200, 100, 1, p, b); }, 0, 2),
      datagram(2, 1, 0,
               [](Bytes* b) {
                 encode_ack(AckFrame{3, {{5, 6}, {9, 9}}}, b);
               }),
      datagram(2, 1, 4,
               [](Bytes* b) {
                 encode_ack(AckFrame{1, {}}, b);
                 encode_consumed(100, 200, 1, b, 7);
                 encode_reject(101, 201, 1, RejectReason::kNoSuchStream, b);
               }),
  };
}

// fuzz_transport's input: a flags byte, then operations (see fuzz_transport.cpp's run()).
enum Op : std::uint8_t {
  kAppend = 0,
  kTransmit = 1,
  kNetwork = 2,
  kRaw = 3,
  kFramed = 4,
  kStructured = 5,
  kAdvance = 6,
  kDrain = 7,
};

std::vector<Bytes> transport_seeds() {
  const Bytes exchange{kAppend,   0,        100,      0,    kAppend,   0,         50,
                       0,         kAppend,  2,        20,   0,         kTransmit, 0,
                       kTransmit, 1,        kNetwork, 0,    0,         kNetwork,  0,
                       0,         kDrain,   1,        1,    1,         0,         kTransmit,
                       1,         kNetwork, 0,        0,    kDrain,    0,         1,
                       0,         kAdvance, 0x10,     0x27, kTransmit, 0,         kTransmit,
                       1,         kNetwork, 0,        0,    kNetwork,  0,         0};
  std::vector<Bytes> seeds;
  // Selective repeat; go-back-N with the first datagram lost; a small MTU (fragments).
  seeds.push_back(Bytes{0});
  seeds.back().insert(seeds.back().end(), exchange.begin(), exchange.end());
  Bytes lossy{1,         kAppend, 0,       10, 0,  kTransmit, 0,         kAppend, 0,        10, 0,
              kTransmit, 0,       kAppend, 0,  10, 0,         kTransmit, 0,       kNetwork, 0,  5};
  lossy.insert(lossy.end(), exchange.begin(), exchange.end());
  seeds.push_back(lossy);
  Bytes big{2, kAppend, 1, 0xd0, 0x07, kAppend, 2, 0x00, 0x02};
  big.insert(big.end(), exchange.begin(), exchange.end());
  seeds.push_back(big);
  // Injected frames: DATA to stream 200 and an ACK, then raw bytes of a sealed datagram.
  seeds.push_back(Bytes{0,   kStructured, 1, 0, 0, 1, 0, 2,      1, 1, 3, 0,         3, 'a',
                        'b', 'c',         0, 0, 0, 0, 0, kDrain, 1, 1, 1, kTransmit, 1});
  Bytes raw{0, kRaw, 1};
  Bytes d = datagram(1, 2, 1, [](Bytes* b) { encode_data(100, 200, 1, Bytes{1, 2}, b); });
  raw.push_back(static_cast<std::uint8_t>(d.size()));
  raw.insert(raw.end(), d.begin(), d.end());
  raw.insert(raw.end(), {kDrain, 1, 1, 0, kFramed, 0, 1, 0, 1, 0, 3, 4, 1, 1});
  seeds.push_back(raw);
  return seeds;
}

std::vector<Bytes> control_seeds() {
  std::vector<ControlMessage> messages;
  StreamRecord rec{7, "/webtest/t0", 2, 3, 0, 0, kStreamTemp};
  messages.push_back(CreateReq{1, "foo", 2, kNoSite, kStreamDurable});
  messages.push_back(MoveReq{2, "foo", 3});
  messages.push_back(AttachReq{3, "foo", "a b", "on_stream_append { puts $argv }", ""});
  messages.push_back(Reply{3, 0, "1"});
  // Handler failures: a move's arrival (from its target) and a -sync append's.
  messages.push_back(Reply{4, 0, "2", HandlerFailure{5, "relocation", "cannot settle"}});
  messages.push_back(SyncResult{7, 3, "1 ok", HandlerFailure{2, "append", "boom"}});
  messages.push_back(Welcome{4, {PeerRecord{0, "127.0.0.1:7000", 10, 1, 0}}, {rec}});
  Welcome keyed{5, {PeerRecord{2, "127.0.0.1:7002", 11, 1, 0}}, {rec}};
  keyed.keys = {PairKey{2, std::string(32, 'k')}};
  messages.push_back(keyed);
  messages.push_back(PeerUpdate{PeerRecord{3, "127.0.0.1:7003", 12, 1, 0}, std::string(32, 'p')});
  messages.push_back(Location{rec});
  messages.push_back(ProbeReply{5, 1, 10, 9, 2, {ShellCount{16777216, 4}}});
  Arrive a;
  a.stream = rec;
  a.agents = {1, 2};
  a.briefcases = {AgentState{1, "count 3"}};
  a.out = {OutChannel{8, 1, 5, 2, {"m3", "m4"}, 3}};
  a.in = {InChannel{9, 4, 1, 2}};
  messages.push_back(a);
  messages.push_back(Watch{7});
  messages.push_back(Watch{7, 12});
  messages.push_back(Placed{7, 12, 3});
  // Failures and durable streams.
  StreamRecord recovered = rec;
  recovered.epoch = 5;
  recovered.origin = 5;
  messages.push_back(Recover{recovered, {1, 2}, 2});
  messages.push_back(Settle{7, 4});
  messages.push_back(Settled{7, 4, 1});
  messages.push_back(Checkpoint{3, a});
  messages.push_back(Checkpointed{7, 3, 3, 0, ""});
  messages.push_back(Expect{7, 6, 2});
  std::vector<Bytes> seeds;
  for (const auto& m : messages) {
    Bytes b;
    encode_control(m, &b);
    seeds.push_back(std::move(b));
  }
  for (auto op : {JoinMessage::Op::kRequest, JoinMessage::Op::kAccept, JoinMessage::Op::kRefuse}) {
    JoinMessage j;
    j.op = op;
    j.nonce = 42;
    j.pid = 1234;
    j.site = 3;
    j.reason = op == JoinMessage::Op::kRefuse ? "the session is full" : "";
    j.has_cookie = j.has_public = op == JoinMessage::Op::kRequest;
    j.public_key.fill(0x5C);
    Bytes b;
    encode_join(j, &b);
    seeds.push_back(std::move(b));
  }
  return seeds;
}

bool write_all(const std::filesystem::path& dir, const std::vector<Bytes>& seeds) {
  std::filesystem::create_directories(dir);
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    std::ofstream f(dir / ("seed-" + std::to_string(i)), std::ios::binary);
    f.write(reinterpret_cast<const char*>(seeds[i].data()),
            static_cast<std::streamsize>(seeds[i].size()));
    if (!f) return false;
  }
  return true;
}

}  // namespace

// fuzz_sealed_decode's: sealed datagrams and joins under its key, and plain joins.
std::vector<Bytes> sealed_seeds() {
  Key key;
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i * 7 + 1);
  const Bytes p{'h', 'e', 'l', 'l', 'o'};
  std::vector<Bytes> out;
  for (Bytes plain : {datagram(1, 2, 0, [](Bytes*) {}),
                      datagram(1, 2, 1, [&](Bytes* b) { encode_data(100, 200, 1, p, b); })}) {
    seal(&plain, Integrity::kSealed);  // no checksum inside a seal
    Bytes sealed;
    seal_datagram(key, {1, 0, 1, kKindSealedAegisCapable}, plain, &sealed);
    out.push_back(sealed);
    // Under the pair key of sites 1 and 2, which the target's transports open.
    seal_datagram(pair_key(key, 1, 2), {1, 0, 1, kKindSealedAegisCapable}, plain, &sealed);
    out.push_back(sealed);
    // AEGIS-256 needs the CPU's AES instructions; a machine without them makes the corpus
    // without these.
    if (aegis_available()) {
      seal_datagram_aegis(AegisKey(key, 1, 0), 2, plain, &sealed);
      out.push_back(sealed);
      seal_datagram_aegis(AegisKey(pair_key(key, 1, 2), 1, 0), 2, plain, &sealed);
      out.push_back(sealed);
    }
  }
  JoinMessage m;
  m.nonce = 42;
  m.op = JoinMessage::Op::kHello;
  out.emplace_back();
  encode_join(m, &out.back());
  m.op = JoinMessage::Op::kChallenge;
  m.cookie.fill(9);
  out.emplace_back();
  encode_join(m, &out.back());
  m.op = JoinMessage::Op::kRequest;
  m.has_cookie = true;
  m.has_public = true;
  out.emplace_back();
  encode_sealed_join(m, key, &out.back());
  m.op = JoinMessage::Op::kAccept;
  m.site = 3;
  m.has_key = true;
  m.key = key;
  out.emplace_back();
  encode_sealed_join(m, key, &out.back());
  // The accept as the joiner gets it: under its key exchange with the leader (the target's
  // pairs: the key with its first byte flipped by 1 and by 2, as seeds).
  auto pair_of = [&](std::uint8_t salt) {
    Key seed = key;
    seed[0] ^= salt;
    return kx_seed_keypair(seed);
  };
  const KxKeyPair leader = pair_of(1), own = pair_of(2);
  m.public_key = own.public_key;
  out.emplace_back();
  encode_sealed_join(m, *kx_leader_seal_key(leader, own.public_key), &out.back());
  m.op = JoinMessage::Op::kUnauthentic;
  m.reason = "no";
  out.emplace_back();
  encode_join(m, &out.back());
  return out;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  std::filesystem::path dir(argv[1]);
  if (!write_all(dir / "fuzz_datagram_decode", datagram_seeds()) ||
      !write_all(dir / "fuzz_transport", transport_seeds()) ||
      !write_all(dir / "fuzz_control_decode", control_seeds()) ||
      !write_all(dir / "fuzz_sealed_decode", sealed_seeds())) {
    std::fprintf(stderr, "make_corpus: cannot write under %s\n", argv[1]);
    return 1;
  }
  return 0;
}
