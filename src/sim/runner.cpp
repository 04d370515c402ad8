#include "sim/runner.hpp"

#include <array>
#include <cstdio>
#include <string>

#include "sim/driver.hpp"
#include "sim/format.hpp"

namespace mstream::sim {

std::string fail_line(std::uint64_t seed, const Violation& v) {
  std::string s = "FAIL seed=" + std::to_string(seed) + " invariant=" + v.invariant;
  if (!v.detail.empty()) s += " " + v.detail;
  if (v.count > 1) s += " (" + std::to_string(v.count) + " times)";
  return s;
}

std::string describe(const SeedResult& r) {
  const RunSummary& s = r.summary;
  const NetworkStats& n = s.network;
  const proto::TransportStats& t = s.transport;
  char hash[24];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(r.trace_hash));
  std::string out;
  out += "run: end " + ms(s.end_time) + ", all released at " + ms(s.done_at) +
         kv("steps", s.steps) + kv("timer_steps", s.timer_steps) + "\n";
  out += "workload:" + kv("appended", s.appended) + kv("consumed", s.consumed) +
         kv("would_block", s.would_block) + kv("too_large_refused", s.too_large) +
         kv("moves", s.moves) + kv("refused_after_move", s.refused_after_move) + "\n";
  out += "network:" + kv("sent", n.sent) + kv("arrivals", n.arrivals) +
         kv("lost_random", n.lost_random) + kv("lost_burst", n.lost_burst) +
         kv("lost_partition", n.lost_partition) + kv("duplicated", n.duplicated) +
         kv("reordered", n.reordered) + kv("tail_delayed", n.tail_delayed) +
         kv("clogged", n.clogged) + kv("corrupted", n.corrupted) + kv("truncated", n.truncated) +
         kv("misrouted", n.misrouted) + kv("damaged_refused", s.damaged_refused) + "\n";
  out += "transport:" + kv("datagrams_in", t.datagrams_in) + kv("datagrams_out", t.datagrams_out) +
         kv("malformed_in", t.malformed_in) + kv("misaddressed_in", t.misaddressed_in) +
         kv("unknown_site_in", t.unknown_site_in) + kv("duplicate_packets", t.duplicate_packets) +
         kv("dropped_out_of_order", t.dropped_out_of_order) +
         kv("duplicate_messages", t.duplicate_messages) + kv("rejected_frames", t.rejected_frames) +
         kv("retransmissions", t.retransmissions) + kv("delivered", t.messages_delivered) +
         kv("released", t.messages_released) + "\n";
  out += std::string("trace hash ") + hash + "\n";
  return out;
}

SweepResult run_sweep(const SweepOptions& options, std::ostream& out) {
  SweepResult result;
  // With a hostile member: every lie told, and what the honest nodes refused, over the sweep.
  std::array<std::uint64_t, static_cast<std::size_t>(Lie::kCount)> lies{};
  std::array<std::uint64_t, wire::kControlTypes> told{}, refused{};
  std::uint64_t arrivals_waiting = 0;
  proto::TransportStats dropped;
  for (std::uint64_t i = 0; i < options.count; ++i) {
    const std::uint64_t seed = options.first_seed + i;
    const bool twice = options.determinism_every != 0 && i % options.determinism_every == 0;
    bool ok = true;
    if (options.transport) {
      if (options.verbose) out << describe(derive_scenario(seed, options.overrides));
      const SeedResult r = run_seed(seed, twice, options.overrides, options.run);
      if (options.verbose) out << describe(r);
      for (const Violation& v : r.violations) out << fail_line(seed, v) << '\n';
      ok = ok && r.ok();
    }
    if (options.session) {
      if (options.verbose) out << describe(derive_session_scenario(seed, options.overrides));
      const SessionResult r = run_session_seed(seed, twice, options.overrides, options.run);
      if (options.verbose) out << describe(r);
      for (std::size_t k = 0; k < lies.size(); ++k) lies[k] += r.summary.lies[k];
      for (std::size_t k = 0; k < told.size(); ++k) {
        told[k] += r.summary.control_lies[k];
        refused[k] += r.summary.refused_control[k];
      }
      add_transport_stats(r.summary.transport, &dropped);
      arrivals_waiting += r.summary.arrivals_waiting;
      for (const Violation& v : r.violations) out << fail_line(seed, v) << '\n';
      ok = ok && r.ok();
    }
    ++result.seeds;
    if (!ok) {
      if (result.failed == 0) result.first_failed_seed = seed;
      ++result.failed;
    }
    out.flush();
  }
  if (options.session && options.overrides.hostile) {
    out << "sim: hostile lies told:";
    for (std::size_t k = 0; k < lies.size(); ++k)
      out << ' ' << lie_name(static_cast<Lie>(k)) << '=' << lies[k];
    out << "\nsim: dropped by the honest nodes: forged_in=" << dropped.forged_in
        << " impostor_frames=" << dropped.impostor_frames
        << " wrong_site_frames=" << dropped.wrong_site_frames
        << " unopened_frames=" << dropped.unopened_frames
        << " misdirected_acks=" << dropped.misdirected_acks << " bogus_acks=" << dropped.bogus_acks
        << " stale_numbering=" << dropped.stale_numbering
        << " stale_boot_in=" << dropped.stale_boot_in << "\nsim: control messages told/refused:";
    for (std::size_t k = 0; k < told.size(); ++k)
      out << ' ' << wire::control_name(wire::control_of_type(k)) << '=' << told[k] << '/'
          << refused[k];
    out << "\nsim: Arrives still waiting at the end for an Expect that never came: "
        << arrivals_waiting << '\n';
  }
  out << "sim: " << result.seeds << " seeds, " << result.failed << " failed\n";
  return result;
}

}  // namespace mstream::sim
