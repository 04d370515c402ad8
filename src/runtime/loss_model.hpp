#pragma once
// The receive-side loss model of seed 004's experiments: drops each arriving datagram with a
// fixed probability, from its own seeded generator, so a lossy run can be repeated exactly as
// far as the drop decisions go (the real network's timing still varies).
// Thread-safety: none.

#include <cstdint>

namespace mstream::runtime {

class LossModel {
 public:
  LossModel(double drop_probability, std::uint64_t seed)
      : threshold_(to_threshold(drop_probability)), state_(seed) {}

  bool enabled() const { return threshold_ != 0; }
  // True when this datagram is to be dropped.
  bool drop() {
    if (threshold_ == 0) return false;
    return next() < threshold_;
  }

 private:
  // Compare raw 64-bit draws against p * 2^64: no floating point per datagram.
  static std::uint64_t to_threshold(double p) {
    if (!(p > 0.0)) return 0;
    if (p >= 1.0) return UINT64_MAX;
    return static_cast<std::uint64_t>(p * 18446744073709551616.0);
  }
  // SplitMix64: tiny state, passes BigCrush, and good enough for drop decisions.
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  std::uint64_t threshold_;
  std::uint64_t state_;
};

}  // namespace mstream::runtime
