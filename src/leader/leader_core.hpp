#pragma once
// LeaderCore: the session leader, sans-IO (seed 004 §3; DESIGN.md "Session leader").
//   - admission: join datagrams get site ids (sites 1.., shells from kFirstShellId);
//   - control order: create, destroy, move and attach requests are accepted in one
//     session-wide order and applied one at a time per stream (guarantee 5);
//   - location manager: every stream's site and move epoch, pushed to every site and shell
//     (each keeps a replica) after each change;
//   - code registry: an agent's code is stored here once and shipped to a site on the agent's
//     first visit there;
//   - termination detection for `mstream run` (doc/session.md "Quiescence");
//   - failure detection and failure management (doc/session.md "Failures"): a site or shell
//     not heard from for the failure timeout is declared failed and fenced (every peer drops
//     what it still sends), and each of its streams is recovered at its failure manager.
// It talks through the transport of the process's site 0 (SiteCore::send_from_leader and
// set_leader_inbox); it never touches a socket or a clock.
//
// Thread-safety: none; driven by the thread that drives site 0.

#include <array>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/durable_store.hpp"
#include "proto/types.hpp"
#include "wire/control.hpp"
#include "wire/join.hpp"

namespace mstream::leader {

using proto::SiteId;
using proto::StreamId;
using proto::Time;

struct LeaderOptions {
  // Between termination-detection waves that found work, so a busy session is not flooded.
  Time probe_interval = 2 * proto::kMillisecond;
  // A move is pushed at once to the shells and to the sites that send to the stream (Watch);
  // the other sites' replicas, which serve only queries, get the moves of this long in one
  // batch, so a stream hopping fast does not cost every site a datagram per hop.
  Time location_batch = 5 * proto::kMillisecond;
  // Whether handler errors forwarded to the shells also go to poll_log() (see
  // SiteOptions::log_forwarded_errors).
  bool log_forwarded_errors = true;
  // A peer not heard from for this long is declared failed (DESIGN.md guarantee 6). 0: never.
  Time failure_timeout = 1000 * proto::kMillisecond;
  // Where the leader keeps its state (`mstream leader --state`): a restarted leader resumes
  // the session from it (doc/session.md "A restarted leader"). Null: a leader's crash ends
  // the session.
  std::shared_ptr<proto::DurableStore> state;
  // With a state: how long peers that stopped hearing from the leader wait for it to come
  // back, their handlers paused, before they leave (wire::Welcome::resume_timeout_us).
  Time resume_timeout = 30 * proto::kSecond;
  // Limits (COMMANDS.md, Limits): a create or move to a site hosting this many streams, and
  // an agent registered on a stream with this many agents, fail. 0: no limit. A recovery is
  // never refused (the failure manager takes its streams over the limit, and it is logged).
  std::size_t max_streams_per_site = 65536;
  std::size_t max_agents_per_stream = 64;
  // Tests only: the sender rules (wire::Sender) not checked, bit 1 << rule (SiteOptions).
  std::uint32_t sender_rules_off = 0;
};

class LeaderCore {
 public:
  using Send = std::function<void(SiteId to, const wire::ControlMessage& m)>;
  // Called when a new peer is admitted (the transport must accept it).
  using Admit = std::function<void(SiteId site)>;

  LeaderCore(LeaderOptions options, Send send, Admit admit);

  // Site 0 is the leader's own; address is where other sites reach it, pid its process.
  void set_own_address(std::string address, std::uint64_t pid = 0);

  // A join datagram from `from` ("HOST:PORT"); fills *reply.
  bool on_join(const wire::JoinMessage& m, const std::string& from, wire::JoinMessage* reply,
               Time now = 0);
  // When the leader's process last heard from a peer (-1: never); the failure detector's
  // input. Unset: no peer is ever declared failed.
  void set_last_heard(std::function<Time(SiteId)> last_heard) {
    last_heard_ = std::move(last_heard);
  }
  // A control message from the control stream of `from`.
  void on_message(SiteId from, const wire::ControlMessage& m, Time now);
  void on_timeout(Time now);
  Time next_timeout() const {
    return std::min({next_probe_, locations_due_, next_liveness_check_});
  }

  // Tells every site and shell to stop.
  void shutdown_session();

  bool idle() const { return in_flight_.empty() && queued_ops() == 0; }
  // Moves not yet told to the replicas that learn them in batches (they may lag a little).
  bool locations_pending() const { return !batched_locations_.empty(); }
  std::size_t stream_count() const { return streams_.size(); }
  // Declares a peer failed now, as the failure detector does after the timeout (tests).
  void declare_failed(SiteId peer, Time now);
  const std::map<SiteId, wire::PeerRecord>& peers() const { return peers_; }
  const std::map<StreamId, wire::StreamRecord>& streams() const { return streams_; }
  // The controllers each site declared (wire::Controls), by site.
  const std::map<SiteId, wire::Controls>& controls() const { return controls_; }
  // A log line per error worth a user's eye.
  bool poll_log(std::string* line);
  void report(std::string line) { log_.push_back(std::move(line)); }

  // Durable state (`mstream leader --state`; doc/session.md "A restarted leader").
  // Whether anything changed since the last take_changes().
  bool has_changes() const { return meta_dirty_; }
  // What changed, as store records (leader/leader_state.hpp) to be committed in one put()
  // before anything the leader sent since leaves the process; *peers: the peers whose control
  // channels with the leader changed too (LeaderNode saves those).
  void take_changes(std::vector<proto::StoredRecord>* records, std::vector<SiteId>* peers);
  // Loads the state the records hold (every record of the store; channel records are
  // skipped). Call before anything else, on a new LeaderCore. Errors: kMalformed (the core
  // is then partly loaded and must be discarded).
  Status restore(const std::vector<proto::StoredRecord>& records);
  // After restore(), in the restarted process: every peer is admitted again (with the
  // failure timeout from now to be heard from), and site 0 is treated as a site that failed
  // and came back at once: its streams are recovered, the operations it was an end of fail.
  void resume(Time now);
  // The highest epoch handed out for each stream: no move of an earlier process of this
  // leader had a higher one.
  std::map<StreamId, std::uint64_t> max_epochs() const {
    std::map<StreamId, std::uint64_t> out;
    for (const auto& [id, st] : state_) out[id] = st.max_epoch;
    return out;
  }
  // Which process of site 0 this is: 0, then one more at each restart.
  std::uint32_t boot() const { return boot_; }
  // The sizes of the tables that could grow with the streams, agents and shells that are gone
  // (doc/session.md "What is forgotten"), for the tests that check each stays bounded.
  struct Sizes {
    std::size_t peers = 0, join_nonces = 0, streams = 0, stream_states = 0, agents = 0,
                requests_done_by = 0, delegated = 0, admitted_at = 0, controls = 0,
                dirty_streams = 0, batched_locations = 0, retired = 0;
  };
  // How many destroyed streams the leader remembers the last site of (wire::Placed): as many
  // as a receiver's site keeps pins of destroyed senders for.
  static constexpr std::size_t kRetiredKept = 4096;
  Sizes sizes() const;
  // Every stream id below it is in streams() or was destroyed (or never created): the ids of
  // creates still in flight, and those after them, are not (wire::Welcome::settled_below).
  StreamId settled_below() const;
  // Control messages dropped because their sender may not send them to the leader
  // (wire::Sender), by message type (the ControlMessage index).
  const std::array<std::uint64_t, wire::kControlTypes>& refused_control() const {
    return refused_control_;
  }
  // What the leader did that tests and the simulator look for.
  struct Stats {
    // Answers (Installed, Settled) from a site that was asked, come after their operation
    // ended otherwise (a move settled with its target, whose Installed follows): dropped, not
    // counted in refused_control.
    std::uint64_t stale_answers = 0;
    // Moves whose source failed (or was this process's previous one), settled as taken
    // effect by their target.
    std::uint64_t moves_settled_at_target = 0;
    // Answers to moves repeated by the leader because their target failed before its own
    // answer was known to have got through.
    std::uint64_t answers_repeated = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct PolicyStep {
    std::uint8_t level = wire::kPolicySession;
    std::uint8_t event = wire::kPolicyOpen;
    SiteId site = 0;          // where the controller is
    std::uint64_t agent = 0;  // a stream-level check: the stream's controller agent
  };
  struct Op {
    SiteId requester = 0;
    std::uint64_t req = 0;
    wire::ControlMessage request;
    StreamId stream = 0;
    std::uint64_t agent = 0;  // attach: the id given
    std::uint64_t epoch = 0;  // move: the new epoch
    SiteId target = 0;
    // A move one end of which failed: the leader waits for the other end's Settled.
    SiteId settle_with = wire::kNoSite;
    SiteId source = wire::kNoSite;  // move: where the stream was
    // Policy (COMMANDS.md, Policy): the controllers' checks run before the operation does,
    // one at a time; `asking` is the site whose verdict on checks[checked] is awaited.
    bool vetted = false;
    std::vector<PolicyStep> checks;
    std::size_t checked = 0;
    SiteId asking = wire::kNoSite;
    std::uint64_t check = 0;
  };
  struct AgentInfo {
    wire::Code code;
    std::set<SiteId> visited;
  };
  struct StreamState {
    std::vector<std::uint64_t> agents;
    std::deque<Op> queue;  // ops waiting for the one in flight
    bool busy = false;
    SiteId temp_owner = wire::kNoSite;  // a -temp stream dies with this shell
    std::set<SiteId> watchers;          // sites with a sender to it (Watch)
    std::uint64_t max_epoch = 1;        // the highest epoch handed out for it
    // Where it was before its last move: a report its handlers sent from there may come
    // after the move (the leader's sender rules, leader/sender_rules.cpp).
    SiteId previous_site = wire::kNoSite;
    // The senders that opened it (its site has them too, wire::Opened): a recovery gives them
    // to its failure manager.
    std::set<StreamId> opened;
  };

  // The sender rules (wire::Sender), checked before a message is acted on.
  bool sender_allowed(SiteId from, const wire::ControlMessage& m) const;
  bool hosts(SiteId from, StreamId stream) const;
  bool stale_answer(SiteId from, const wire::ControlMessage& m) const;
  void move_took_effect(StreamId id, const Op& op, Time now);
  void moved(StreamId id, SiteId to);
  void accept(SiteId from, const wire::ControlMessage& m);
  bool plan_checks(Op& op);
  void ask(Op& op);
  std::vector<std::string> policy_args(const Op& op, const PolicyStep& step) const;
  void on_verdict(const wire::PolicyVerdict& v, Time now);
  void on_controls(SiteId from, const wire::Controls& c);
  std::uint64_t controller_of(StreamId id) const;
  std::uint64_t site_events(SiteId site) const;
  std::uint64_t session_events() const;
  Status check_room(SiteId site, StreamId stream) const;
  void count_hosted(SiteId from, SiteId to);
  void welcome(SiteId id);
  void retry_checks();
  void start(Op op);
  void finish(StreamId stream, Op& op, std::uint64_t code, std::string text);
  void next_op(StreamId stream);
  void on_installed(const wire::Installed& m, Time now);
  void on_watch(SiteId from, const wire::Watch& m);
  void publish_move(const wire::StreamRecord& rec, SiteId requester, Time now);
  void flush_locations();
  void flush_locations_of(StreamId stream);
  SiteId moving_to(StreamId stream) const;
  void broadcast(const wire::ControlMessage& m, SiteId except = wire::kNoSite);
  void reply(SiteId to, std::uint64_t req, std::uint64_t code, std::string text);
  void ship_code(std::uint64_t agent, SiteId site);
  static wire::StreamRecord new_record(StreamId id, const wire::CreateReq& c, SiteId site);
  void on_probe_reply(SiteId from, const wire::ProbeReply& m, Time now);
  void start_wave(Time now);
  void on_leave(SiteId shell);
  void drop_temp_streams(SiteId shell);
  void check_liveness(Time now);
  void fail_op(StreamId id, SiteId failed);
  void recover(StreamId id, SiteId failed);
  void on_settled(SiteId from, const wire::Settled& m, Time now);
  void complete_destroy(StreamId id, const std::vector<wire::InChannel>& final_in);
  void send(SiteId to, const wire::ControlMessage& m);
  void done_request(SiteId requester);
  void maybe_complete_wave(Time now);
  std::size_t queued_ops() const;
  bool live_site(SiteId s) const;
  Status check_new_name(const std::string& name) const;
  void touch(StreamId id) {
    if (!options_.state) return;
    dirty_streams_.insert(id);
    meta_dirty_ = true;
  }
  void touch_peer(SiteId site) {
    if (!options_.state) return;
    dirty_peers_.insert(site);
    meta_dirty_ = true;
  }
  void touch_retired(StreamId id) {
    if (!options_.state) return;
    dirty_retired_.insert(id);
    meta_dirty_ = true;
  }
  void touch_all();
  void forget_shell(SiteId shell);
  void retire(StreamId id, SiteId site, std::uint64_t epoch);
  void fail_site_ops(SiteId peer);

  LeaderOptions options_;
  Send send_;
  Admit admit_;
  std::map<SiteId, wire::PeerRecord> peers_;
  std::map<std::uint64_t, SiteId> join_nonces_;  // a repeated join gets the same id
  SiteId next_site_ = 1;
  SiteId next_shell_;
  std::map<StreamId, wire::StreamRecord> streams_;
  std::map<SiteId, std::size_t> hosted_;  // streams per site, as streams_ has them
  std::unordered_map<std::string, StreamId> by_name_;
  std::unordered_map<StreamId, StreamState> state_;
  std::map<std::uint64_t, AgentInfo> agents_;
  std::set<std::string> reserved_names_;  // creates accepted, not yet installed
  StreamId next_stream_ = 1;
  std::uint64_t next_agent_ = 1;
  std::map<StreamId, Op> in_flight_;  // one per busy stream
  // Policy: what each site's controllers handle (Controls), and the checks awaiting a verdict:
  // the stream of the op, or (new_peer checks) the peer waiting for its Welcome.
  std::map<SiteId, wire::Controls> controls_;
  std::uint64_t next_check_ = 0;
  std::map<std::uint64_t, StreamId> checks_;
  std::map<std::uint64_t, SiteId> peer_checks_;
  // Moves not yet told to the sites that do not watch the stream: per stream, the latest
  // record naming each site it was at since the last batch, in epoch order.
  std::map<StreamId, std::vector<wire::StreamRecord>> batched_locations_;
  Time locations_due_ = proto::kNever;

  // Termination detection: a wave probes every site; two consecutive waves with every site
  // idle and the same, balanced counters mean quiescence (Mattern's four-counter method).
  struct Waiter {
    SiteId shell = 0;
    std::uint64_t req = 0;
    std::uint64_t appended = 0;
  };
  std::vector<Waiter> waiters_;
  std::uint64_t wave_ = 0;
  std::map<SiteId, wire::ProbeReply> wave_replies_;
  struct WaveTotals {
    std::uint64_t appended = 0, consumed = 0, requests = 0, requests_done = 0, held = 0;
    std::map<SiteId, std::uint64_t> from_shell;
    friend bool operator==(const WaveTotals&, const WaveTotals&) = default;
  };
  std::optional<WaveTotals> last_wave_;
  Time next_probe_ = proto::kNever;
  bool wave_open_ = false;
  // After a failure the counters of the failed peer are gone, and what it appended or
  // consumed is unknowable: waves then also ask what every sender still holds.
  bool failures_seen_ = false;
  std::map<SiteId, std::uint64_t> requests_done_by_;  // handler requests completed, per site
  std::function<Time(SiteId)> last_heard_;
  // Moves whose target answers the requester, per target, for twice the failure timeout:
  // if the target fails meanwhile, the leader repeats its answer.
  struct Delegated {
    SiteId requester = 0;
    std::uint64_t req = 0;
    wire::StreamRecord rec;
    Time at = 0;
  };
  std::map<SiteId, std::vector<Delegated>> delegated_;
  std::map<SiteId, Time> admitted_at_;
  Time next_liveness_check_ = proto::kNever;
  std::deque<std::string> log_;
  std::array<std::uint64_t, wire::kControlTypes> refused_control_{};
  Stats stats_;

  // Durable state: what changed since take_changes().
  std::uint32_t boot_ = 0;
  std::uint64_t writes_ = 0;  // orders this boot's records (StoredRecord::version)
  bool meta_dirty_ = false;
  std::set<StreamId> dirty_streams_;
  std::set<SiteId> dirty_peers_;
  std::set<StreamId> dirty_retired_;
  // The last kRetiredKept streams destroyed, and in which order: the oldest destroy goes first,
  // whatever the stream's id (a long-lived stream has a small one).
  struct Retired {
    SiteId site = 0;
    std::uint64_t epoch = 0;  // of its destroy
    std::uint64_t order = 0;  // key of retired_order_
  };
  std::map<StreamId, Retired> retired_;
  std::map<std::uint64_t, StreamId> retired_order_;
  std::uint64_t retired_count_ = 0;
};

}  // namespace mstream::leader
