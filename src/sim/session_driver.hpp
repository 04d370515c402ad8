#pragma once
// The engine of whole-session runs, shared by its source files: session_driver.cpp runs the
// event loop and the network side (joins, datagrams, timers, steps, the wire checks),
// session_observer.cpp feeds the checker what it sees of the cores (Arrive messages, hosting,
// handler traces, the state at rest), session_workload.cpp plays the shell's script and the
// agents' behaviour, session_agents.cpp has the agent types. Only session_simulation.cpp
// uses it.
//
// Thread-safety: none; one SessionDriver per run, on one thread.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "leader/leader_node.hpp"
#include "mstream/agent.hpp"
#include "proto/joiner.hpp"
#include "sim/memory_store.hpp"
#include "sim/network.hpp"
#include "sim/random.hpp"
#include "sim/session_checker.hpp"
#include "sim/session_scenario.hpp"
#include "sim/session_simulation.hpp"
#include "site/site_core.hpp"
#include "wire/datagram.hpp"

namespace mstream::sim::detail {

using proto::StreamId;

// Registers "sim.sender" and "sim.receiver" once per process (session_agents.cpp).
void register_session_agents();

// A node's "UDP address" in the simulation, "sim:NODE": the leader records it at the join and
// hands it out in its directory, as it does "HOST:PORT"; the driver routes by it.
std::string sim_address(std::uint32_t node);
std::optional<std::uint32_t> parse_sim_address(const std::string& address);

enum class SessionEventKind : std::uint8_t {
  kArrival = 1,  // a datagram reaches node `node` from node `from`
  kStep,         // a busy node runs its next step
  kJoin,         // a joiner (re)sends its join request
  kAction,       // the shell's scripted action number `target`
  kQuiesce,      // the shell asks the leader for quiescence
  kTimer,        // (only in the trace hash) a node's timeout fired
  kSend,         // (only in the trace hash) a node sent a datagram
  kHandler,      // (only in the trace hash) a traced handler run
  kCrash,        // crash number `target` of the scenario
  kRestart,      // the node of crash number `target` starts again
};

struct SessionEvent {
  Time at = 0;
  std::uint64_t order = 0;  // equal times keep their scheduling order
  SessionEventKind kind = SessionEventKind::kArrival;
  std::uint32_t node = 0;
  std::uint32_t from = 0;    // arrivals: the sending node
  std::uint32_t target = 0;  // actions
  Damage damage = Damage::kNone;
  wire::Bytes bytes;
};

struct SessionLater {
  bool operator()(const SessionEvent& a, const SessionEvent& b) const {
    return a.at != b.at ? a.at > b.at : a.order > b.order;
  }
};

class SessionDriver {
 public:
  // The scenario must outlive the driver.
  SessionDriver(const SessionScenario& s, const RunOptions& o);
  ~SessionDriver();
  // Runs to the end (quiescent and idle, the liveness deadline, or a progress failure).
  // Call once.
  SessionResult run();

  // The run on this thread, for the agents' handlers; null outside a run.
  static SessionDriver* current();
  // session_workload.cpp: what the agents do in their handlers. Their briefcases: `sent`
  // numbers the agent's messages per receiver, `handled` counts its append handler runs and
  // `hash` sums session_gid_hash() of the messages they consumed.
  void on_sender_append(AgentContext& ctx, std::string_view message, std::uint64_t handled,
                        std::uint64_t hash, std::map<std::string, std::uint64_t>* sent);
  void on_receiver_append(AgentContext& ctx, std::string_view message, std::uint64_t handled,
                          std::uint64_t hash, std::map<std::string, std::uint64_t>* sent);
  void on_agent_relocated(AgentContext& ctx);
  void on_agent_failed(AgentContext& ctx);

 private:
  struct NodeRun {
    std::unique_ptr<leader::LeaderNode> leader;  // node 0
    std::unique_ptr<site::SiteCore> site;        // the others, once joined
    proto::Node* node = nullptr;
    site::SiteCore* core = nullptr;  // the SiteCore (the leader's site 0 for node 0)
    SiteId id = 0;
    std::uint64_t nonce = 0;              // of its join requests
    std::optional<proto::Joiner> joiner;  // from its first request to its admission
    // Where each site is, learned as node_loop learns it: from the datagrams it accepts, else
    // from the node's directory (peer_address "sim:K").
    std::unordered_map<SiteId, std::uint32_t> routes;
    Time timer_at = proto::kNever;
    Time last_timer = -1;
    int same_time_timers = 0;
    bool step_scheduled = false;
    std::set<StreamId> hosting;  // hosts() as last reported
    bool crashed = false;        // until a restart: node and core are null
    std::uint32_t restarts = 0;
    // The node's disk: every process it runs keeps its checkpoints here (sites only).
    std::shared_ptr<MemoryStore> store;
    // Node 0's second file: the leader's own state (SessionScenario::leader_durable).
    std::shared_ptr<MemoryStore> leader_state;
    // A mid-checkpoint crash (SessionCrash::Point) waiting for the store's next commit, and
    // one that commit called for: it happens when the step that called put() returns.
    std::optional<std::uint32_t> armed_crash;
    std::optional<std::uint32_t> crash_due;
  };
  enum class Phase : std::uint8_t { kJoining, kCreating, kWorkload, kQuiescing, kDone };
  struct Request {
    enum class Kind : std::uint8_t {
      kCreate,
      kAttach,
      kMove,
      kQuiesce,
      kLifeCreate,  // an ephemeral stream's (SessionStreamPlan::ephemeral)
      kLifeAttach,
      kLifeDestroy,
    } kind;
    std::uint32_t stream = 0;
  };
  struct ShellAppend {
    std::uint32_t stream = 0;
    char kind = 'm';
    std::uint64_t gid = 0;
    std::uint64_t number = 0;  // 'g': the count; 'm': the index
    std::uint64_t index = 0;   // its place in the shell -> stream pair
  };

  // --- session_driver.cpp: the loop and the network side; session_observer.cpp: what the
  // checker is told
  void schedule(SessionEvent e);
  void schedule(Time at, SessionEventKind kind, std::uint32_t node, std::uint32_t target = 0);
  void on_arrival(SessionEvent& e);
  void on_join_datagram(std::uint32_t n, std::uint32_t from, const wire::Bytes& bytes);
  void send_join(std::uint32_t n);
  void make_site(std::uint32_t n, SiteId id, const std::optional<wire::Key>& leader_key);
  void crash(std::uint32_t index);
  void crash_now(std::uint32_t index);
  MemoryStore::Fault on_store_put(std::uint32_t n, const std::vector<proto::StoredRecord>& batch);
  // A durable stream's recovery at node n: what it restored, for the checker.
  void report_restore(std::uint32_t n, StreamId stream);
  DurableRestore restore_of(const proto::StoredRecord& rec);
  void restart(std::uint32_t index);
  // Node 0's process: made at the start, and again when it restarts (from its state).
  void make_leader();
  MemoryStore::Fault on_leader_state_put();
  // Tells the checker what every sender to `to` knows consumed (its channel's consumed_up_to
  // at the site that hosts it now).
  void report_acks(StreamId to);
  void fire_timer(std::uint32_t n);
  // After anything happened at node n: step, the shell's script, transmissions, hosting.
  void run_node(std::uint32_t n);
  void drain(std::uint32_t n);
  void on_transmit(std::uint32_t n, const proto::OutDatagram& out);
  void watch_arrive(const wire::Frame& f);
  void transmit(std::uint32_t from, std::uint32_t to, const wire::Bytes& bytes);
  std::optional<std::uint32_t> route(std::uint32_t n, SiteId to);
  void report_hosting(std::uint32_t n);
  // session_workload.cpp: an ephemeral stream's lives.
  void start_life(std::uint32_t stream);
  void on_life_reply(const Request& r, const wire::Reply& reply);
  void destroy_due_lives();
  void on_trace(std::uint32_t n, const site::HandlerTrace& t);
  bool settled() const;
  std::string busy_nodes() const;
  void check_end_state();
  void note(SessionEventKind kind, std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0);
  void trace(const std::string& line);

  // --- session_hostile.cpp: the hostile member (SessionScenario::hostile)
  bool is_hostile(std::uint32_t n) const { return sc_.hostile && n == sc_.hostile_node(); }
  // Sends a control message of a type picked at random, which no honest receiver may take
  // from it (kControlRule).
  void break_a_sender_rule(std::uint32_t n, SiteId dst);
  // Counts a control message the hostile member sends that breaks its sender rule, under its
  // type (SessionSummary::control_lies), whichever lie it is part of.
  void count_control_lie(const wire::ControlMessage& m) { ++sum_.control_lies[m.index()]; }
  // What an honest node sends (decoded_ holds it), and every join datagram: the lies draw on
  // them, as a member that sniffs the session's traffic would.
  void observe_for_lies();
  void record_join(std::uint32_t n, const wire::Bytes& bytes);
  struct SeenJoin;
  const SeenJoin* pick_stale_join();
  // The hostile node's datagram `out` to node `to` (decoded_ holds its plaintext), as it
  // leaves: lying frames may be added to it, and lying datagrams of its own sent before it.
  wire::Bytes lie(std::uint32_t n, std::uint32_t to, const proto::OutDatagram& out);
  void send_lying_datagram(std::uint32_t n, std::uint32_t to, const wire::DatagramHeader& h);

  // --- session_workload.cpp: the shell and the agents
  void shell_poll();
  void start_setup();
  void on_reply(const Request& r, const wire::Reply& reply);
  void on_action(std::uint32_t index);
  void shell_append(std::uint32_t stream, char kind, std::uint64_t number);
  void flush_shell_appends();
  void maybe_finish_workload();
  void ask_quiescence();
  void maybe_relocate(AgentContext& ctx, double chance);
  // Appends one numbered message from the handler's stream to `to`; false if refused.
  bool agent_append(AgentContext& ctx, const std::string& to,
                    std::map<std::string, std::uint64_t>* sent);
  StreamId id_of(std::string_view name);

  const SessionScenario& sc_;
  RunOptions opt_;
  Rng rng_;
  SimNetwork net_;
  SessionChecker checker_;
  std::vector<NodeRun> nodes_;
  std::vector<SessionEvent> heap_;
  std::uint64_t order_ = 0;
  std::uint64_t in_flight_ = 0;  // arrivals scheduled, not yet processed
  Time now_ = 0;
  bool stop_ = false;
  Digest digest_;
  SessionSummary sum_;

  // The shell's script.
  Phase phase_ = Phase::kJoining;
  std::map<std::uint64_t, Request> outstanding_;
  std::deque<ShellAppend> shell_appends_;  // refused by a full buffer: retried in order
  std::vector<std::uint64_t> shell_sent_;  // per stream: the shell's messages to it
  std::uint32_t attached_ = 0;
  std::uint32_t actions_done_ = 0;
  bool quiesce_scheduled_ = false;
  std::uint64_t next_gid_ = 1;
  std::uint32_t forwards_ = 0;
  std::unordered_map<std::string, StreamId> ids_;  // a name's latest stream
  std::vector<StreamId> stream_ids_;               // every stream created, in order
  std::set<StreamId> silent_;                      // receivers whose agents never forward
  // An ephemeral stream's lives (SessionAction::kLife): the one under way, the appends of
  // those waiting for it to end, and whether its destroy waits for the shell's appends.
  struct Lives {
    bool busy = false;
    bool stopped = false;  // a crash failed one of its operations: no more lives
    std::deque<std::uint32_t> waiting;
    std::uint32_t appends = 0;
    bool destroy_due = false;
  };
  std::map<std::uint32_t, Lives> lives_;  // by stream index
  std::set<StreamId> durable_ids_;
  std::vector<std::string> receivers_;  // names
  std::vector<SiteId> site_ids_;        // of the sites a stream may live at, by node index
  std::vector<std::unique_ptr<site::SiteCore>> crashed_sites_;  // kept, never run again
  std::vector<std::unique_ptr<leader::LeaderNode>> crashed_leaders_;
  std::set<SiteId> crashed_ids_;

  // Reassembly of site-to-site control messages, to watch Arrive messages.
  struct Partial {
    std::uint64_t total = 0;
    std::map<std::uint64_t, wire::Bytes> pieces;  // by offset
  };
  // By channel, numbering (origin) and number.
  using ControlKey = std::tuple<StreamId, StreamId, std::uint32_t, proto::Seq>;
  std::map<ControlKey, Partial> partial_;
  std::set<ControlKey> control_done_;
  proto::OutDatagram out_;
  wire::DecodedDatagram decoded_;
  wire::Bytes opened_;  // the plaintext of the sealed datagram on_transmit() looks at
  // The last counter each sender (site, boot) sealed under (nonce_unique).
  std::map<std::pair<SiteId, std::uint32_t>, std::uint64_t> nonces_;
  Status open_sent(std::uint32_t n, const proto::OutDatagram& out, const std::string& who);
  std::vector<Arrival> arrivals_;

  // The hostile member's memory and its own draws (apart from the run's, so that what it
  // does not change what the honest nodes draw).
  struct Seen {
    proto::ChannelKey key;
    proto::Seq seq = 0;
    std::uint32_t origin = 0;
    SiteId from_site = 0;
    SiteId to_site = 0;
  };
  std::vector<Seen> seen_;  // a ring of the latest DATA frames
  std::size_t seen_next_ = 0;
  struct SeenJoin {
    wire::Bytes bytes;
    std::uint32_t node = 0;
    std::uint32_t process = 0;         // the node's restarts when it sent it
    std::uint32_t leader_process = 0;  // the leader's restarts then
  };
  std::vector<SeenJoin> joins_seen_;
  Rng hostile_rng_;
  std::uint64_t hostile_counter_ = 0;  // its own datagrams' seal counters (a lane of its own)
  // Hashes of the kSealAsOther lies sent, which no honest node may accept.
  std::unordered_set<std::uint64_t> forgeries_;
  // A datagram of node n's in another member's name (kSealAsOther), if it knows one.
  void send_as_other(std::uint32_t n, std::uint32_t to, const wire::DatagramHeader& h);
};

}  // namespace mstream::sim::detail
