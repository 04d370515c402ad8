#pragma once
// Introducing the two processes of a benchmark to each other: each binds port 0 on loopback
// and tells the other its port over the pipe link, so runs never collide on a fixed port.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "bench/process.hpp"
#include "mstream/endpoint.hpp"
#include "mstream/status.hpp"

namespace mstream::bench {

// How long a process waits for its peer's port before giving up: generous, because the peer
// may still be starting, but bounded so a stuck peer cannot hang a benchmark.
inline constexpr std::chrono::milliseconds kHandshakeTimeout{10'000};

// The port of "HOST:PORT"; 0 if it does not parse.
std::uint16_t port_of(const std::string& host_port);

// Sends our port, then waits for the peer's. Both sides send first, so neither can block the
// other (the pipe buffers the word). Errors: kUnavailable (no answer in time).
Result<std::uint16_t> exchange_ports(Link& link, std::uint16_t own_port);

// Opens an Endpoint on 127.0.0.1 port 0, exchanges ports with the other process and adds it
// as site `peer_site`. Errors: those of Endpoint::open and add_peer, kUnavailable.
Result<std::unique_ptr<Endpoint>> open_peered_endpoint(const EndpointOptions& options, Link& link,
                                                       std::uint32_t peer_site);

// A loopback UDP socket bound to port 0 and connected to the peer's, after exchanging ports.
// `blocking_timeout` bounds each blocking recv (SO_RCVTIMEO). Returns the fd; the caller
// closes it. Errors: kIoError, kUnavailable.
Result<int> open_peered_udp_socket(Link& link, std::chrono::milliseconds blocking_timeout);

}  // namespace mstream::bench
