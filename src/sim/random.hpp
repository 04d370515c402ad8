#pragma once
// The simulator's one source of randomness, and its own distributions. Both are written here
// rather than taken from <random> because the standard leaves the algorithms of
// std::uniform_int_distribution and friends to each library: a failing seed must replay the
// same on every machine and toolchain (STYLE.md habit 5).
//
// Thread-safety: none; a simulated run owns its generators.

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace mstream::sim {

// SplitMix64 (Steele, Lea, Flood 2014): turns any 64-bit value, even 0 or a small seed, into
// a well-mixed one. Used to seed xoshiro and as a stand-alone hash of integers.
constexpr std::uint64_t splitmix64(std::uint64_t* state) {
  std::uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

constexpr std::uint64_t mix64(std::uint64_t v) {
  std::uint64_t s = v;
  return splitmix64(&s);
}

// xoshiro256** (Blackman, Vigna 2018).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    std::uint64_t sm = seed;
    for (auto& w : s_) w = splitmix64(&sm);
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // An independent generator for one part of a run (network, workload, ...), so that adding
  // a draw in one part does not shift every later draw of the others.
  Rng fork() { return Rng(next() ^ 0x5851F42D4C957F2Dull); }

  // Uniform in [0, n); n > 0. Rejection keeps it exactly uniform.
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t threshold = (0 - n) % n;
    for (;;) {
      std::uint64_t r = next();
      if (r >= threshold) return r % n;
    }
  }
  // Uniform in [lo, hi]; lo <= hi.
  std::int64_t between(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
  }
  // Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  bool chance(double p) { return p > 0 && unit() < p; }
  // Uniform in log space over [lo, hi]; lo >= 1. Spreads seeds over orders of magnitude.
  std::int64_t log_between(std::int64_t lo, std::int64_t hi) {
    const double l = std::log(static_cast<double>(lo));
    const double h = std::log(static_cast<double>(hi) + 1.0);
    std::int64_t v = static_cast<std::int64_t>(std::exp(l + (h - l) * unit()));
    return v < lo ? lo : (v > hi ? hi : v);
  }
  // Exponential with the given mean.
  double exponential(double mean) { return -mean * std::log(1.0 - unit()); }
  // Pareto with minimum `scale` and shape `alpha`: heavy-tailed for small alpha.
  double pareto(double scale, double alpha) { return scale / std::pow(1.0 - unit(), 1.0 / alpha); }

  template <typename T, std::size_t N>
  const T& pick(const T (&options)[N]) {
    return options[below(N)];
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

// A running 64-bit digest of a sequence of values: the trace hash. Order-sensitive.
class Digest {
 public:
  void add(std::uint64_t v) { h_ = mix64(h_ ^ v) + 0x2545F4914F6CDD1Dull; }
  void add_signed(std::int64_t v) { add(static_cast<std::uint64_t>(v)); }
  std::uint64_t value() const { return h_; }

 private:
  std::uint64_t h_ = 0xCBF29CE484222325ull;
};

// A hash of a byte string (FNV-1a over 8-byte words, then mixed); not cryptographic.
template <typename ByteRange>
std::uint64_t hash_bytes(const ByteRange& bytes) {
  std::uint64_t h = 0xCBF29CE484222325ull ^ bytes.size();
  std::size_t i = 0;
  const std::size_t n = bytes.size();
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w = 0;
    for (std::size_t k = 0; k < 8; ++k) w |= static_cast<std::uint64_t>(bytes[i + k]) << (8 * k);
    h = (h ^ w) * 0x100000001B3ull;
  }
  for (; i < n; ++i) h = (h ^ bytes[i]) * 0x100000001B3ull;
  return mix64(h);
}

}  // namespace mstream::sim
