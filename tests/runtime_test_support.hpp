#pragma once
// Helpers shared by the runtime's tests: self-checking payloads, an in-order receiver, a
// sender that retries on back-pressure, and a loop that drives two endpoints of one process.

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <vector>

#include "mstream/endpoint.hpp"

namespace mstream::test {

using namespace std::chrono_literals;

// Message i (from 1) carries i in its first 8 bytes and a pattern derived from i after it,
// so a receiver can tell a reordered, duplicated, truncated or corrupted message.
inline std::vector<std::uint8_t> make_payload(std::uint64_t index, std::size_t size) {
  std::vector<std::uint8_t> p(std::max<std::size_t>(size, 8));
  std::memcpy(p.data(), &index, 8);
  for (std::size_t k = 8; k < p.size(); ++k)
    p[k] = static_cast<std::uint8_t>((index * 31 + k * 7) & 0xff);
  return p;
}

inline bool payload_matches(std::span<const std::uint8_t> p, std::uint64_t index,
                            std::size_t size) {
  if (p.size() != std::max<std::size_t>(size, 8)) return false;
  std::uint64_t got = 0;
  std::memcpy(&got, p.data(), 8);
  if (got != index) return false;
  for (std::size_t k = 8; k < p.size(); ++k)
    if (p[k] != static_cast<std::uint8_t>((index * 31 + k * 7) & 0xff)) return false;
  return true;
}

// Checks that one channel's messages arrive as 1, 2, 3, ... with intact payloads.
struct OrderChecker {
  std::size_t size = 64;
  std::uint64_t consumed = 0;
  std::uint64_t out_of_order = 0;  // wrong seq, wrong payload, or a repeat
  void on_message(const Message& m) {
    const std::uint64_t expected = consumed + 1;
    if (m.seq != expected || !payload_matches(m.payload, expected, size)) ++out_of_order;
    ++consumed;
  }
  Endpoint::Handler handler() {
    return [this](const Message& m) { on_message(m); };
  }
};

// Appends messages 1..total from `from` to `to` at `site`, as fast as back-pressure allows.
struct Sender {
  Endpoint* endpoint = nullptr;
  std::uint64_t from = 0, to = 0;
  std::uint32_t site = 0;
  std::uint64_t total = 0;
  std::size_t size = 64;
  std::uint64_t appended = 0;
  std::uint64_t failures = 0;  // any error other than kWouldBlock

  void pump() {
    while (appended < total) {
      auto payload = make_payload(appended + 1, size);
      auto r = endpoint->append(from, to, site, payload);
      if (!r.ok()) {
        if (r.status().code() != Status::Code::kWouldBlock) ++failures;
        return;
      }
      if (*r != appended + 1) ++failures;
      ++appended;
    }
  }
  bool done() const { return appended == total; }
};

// Drives a and b (and the senders) from this one thread until done() or the timeout.
inline bool pump_pair(Endpoint& a, Endpoint& b, std::vector<Sender*> senders,
                      const std::function<bool()>& done, std::chrono::nanoseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    for (Sender* s : senders) s->pump();
    if (done()) return true;
    if (!a.poll(0ns).ok() || !b.poll(0ns).ok()) return false;
  }
  return done();
}

}  // namespace mstream::test
