#pragma once
// A session scenario: a whole session (the leader with its site 0, 2..5 sites and one shell,
// each a proto::Node) on the simulated network, derived from its seed alone. The shell creates
// receiver and sender streams at random sites and attaches the simulator's C++ agents to them
// ("sim.receiver", "sim.sender"); then, while the network misbehaves, it triggers senders
// (each trigger makes a sender append `count` numbered messages to random receivers), appends
// to receivers itself, and moves senders and receivers, often several times in a row, while
// the agents relocate their own streams now and then. Then the faults heal and the shell asks
// the leader for quiescence (doc/session.md), and the run goes on until every node is idle.
// Some seeds (about a third of those with faults) crash one or two sites (never the shell) at
// random times during the workload, and some of those the leader's process too (it restarts
// from its durable state as the same site 0, doc/session.md "A restarted leader"; the sites
// pause their handlers meanwhile): a crashed node stops at once
// (it gets no datagram, sends none, never steps again; what it sent before is still on the
// wire), and may come back later as a brand-new process at the same address, which joins
// again and gets a new site id. Those seeds turn the leader's failure detection on, with a
// failure timeout well above the longest silence the network's faults can cause a live node
// (every fault ends by calm_start, and a retransmission backs off to at most max_rto), so
// only crashed sites are ever declared failed; the other seeds keep it off (0). In crash
// seeds some receivers are durable, every node keeps its checkpoints in a sim::MemoryStore
// (its disk: a restarted node gets its crashed process's), and some crashes wait for a commit
// to that store to crash there (SessionCrash::Point).
// describe() prints every derived option, so a failing seed can be read as well as replayed.
//
// Node indices: 0 is the leader (site 0), 1..sites the sites, sites + 1 the shell, sites + 2
// the hostile member if there is one. Site ids
// are the leader's to give at the join, so the scenario names sites by node index and the
// driver maps them.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/config.hpp"
#include "proto/types.hpp"
#include "sim/network.hpp"
#include "sim/scenario.hpp"

namespace mstream::sim {

struct SessionStreamPlan {
  std::string name;
  bool sender = false;     // "sim.sender" (else "sim.receiver")
  std::uint32_t node = 0;  // the node index of the site it is created at (0..sites)
  // Crash seeds: the node index of its failure manager (CreateReq::failure_manager); else
  // none (the default, site 0).
  std::optional<std::uint32_t> failure_manager;
  // Crash seeds: created -durable (doc/session.md "Durable streams"), under any failure
  // manager and any channel bound (session_scenario.cpp, derive_durable).
  bool durable = false;
  // Created during the workload, not at setup: each of the shell's kLife actions creates it
  // (under the same name: a new stream, a new id), attaches a receiver agent, appends to it
  // and destroys it (doc/commands.md stream_destroy: after every message appended before has
  // been consumed); one life waits for the end of the one before. No agent appends to it.
  bool ephemeral = false;
  bool forwards = true;  // receivers: their agent forwards (not an ephemeral one by default)
};

// A site's crash, at `at` after the workload starts; with `restart_after` >= 0 a new process
// joins from the same node that long after the crash. Node 0 is the leader's process: it
// always restarts, from its durable state (SessionScenario::leader_durable), as the same
// site 0 (doc/session.md "A restarted leader"). A mid-checkpoint crash waits from `at`
// for the node's next commit of checkpoints to its store (it is the failure manager of a
// durable stream), and crashes there: before the commit (the batch is lost) or right after
// it (its Checkpointed answers never leave). If no commit comes during the workload, the
// node does not crash.
struct SessionCrash {
  enum class Point : std::uint8_t { kAtTime, kBeforeCommit, kAfterCommit };
  std::uint32_t node = 1;  // 0..sites
  Time at = 0;
  Time restart_after = -1;
  Point point = Point::kAtTime;
};

// One thing the shell does, at `at` after the workload starts (when every stream exists and
// has its agent).
struct SessionAction {
  enum class Kind : std::uint8_t {
    kTrigger,  // append "g GID COUNT" to a sender: it appends COUNT messages to receivers
    kAppend,   // append "m GID INDEX" to a receiver, from the shell
    kMove,     // MoveReq of a stream to a site, not waiting for the answer
    kLife,     // a life of an ephemeral stream, with `count` appends (SessionStreamPlan)
  };
  Kind kind = Kind::kTrigger;
  Time at = 0;
  std::uint32_t stream = 0;  // index into SessionScenario::streams
  std::uint32_t count = 0;   // kTrigger
  std::uint32_t node = 0;    // kMove: the target site's node index
};

struct SessionScenario {
  std::uint64_t seed = 0;
  std::string profile;      // the fault profile drawn (scenario.cpp's profiles)
  std::uint32_t sites = 2;  // besides the leader's site 0
  NetworkPlan network;      // network.sites == sites + 2 nodes
  // Every node's transport: SiteOptions::with_mtu()'s, with the drawn mtu, retransmission
  // class and channel bound (small bounds drive handlers' appends into the overflow queues).
  proto::TransportConfig transport;
  std::size_t step_budget = 256;  // handler runs per step()
  // Where the sites' handlers run: 0 inline; else that many lanes of a DeferredExecutor whose
  // work finishes at a later step with lane_finish_chance per step (as worker threads would).
  std::size_t handler_lanes = 0;
  double lane_finish_chance = 1.0;
  std::size_t delivery_batch = 16;  // SiteOptions::delivery_batch
  Time step_gap = 0;                // simulated time between two steps of a busy node
  std::vector<Time> join_at;        // per node index (0 unused)
  std::vector<SessionStreamPlan> streams;
  std::vector<SessionAction> actions;  // sorted by `at`
  // The agents' own relocations: chances per append handler run and per relocation handler
  // run (a chain of moves), and the most the whole run makes.
  double relocate_on_append = 0;
  double relocate_on_arrival = 0;
  std::uint32_t max_self_relocations = 0;
  // Receivers forward a message they handle to a random receiver with this chance, at most
  // max_forwards times in the run.
  double forward_chance = 0;
  std::uint32_t max_forwards = 0;
  // After the last action and every answer, how long the shell waits before QuiesceReq (0:
  // at once, with messages still in flight).
  Time quiesce_delay = 0;
  // From calm_start: the shell's QuiesceReq must be answered (and the session idle) by then.
  Time liveness_bound = 60 * proto::kSecond;
  // Crashes (sorted by `at`), and the leader's failure timeout (0: no failure detection,
  // whenever there are no crashes).
  std::vector<SessionCrash> crashes;
  Time failure_timeout = 0;
  // Seeds that crash the leader keep its state in a store of its node's (`mstream leader
  // --state`), and the peers wait this long for it to come back (LeaderOptions).
  bool leader_durable = false;
  Time resume_timeout = 0;
  // A secured session (doc/security.md): the nodes join with the session secret, and every
  // datagram is sealed, so the network's damage is caught by authentication.
  bool secured = false;
  // A hostile member (`mstream sim --hostile`, never derived): node hostile_node() joins as
  // a site, with the secret if there is one, runs an honest core, and lies through its
  // network card: it adds well-formed frames to what it sends and sends datagrams of its own,
  // in its own name, that speak for channels and control streams it has no say in, ack what
  // was never sent, carry wrong numberings and boots, replay other nodes' joins, and send
  // control messages about others' streams (Arrive, Installed, Settled)
  // (session_hostile.cpp). No stream is ever created at or moved to it; the invariants must
  // hold for everyone else.
  bool hostile = false;
  // Never derived: the checkers' tests set it to show they catch a broken durable store.
  // Every K-th commit of a site's store is dropped though put() succeeds (0: none).
  std::uint32_t lying_store_every = 0;
  // Never derived: the tests of the sender rules set it to show what a member's lies do
  // when a rule is not checked (bit 1 << wire::Sender, at every honest site and the leader).
  std::uint32_t sender_rules_off = 0;

  std::uint32_t nodes() const { return sites + (hostile ? 3 : 2); }
  std::uint32_t shell_node() const { return sites + 1; }
  std::uint32_t hostile_node() const { return sites + 2; }  // if hostile
  Time calm_start() const { return network.calm_start; }
  std::size_t moves() const;
  // The streams created at setup (all but the ephemeral ones).
  std::uint32_t setup_streams() const;
  std::size_t senders() const;
  std::size_t durables() const;
};

SessionScenario derive_session_scenario(std::uint64_t seed,
                                        const ScenarioOverrides& overrides = {});

// Every derived option, one per line.
std::string describe(const SessionScenario& s);

}  // namespace mstream::sim
