#include "sim/session_simulation.hpp"

#include <cstdio>

#include "sim/format.hpp"
#include "sim/session_driver.hpp"

namespace mstream::sim {

SessionResult run_session_scenario(const SessionScenario& scenario, const RunOptions& options) {
  detail::SessionDriver driver(scenario, options);
  return driver.run();
}

SessionResult run_session_seed(std::uint64_t seed, bool check_determinism,
                               const ScenarioOverrides& overrides, const RunOptions& options) {
  const SessionScenario scenario = derive_session_scenario(seed, overrides);
  SessionResult first = run_session_scenario(scenario, options);
  if (check_determinism) {
    RunOptions quiet = options;
    quiet.trace = nullptr;
    const SessionResult second = run_session_scenario(scenario, quiet);
    if (second.trace_hash != first.trace_hash) {
      char detail[112];
      std::snprintf(detail, sizeof detail, "session: trace hash %016llx then %016llx",
                    static_cast<unsigned long long>(first.trace_hash),
                    static_cast<unsigned long long>(second.trace_hash));
      first.violations.push_back(Violation{"determinism", detail, 1});
    }
  }
  return first;
}

std::string describe(const SessionResult& r) {
  const SessionSummary& s = r.summary;
  const NetworkStats& n = s.network;
  const proto::TransportStats& t = s.transport;
  char hash[24];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(r.trace_hash));
  std::string out;
  out += "session run: end " + ms(s.end_time) + ", set up at " + ms(s.setup_done_at) +
         ", quiescent at " + ms(s.quiesced_at) + kv("steps", s.steps) +
         kv("timer_steps", s.timer_steps) + kv("join_requests", s.join_requests) + "\n";
  out += "session workload:" + kv("appended", s.appended) + kv("consumed", s.consumed) +
         kv("triggers", s.triggers) + kv("shell_would_block", s.shell_would_block) +
         kv("appends_refused", s.appends_refused) + kv("moves_requested", s.moves_requested) +
         kv("self_relocations", s.self_relocations) +
         kv("relocations_refused", s.relocations_refused) + kv("arrives", s.arrives) + "\n";
  out += "session failures:" + kv("crashes", s.crashes) + kv("restarts", s.restarts) +
         kv("moves_failed", s.moves_failed) + kv("lives", s.lives) + kv("lives_cut", s.lives_cut) +
         kv("channels_retired", s.channels_retired) +
         kv("opened_after_destroy", s.opened_after_destroy) +
         kv("destroyed_senders_lost", s.destroyed_senders_lost) +
         kv("destroyed_senders_placed", s.destroyed_senders_placed) +
         kv("forgotten_answered", s.forgotten_answered) +
         kv("checkpoints_stored", s.checkpoints_stored) +
         kv("checkpoint_crashes", s.checkpoint_crashes) +
         kv("durable_restores", s.durable_restores) +
         kv("checkpoints_with_waiting", s.checkpoints_with_waiting) +
         kv("durable_senders_restarted", s.durable_senders_restarted) +
         kv("checkpoints_saving_at_fm_loss", s.checkpoints_saving_at_fm_loss) +
         kv("control_resends", s.control_resends) +
         kv("moves_settled_at_target", s.moves_settled_at_target) +
         kv("answers_repeated", s.answers_repeated) + kv("stale_answers", s.stale_answers) + "\n";
  out += "session network:" + kv("sent", n.sent) + kv("arrivals", n.arrivals) +
         kv("lost_random", n.lost_random) + kv("lost_burst", n.lost_burst) +
         kv("lost_partition", n.lost_partition) + kv("duplicated", n.duplicated) +
         kv("reordered", n.reordered) + kv("clogged", n.clogged) + kv("corrupted", n.corrupted) +
         kv("truncated", n.truncated) + kv("misrouted", n.misrouted) +
         kv("damaged_refused", s.damaged_refused) + kv("unroutable", s.unroutable) + "\n";
  out += "session transport:" + kv("datagrams_in", t.datagrams_in) +
         kv("datagrams_out", t.datagrams_out) + kv("unknown_site_in", t.unknown_site_in) +
         kv("retransmissions", t.retransmissions) + kv("rejected_frames", t.rejected_frames) +
         kv("duplicate_messages", t.duplicate_messages) + kv("bogus_acks", t.bogus_acks) +
         kv("sealed_out", s.sealed) + kv("forged_in", t.forged_in) +
         kv("replayed_in", t.replayed_in) + kv("unsealed_in", t.unsealed_in) +
         kv("impostor_frames", t.impostor_frames) + kv("wrong_site_frames", t.wrong_site_frames) +
         kv("held_frames", t.held_frames) + kv("held_refused", t.held_refused) +
         kv("caught_up", t.caught_up) + kv("unopened_frames", t.unopened_frames) +
         kv("misdirected_acks", t.misdirected_acks) + kv("stale_numbering", t.stale_numbering) +
         kv("stale_boot_in", t.stale_boot_in) + "\n";
  std::uint64_t refused = 0;
  for (std::uint64_t r : s.refused_control) refused += r;
  if (refused > 0) {
    out += "session refused control (sender rules):";
    for (std::size_t k = 0; k < s.refused_control.size(); ++k)
      if (s.refused_control[k] > 0)
        out += kv(wire::control_name(wire::control_of_type(k)), s.refused_control[k]);
    out += "\n";
  }
  std::uint64_t lies = 0;
  for (std::uint64_t l : s.lies) lies += l;
  if (lies > 0) {
    out += "session hostile lies:";
    for (std::size_t k = 0; k < s.lies.size(); ++k)
      out += kv(lie_name(static_cast<Lie>(k)), s.lies[k]);
    out += "\n";
  }
  out += std::string("session trace hash ") + hash + "\n";
  return out;
}

}  // namespace mstream::sim
