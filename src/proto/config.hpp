#pragma once
// Tunables of the protocol cores. Every site of a session must use the same values for the
// fields marked "session-wide": a receiver accepts only what a sender with its own settings
// could legitimately send.

#include <cstddef>
#include <cstdint>

#include "proto/types.hpp"

namespace mstream::proto {

// How a path repairs lost datagrams (seed 003 picks between them at run time later).
enum class RetransmissionClass : std::uint8_t {
  // The receiver keeps out-of-order datagrams and reports them in selective acks; the sender
  // repeats only what was lost. Best under random loss.
  kSelectiveRepeat,
  // The receiver keeps only the next expected datagram; on loss the sender goes back and
  // repeats everything from the first lost one. Less receiver state, worse under loss.
  kGoBackN,
};

const char* retransmission_class_name(RetransmissionClass c);

struct PathConfig {
  // Largest datagram, header included. Loopback peers may use far more than a LAN.
  std::size_t mtu = 1400;
  // Congestion window, in datagrams.
  std::uint32_t initial_cwnd = 16;
  std::uint32_t min_cwnd = 2;
  // Session-wide: the most datagrams in flight on a path, and so the receiver's window.
  std::uint32_t max_window = 1024;
  // Multiplicative decrease on a loss event (TCP uses 0.5, CUBIC 0.7).
  double loss_backoff = 0.7;
  // RFC 6298 retransmission timeout: initial value and the bounds it is clamped to (the RFC's
  // 1 s minimum is for the wide-area Internet; our sessions run on LANs and loopback). The
  // timeout is the last resort behind RACK and tail-loss probes, and a spurious one collapses
  // the window, so its floor stays well above a descheduled peer's stall (5 ms fired
  // spuriously on a loaded 2-core machine).
  Time initial_rto = 200 * kMillisecond;
  Time min_rto = 20 * kMillisecond;
  Time max_rto = 2 * kSecond;
  RetransmissionClass retransmission = RetransmissionClass::kSelectiveRepeat;
  // Session-wide: how long a receiver may hold an ACK (and a consumption ack) back waiting for
  // a datagram to ride on. Saves a datagram per message in request/reply traffic and in the
  // one-way chains of control messages a move is made of; the sender's probe timeout allows
  // for it. At 250 us, a hop of `mstream bench move` cost 13 datagrams (6 of them with no
  // message), and every one of them a process woken on a loaded machine.
  Time max_ack_delay = 2 * kMillisecond;
  // Datagrams that arrive within this of the one before are a burst: the second unacknowledged
  // one of a burst is acknowledged at once (a sender's window and loss detection run on those
  // acks). One that comes later than this after the last is not: a sender that sends that
  // sparsely is not held by its window, and its ack can wait for a datagram to ride on.
  Time ack_burst_gap = 100 * kMicrosecond;
  // Session-wide: on a path that showed loss lately (a gap, a duplicate, a repeat or a probe:
  // either end sees it), ACKs wait at most lossy_ack_delay and every second datagram is
  // acknowledged at once, for loss_memory after the last sign. A lost datagram with nothing
  // sent behind it (a move's order, a request) is found only by the probe timeout, which
  // allows for the delay: at 2 ms, `mstream bench moving-pipeline` with 5% of datagrams
  // dropped took twice as long.
  Time lossy_ack_delay = 250 * kMicrosecond;
  Time loss_memory = 1 * kSecond;
  // Consumption acks wait like ACKs, but go at once when a quarter of a channel's bound of
  // messages was consumed since the path last sent them: a sender whose buffer fills stops
  // sending, and no datagram would come for them to ride on. false: they always wait (the
  // simulator's regression seeds replay that timing).
  bool prompt_consumption_acks = true;
  // Paths whose data became ready send first, in that order (Transport::poll_path), so that
  // datagrams leave in the order their messages were made. false: the order of the path
  // table (the simulator's regression seeds replay that schedule).
  bool send_in_ready_order = true;
};

struct ChannelConfig {
  // Session-wide. The sender buffers a message until its consumption is acknowledged; these
  // bound that buffer per channel. A full buffer refuses the append (Status kWouldBlock).
  std::uint32_t max_unconsumed_messages = 4096;
  std::size_t max_unconsumed_bytes = 16u << 20;
  // Session-wide: the largest message; a larger append fails with kTooLarge.
  std::size_t max_message_bytes = 1u << 20;
};

struct TransportConfig {
  PathConfig path;
  ChannelConfig channel;
  // Secured sessions: seal with AEGIS-256 towards peers that open it, when this machine's CPU
  // has AES instructions (wire/crypto.hpp, kind 7); else, and towards the others,
  // XChaCha20-Poly1305.
  // The simulator turns it off, so that a seed's run is the same on every machine.
  bool aes = true;
  // How long DATA in the name of a user stream from a site the receiver does not know for it
  // is held for the leader's word on where it is (Transport::locate_sender): the word comes
  // at once to a watcher, within the leader's location batch to other sites.
  Time pin_hold = 250 * kMillisecond;
  // After the leader restarted (Transport::leader_restarted): its new process never sends the
  // words its old one had not sent yet (a batch, doc/security.md), so what comes this long
  // after, in the name of a user stream, from a site the words do not place, is never counted
  // as a lie (it may be a late copy from the site such a word named).
  Time pin_words_lost = 10 * kSecond;
  // Tests only (never derived): false takes DATA in the name of a user stream from any site,
  // as before the pin, so that a test can show what the pin stops.
  bool pin_user_senders = true;
};

}  // namespace mstream::proto
