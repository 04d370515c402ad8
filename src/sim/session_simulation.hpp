#pragma once
// One simulated run of a whole session (session_scenario.hpp): the real cores, a
// leader::LeaderNode and site::SiteCores (sites and a shell), each a proto::Node, driven the
// way src/runtime/node_loop drives them (join datagrams, on_datagram, on_timeout, step,
// poll_transmit), in one thread on simulated time over a SimNetwork, with the simulator's C++
// agents running in their handlers. Every random choice comes from the seed, so the run is a
// pure function of it; the trace hash proves it. The SessionChecker judges the run.
//
// Thread-safety: runs are independent, but a run must stay on the thread that started it (the
// agents find their run through a thread-local pointer).

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "proto/transport.hpp"
#include "sim/checker.hpp"
#include "sim/network.hpp"
#include "sim/session_scenario.hpp"
#include "sim/simulation.hpp"
#include "wire/control.hpp"

namespace mstream::sim {

// The hostile member's lies (SessionScenario::hostile, session_hostile.cpp), by kind.
enum class Lie : std::uint8_t {
  kConsumedForeign,  // CONSUMED for a channel between two others: would release its messages
  kRejectForeign,    // REJECT of another's message to another
  kImpersonate,      // DATA in the name of the leader's or another site's control stream
  kAckUnsent,        // CONSUMED of its own channel beyond what was sent
  kWrongOrigin,      // CONSUMED of its own channel under another numbering
  kNoStream,         // DATA to a stream that exists nowhere
  kPathAckUnsent,    // a path ACK of packet numbers never sent
  kStaleBoot,        // a datagram for an earlier boot of its receiver
  kStaleJoin,        // another node's join datagram, replayed to the leader
  kArriveForeign,    // an Arrive of another's stream, with a newer epoch, to a site
  kControlForeign,   // Installed or Settled of another's stream's operation, to the leader
  kControlRule,      // a control message of a type it may not send, to a site or the leader
  kSealAsOther,      // a datagram in another member's name, sealed under a key it has
  kUnopened,         // DATA in its own name to a stream it never opened
  kImpersonateUser,  // DATA in the name of a user stream that lives elsewhere, to its receiver
  kCount,
};
const char* lie_name(Lie kind);

struct SessionSummary {
  Time end_time = 0;
  Time setup_done_at = proto::kNever;  // every stream created, its agent attached
  Time quiesced_at = proto::kNever;    // the leader's quiescence answer reached the shell
  std::uint64_t steps = 0;
  std::uint64_t timer_steps = 0;
  std::uint64_t join_requests = 0;
  std::uint64_t appended = 0;  // accepted appends, the shell's and the agents'
  std::uint64_t consumed = 0;
  std::uint64_t triggers = 0;
  std::uint64_t shell_would_block = 0;    // the shell's appends refused by a full buffer (retried)
  std::uint64_t appends_refused = 0;      // a handler's append to a stream its replica lacks yet
  std::uint64_t moves_requested = 0;      // by the shell
  std::uint64_t self_relocations = 0;     // by agents
  std::uint64_t relocations_refused = 0;  // a target its site's replica lacks yet
  std::uint64_t arrives = 0;              // Arrive messages sent (moves carried out)
  std::uint64_t unroutable = 0;           // datagrams to a site whose address was unknown
  std::uint64_t sealed = 0;               // datagrams sent sealed (secured seeds)
  std::uint64_t damaged_refused = 0;
  std::uint64_t crashes = 0;       // sites crashed
  std::uint64_t restarts = 0;      // of which came back as new sites
  std::uint64_t moves_failed = 0;  // the shell's moves refused or failed after a crash
  std::uint64_t lives = 0;         // ephemeral streams created (each destroyed, or cut)
  std::uint64_t lives_cut = 0;     // ... whose create, attach or destroy a crash failed
  // Channels of destroyed streams dropped once drained (SiteCounters::channels_retired).
  std::uint64_t channels_retired = 0;
  // Appends of destroyed streams sent once their open was granted
  // (SiteCounters::opened_after_destroy), and destroyed streams whose messages a crash took
  // (SessionChecker::destroyed_senders_lost).
  std::uint64_t opened_after_destroy = 0;
  std::uint64_t destroyed_senders_lost = 0;
  std::uint64_t destroyed_senders_placed = 0;  // SiteCounters::destroyed_senders_placed
  // Questions about streams destroyed and forgotten, answered by the leader's watermark
  // (Directory::forgotten_answered): late words and messages about earlier lives.
  std::uint64_t forgotten_answered = 0;
  std::uint64_t checkpoints_stored = 0;  // commits of checkpoint batches to the nodes' stores
  std::uint64_t checkpoint_crashes = 0;  // crashes at a commit (SessionCrash::Point)
  std::uint64_t durable_restores = 0;    // recoveries of durable streams from a checkpoint
  // Stored checkpoints holding appends that wait for an open (Arrive::waiting): counted by
  // the state, not yet by any channel (sim seeds 97011252, 97010760).
  std::uint64_t checkpoints_with_waiting = 0;
  // Recoveries of durable streams that had appended, from no checkpoint (their failure manager
  // crashed with it): SessionChecker::durable_senders_restarted.
  std::uint64_t durable_senders_restarted = 0;
  // The failure manager of a durable stream failed (or site 0 restarted) while a checkpoint's
  // briefcases were being saved (SiteCounters::checkpoints_saving_at_fm_loss).
  std::uint64_t checkpoints_saving_at_fm_loss = 0;
  std::uint64_t control_resends = 0;  // SiteCounters::control_resends, every site summed
  // The leaders' (LeaderCore::Stats), every process of node 0 summed.
  std::uint64_t stale_answers = 0;
  std::uint64_t moves_settled_at_target = 0;
  std::uint64_t answers_repeated = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(Lie::kCount)> lies{};  // sent, by kind
  // Control messages the hostile member sent that break their sender rule (kControlRule, and
  // the Arrive, Installed and Settled of kArriveForeign and kControlForeign), by type (the
  // ControlMessage index), and the messages the honest nodes refused by their sender rules
  // (sites and the leader), by type.
  std::array<std::uint64_t, wire::kControlTypes> control_lies{};
  std::array<std::uint64_t, wire::kControlTypes> refused_control{};
  // Arrives still waiting at the end for an Expect (SiteCore::arrivals_waiting), honest
  // sites summed: with a hostile member, its forged Arrives that were neither pushed out nor
  // refused yet.
  std::uint64_t arrivals_waiting = 0;
  // kSealAsOther lies that reached an honest node and were counted there as forged.
  std::uint64_t forgeries_refused = 0;
  NetworkStats network;
  proto::TransportStats transport;  // summed over the nodes
};

struct SessionResult {
  std::uint64_t seed = 0;
  std::uint64_t trace_hash = 0;
  std::vector<Violation> violations;
  SessionSummary summary;
  bool ok() const { return violations.empty(); }
};

SessionResult run_session_scenario(const SessionScenario& scenario, const RunOptions& options = {});

// Derives the session scenario of `seed` and runs it; with check_determinism, runs it again
// and adds a "determinism" violation if the trace hashes differ.
SessionResult run_session_seed(std::uint64_t seed, bool check_determinism,
                               const ScenarioOverrides& overrides = {},
                               const RunOptions& options = {});

// A few lines on what a run did.
std::string describe(const SessionResult& r);

}  // namespace mstream::sim
