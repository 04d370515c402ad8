#pragma once
// CRC-32C (Castagnoli) over a byte range. Uses the SSE4.2 instruction when the CPU has it,
// a table otherwise; both give the same value. It guards every datagram against corruption
// that UDP's optional 16-bit checksum lets through (and that the simulator injects).

#include <cstdint>
#include <span>

namespace mstream::wire {

std::uint32_t crc32c(std::span<const std::uint8_t> data, std::uint32_t seed = 0);

}  // namespace mstream::wire
