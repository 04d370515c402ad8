#pragma once
// SiteCore: one site of a session (or a shell, which hosts no streams), sans-IO. It owns the
// site's Transport and the streams it hosts; their handlers run on the lanes of an executor
// (proto::Executor: worker threads in a daemon, inline in the simulator):
//   - user streams: deliveries queue per stream; a stream's agents run one message at a time
//     and the message is consumed (acknowledged to its sender) when every append handler has
//     returned (DESIGN.md guarantee 2);
//   - a stream's agents are pinned to one lane (site::Lane: a thread, an interpreter), and the
//     stream has at most one piece of work there at a time (a batch of deliveries, a move's
//     briefcases, an arrival's initialization and relocation handlers, an attach, a destroy):
//     what its handlers did to the session is carried out here when the work comes back,
//     before its messages count as consumed;
//   - control: messages from the leader and from other sites (doc/session.md) arrive on this
//     site's control stream; those about a hosted stream (move, attach, destroy) queue behind
//     the stream's current handler and take effect at the next handler boundary (guarantee 3);
//   - moves: a departing stream takes its briefcases, the sequence state of every channel into
//     and out of it, and leaves nothing behind but cached code and agent globals (guarantee 4);
//     the target runs first-visit initialization, restores briefcases and runs relocation
//     handlers before any further append handler;
//   - senders learn locations from the directory replica the leader keeps current at every
//     site, and re-send what was not consumed when a receiver moved (no forwarding chain).
//
// Thread-safety: one thread drives a SiteCore (the driver's); only lanes' work runs elsewhere,
// and it touches nothing of the SiteCore but its SiteView (see site/lane.hpp).

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "mstream/agent.hpp"
#include "proto/durable_store.hpp"
#include "proto/executor.hpp"
#include "proto/node.hpp"
#include "proto/transport.hpp"
#include "site/directory.hpp"
#include "site/ids.hpp"
#include "site/lane.hpp"
#include "tcl/script_api.hpp"
#include "wire/control.hpp"

namespace mstream::site {

using proto::SiteId;
using proto::StreamId;
using proto::Time;

struct SiteOptions {
  SiteId self = 0;
  bool shell = false;
  proto::TransportConfig transport;
  // User messages; the transport itself allows larger control messages (a move carries every
  // unconsumed message of the stream's outgoing channels).
  std::size_t max_message_bytes = 1u << 20;
  std::uint32_t max_unconsumed_messages = 4096;
  // What one stream's handlers may have appended that waits at this site for room in full
  // channels (a slow receiver), in bytes; beyond it their stream_append fails. 0: no limit.
  std::uint64_t max_held_bytes = 256u << 20;
  // What one run of a sandboxed agent's code may take (COMMANDS.md, Sandbox).
  tcl::HandlerLimits handler_limits;
  // Work handed to lanes per step(), so that a busy stream does not starve the network.
  std::size_t step_budget = 256;
  // Messages of one stream handed to its lane at once (fewer wake-ups of a worker thread);
  // a handler that moves or destroys its own stream ends the batch there, and so does an
  // operation (move, attach, destroy, policy check) queued for the stream meanwhile.
  std::size_t delivery_batch = 256;
  // How long one batch may run before the lane's other streams get their turn (the rest of
  // it goes back to the stream's queue), on `lane_clock`, which the lanes' threads read.
  // No clock: no bound but delivery_batch (the simulator's handlers take no time).
  proto::Time delivery_slice = proto::kMillisecond;
  std::function<proto::Time()> lane_clock;
  // Where handlers run; null: inline, on the thread that drives the SiteCore. The SiteCore
  // takes it over (its destructor stops it).
  std::shared_ptr<proto::Executor> executor;
  // Where this site keeps the checkpoints of the durable streams it is the failure manager
  // of (doc/session.md "Durable streams"). Null: it keeps none, and refuses them.
  std::shared_ptr<proto::DurableStore> store;
  // Whether `puts` output is kept for poll_output() (a daemon) or dropped (benchmarks).
  bool keep_output = true;
  // Whether handler errors, which are forwarded to the leader and from there to every shell,
  // are also kept for poll_error() (a daemon's own log). Off when the shell shares our stderr
  // (mstream run's embedded session), so each error is printed once.
  bool log_forwarded_errors = true;
  // Policy (COMMANDS.md, Policy): the Tcl code of this site's controller agent, and (site 0
  // only) of the session's controller; empty: none. Both are trusted (they run outside the
  // sandbox) and privileged. Each is loaded on every lane, so that the commands it exposes
  // to the sandboxed agents are there on each; its policy handlers run on the first lane.
  std::string controller;
  std::string session_controller;
  // A secured session (doc/security.md): a member's key with the leader, k(0, self), handed
  // out at its join; its keys with the other members come in the Welcome and PeerUpdates.
  // None (and no master_key): the session is not secured.
  std::optional<wire::Key> leader_key;
  // The leader's process (site 0) only: the session's master key, from which it derives the
  // key of every pair it is in.
  std::optional<wire::Key> master_key;
  // Tests only: the sender rules (wire::Sender) not checked, bit 1 << rule; so a test can show
  // what a member's lies would do without each.
  std::uint32_t sender_rules_off = 0;
  // How many destroyed streams' channel ends the directory keeps (Directory::kKeptDestroyed);
  // older ones are answered by the leader's watermark. The simulator keeps 1.
  std::size_t kept_destroyed = Directory::kKeptDestroyed;

  // The options of a site or shell whose datagrams are at most `mtu` bytes. The transport
  // admits messages far larger than user messages: a move carries the unconsumed messages of
  // the stream's outgoing channels in one control message.
  static SiteOptions with_mtu(SiteId self, std::size_t mtu, bool shell = false) {
    SiteOptions o;
    o.self = self;
    o.shell = shell;
    o.transport.path.mtu = mtu;
    o.transport.channel.max_message_bytes = 64u << 20;
    o.transport.channel.max_unconsumed_bytes = 256u << 20;
    return o;
  }
};

struct SiteCounters {
  std::uint64_t appended = 0;  // user messages accepted from handlers (or this shell)
  std::uint64_t consumed = 0;  // messages from streams consumed here, or discarded here
  // This shell's messages its stream never took (destroyed first): each is reported.
  std::uint64_t discarded_own = 0;
  std::map<SiteId, std::uint64_t> consumed_from_shell;
  std::uint64_t requests = 0;  // control requests sent for handlers
  std::uint64_t handler_errors = 0;
  // Handler errors (wire::ErrorReport) and refused appends of its own this shell was told of:
  // `mstream run` exits with kExitHandlerErrors when any was (session_commands.cpp). Those a
  // command raised instead (a -sync append, a move) are the script's to catch.
  std::uint64_t errors_told = 0;
  std::uint64_t moves_in = 0;
  std::uint64_t moves_out = 0;
  // Control messages this node sent to another process (not those between the leader and its
  // own site 0), and work it handed to its worker threads: what `mstream bench move` reports
  // per hop.
  std::uint64_t control_sent = 0;
  std::uint64_t worker_jobs = 0;
  // A durable stream's failure manager failed (or site 0 restarted) while the briefcases of
  // a checkpoint were being saved (the simulator looks for it: its coverage must stay).
  std::uint64_t checkpoints_saving_at_fm_loss = 0;
  // A destroyed stream's outgoing channels dropped once drained, after its destroy.
  std::uint64_t channels_retired = 0;
  // Appends of a stream destroyed while they waited for an open, sent once it was granted.
  std::uint64_t opened_after_destroy = 0;
  // Destroyed senders placed by the leader's answer (wire::Placed::destroyed_at): this site
  // never had the word of where they were.
  std::uint64_t destroyed_senders_placed = 0;
  // A control channel re-sent after its peer refused what lay beyond its window (a restarted
  // leader's restored channel holds more than the bound).
  std::uint64_t control_resends = 0;
  // Control messages dropped because their sender may not send them (wire::Sender), by
  // message type (the ControlMessage index): forgeries by a member, or commands no member
  // but the leader may give.
  std::array<std::uint64_t, wire::kControlTypes> refused_control{};
  std::uint64_t refused_control_total() const {
    std::uint64_t n = 0;
    for (std::uint64_t c : refused_control) n += c;
    return n;
  }
};

// The sizes of what a site keeps that could grow with the streams and shells that are gone
// (doc/session.md "What is forgotten"), for the tests that check each stays bounded.
struct SiteSizes {
  std::size_t hosted = 0;
  std::size_t code = 0;               // agent code cached here
  std::size_t loaded = 0;             // agents loaded here (and their initial briefcases)
  std::size_t sandboxes = 0;          // Tcl safe interpreters, over every lane
  std::size_t directory_streams = 0;  // the replica's records
  std::size_t directory_peers = 0;
  std::size_t destroyed_records = 0;  // what destroyed streams had consumed (Location::final_in)
  std::size_t sender_pins = 0;        // where senders' DATA is taken from (Transport)
  std::size_t send_channels = 0;
  std::size_t recv_channels = 0;
  std::size_t shell_counts = 0;  // SiteCounters::consumed_from_shell
  std::size_t per_stream = 0;    // the other tables by stream (expected arrivals, opens, ...)
};

// What a test or the simulator can observe of one handler run (a trace hook).
struct HandlerTrace {
  // kRecover/kFailure: a recovery's install and failure handlers (where a move has kInstall
  // and kRelocation).
  enum class Kind {
    kAppend,
    kRelocation,
    kInstall,
    kDepart,
    kRecover,
    kFailure
  } kind = Kind::kAppend;
  StreamId stream = 0;
  StreamId from = 0;
  proto::Seq seq = 0;
  std::uint64_t epoch = 0;
  std::string_view payload;
};

// A FIFO queue that allocates nothing until its first element: libstdc++'s std::deque takes
// about 590 bytes even empty, and a site holds many idle streams (bench memory: <= 2 KB per
// idle stream with a C++ agent).
template <class T>
class LazyQueue {
 public:
  bool empty() const { return !q_ || q_->empty(); }
  std::size_t size() const { return q_ ? q_->size() : 0; }
  void push_back(T v) {
    if (!q_) q_ = std::make_unique<std::deque<T>>();
    q_->push_back(std::move(v));
  }
  void push_front(T v) {
    if (!q_) q_ = std::make_unique<std::deque<T>>();
    q_->push_front(std::move(v));
  }
  // REQUIRES: !empty()
  T& front() { return q_->front(); }
  const T& front() const { return q_->front(); }
  void pop_front() { q_->pop_front(); }
  // REQUIRES: at <= size()
  void insert(std::size_t at, T v) {
    if (!q_) q_ = std::make_unique<std::deque<T>>();
    q_->insert(q_->begin() + static_cast<std::ptrdiff_t>(at), std::move(v));
  }

 private:
  std::unique_ptr<std::deque<T>> q_;
};

// What a durable stream's site keeps between checkpoints: the messages it consumed and what
// its handlers appended since the last checkpoint its failure manager stored. Consumption is
// acknowledged to the senders, and the appends sent, only once a checkpoint covering them is
// stored (so nothing a crash could make the stream do differently has left the site).
struct DurableState {
  struct Consumed {
    proto::ChannelKey key;
    proto::Seq seq = 0;
    std::uint32_t origin = 0;
    bool sync = false;  // a shell waits for its handlers' results
    std::string result;
    wire::HandlerFailure failure;
  };
  struct Append {
    StreamId to = 0;
    wire::Bytes payload;
  };
  std::vector<Consumed> unsaved, covering;  // covering: by the checkpoint in flight
  std::vector<Append> held, covering_out;
  std::uint64_t version = 0;  // of the last checkpoint sent (per epoch at the store)
  bool in_flight = false;
  // In flight, its briefcases still being saved on the stream's lane (not yet sent): they
  // hold the state after exactly what `covering` lists, so the coverage stays as it is.
  bool saving = false;
  SiteId sent_to = wire::kNoSite;
  bool force = false;  // checkpoint even with nothing new (the failure manager changed)

  // The checkpoint in flight was not stored: what it covered waits for the next one, first.
  // REQUIRES: !saving (its briefcases would hold what its channels no longer say).
  void uncover() {
    unsaved.insert(unsaved.begin(), covering.begin(), covering.end());
    held.insert(held.begin(), std::make_move_iterator(covering_out.begin()),
                std::make_move_iterator(covering_out.end()));
    covering.clear();
    covering_out.clear();
    in_flight = false;
  }
};

class SiteCore final : public proto::Node {
 public:
  explicit SiteCore(SiteOptions options);
  ~SiteCore() override;

  // Network and time (proto::Node).
  SiteId self() const override { return options_.self; }
  void on_datagram(wire::ByteView bytes, Time now) override;
  SiteId last_source() const override { return last_source_; }
  void step(Time now) override;
  bool has_work() const override;
  Time next_timeout() const override;
  void on_timeout(Time now) override;
  bool poll_transmit(Time now, proto::OutDatagram* out) override;
  std::optional<std::string> peer_address(SiteId site) const override;
  bool finished() const override { return finished_; }
  // Finished because the leader fell silent for the failure timeout (we were declared failed,
  // or it is gone): the daemon joins again, as a new site.
  bool lost_session() const { return lost_session_; }
  // The leader has been silent for the failure timeout, and it is durable: handlers wait
  // until it is heard again, or until the resume timeout, when the peer leaves.
  bool leader_suspended() const { return suspended_; }

  // Site 0 of a leader restarted from its durable state: this process's boot (set before
  // anything is sent; wire/datagram.hpp), and the leader's control channels with a peer, for
  // the leader's durable state (leader/leader_node.hpp).
  void set_boot(std::uint32_t boot);
  // Replaces SiteOptions::master_key before anything was sent (a resumed leader's).
  void set_master_key(const wire::Key& key) { transport_.set_master_key(key); }
  void leader_channels(SiteId peer, std::vector<wire::OutChannel>* out,
                       std::vector<wire::InChannel>* in) const;
  void restore_leader_channels(SiteId peer, const std::vector<wire::OutChannel>& out,
                               const std::vector<wire::InChannel>& in);
  // Arrivals of epochs up to these, per stream, were meant for this site's previous process:
  // their moves were settled without it (LeaderCore::resume), so they are dropped.
  void refuse_arrivals(std::map<StreamId, std::uint64_t> up_to) {
    refused_arrivals_ = std::move(up_to);
  }
  // The session's failure timeout, from the leader's Welcome (0: no failure detection).
  Time failure_timeout() const { return failure_timeout_; }
  // How often a peer that has nothing to say pings the other end (a few per failure timeout,
  // so one lost ping does not make it look failed).
  static Time keepalive_interval(Time failure_timeout) { return failure_timeout / 4; }
  void set_keepalive(SiteId site, Time interval) { transport_.set_keepalive(site, interval); }
  Time last_heard(SiteId site) const { return transport_.last_heard(site); }

  // The leader process hosts site 0 and the leader on one transport: deliveries to the
  // leader's stream go to this hook, and send_from_leader() sends on its behalf.
  void set_leader_inbox(std::function<void(StreamId from, wire::ByteView payload)> inbox) {
    leader_inbox_ = std::move(inbox);
    (void)transport_.open_stream(kLeaderStream);
  }
  void send_from_leader(SiteId to, const wire::ControlMessage& m);
  // The leader admitted (or learned of) a peer: this transport accepts it.
  void admit(SiteId site) { transport_.admit_site(site); }

  // ---- Shell side (non-blocking primitives; the shell's blocking API is built on them).
  // Sends a request to the leader; its Reply is then found with take_reply(req).
  std::uint64_t send_request(wire::ControlMessage m);
  std::optional<wire::Reply> take_reply(std::uint64_t req);
  // Appends a user message from this node's own sender identity (a shell) or from `from`.
  // Errors: kNotFound (`no such stream "x"`), kTooLarge, kWouldBlock (retry after step()).
  Result<proto::Seq> append_from(StreamId from, const std::string& to, std::string_view message,
                                 bool sync);
  // The answer to a -sync append: the handlers' results, or the first handler that failed
  // (wire::SyncResult), at `site`, the stream's host that sent it.
  struct SyncAnswer {
    std::string result;
    wire::HandlerFailure failure;
    SiteId site = 0;
  };
  std::optional<SyncAnswer> take_sync_result(StreamId to, proto::Seq seq);
  // True once every message this node's sender identity appended was consumed.
  bool all_released() const;
  bool welcomed() const { return welcomed_; }
  // Whether the leader has heard which policy events this site's controllers handle (true
  // with no controllers): until then an operation here could go unchecked, so a daemon says
  // it is ready only after (doc/policy.md).
  bool controls_told() const;
  StreamId sender_id() const { return control_stream(options_.self); }
  // Whether this node's own sender (a shell) opened stream `to`, which every append to it
  // needs (site/opens.cpp); note_opened records the leader's yes.
  bool opened(StreamId to) const { return opened_.contains({sender_id(), to}); }
  void note_opened(StreamId to) { opened_.insert({sender_id(), to}); }

  // Lines printed by handlers (puts) and errors worth a user's eye (handler errors, failed
  // requests), in order.
  // *stamp (if given) is the driver's clock at the step in which the handler printed it.
  bool poll_output(std::string* line, Time* stamp = nullptr);
  bool poll_error(std::string* line);

  const Directory& directory() const { return view_->directory; }
  const SiteCounters& counters() const { return counters_; }
  // Arrives that wait for the leader's Expect (on_arrive): a member's forgeries stay here
  // until pushed out or until an Expect for their stream refuses them.
  std::size_t arrivals_waiting() const { return unexpected_.size(); }
  const proto::Transport& transport() const { return transport_; }
  // Sends `m` from this site's control stream to `to_stream` at site `to`, as it is. Only the
  // simulator's hostile member calls it (session_hostile.cpp), to lie in its own name.
  void send_raw_control(SiteId to, StreamId to_stream, const wire::ControlMessage& m) {
    send_control(to, to_stream, m);
  }
  std::size_t hosted_count() const { return hosted_.size(); }
  // REQUIRES: no lane is running work (an inline executor, or between steps of a simulation).
  SiteSizes sizes() const;
  bool hosts(StreamId id) const { return hosted_.contains(id); }
  // The streams hosted here, in id order.
  std::vector<StreamId> hosted_ids() const;
  // Streams destroyed here whose messages are still held here, in id order: sent and not yet
  // consumed, held for room, or waiting for an open. A crash of this site loses them, as it
  // loses those of the streams it hosts.
  std::vector<StreamId> destroyed_senders_holding() const;
  // Whether `to` has yet to consume anything `from` appended to it here (sent, held for room,
  // or waiting for its open).
  bool has_unconsumed(StreamId from, StreamId to) const;
  // destroys.cpp: a destroyed stream's channels go once drained.
  void retire_sender(StreamId from, const std::unordered_set<StreamId>& to);
  bool drop_if_drained(proto::ChannelKey key);
  void drop_drained_retired();
  // The version of the checkpoint of a durable stream hosted here that its failure manager
  // has not yet answered, if one is in flight (the simulator's hostile member aims with it).
  std::optional<std::uint64_t> checkpoint_in_flight(StreamId id) const;
  // Whether nothing is queued or running here (the probe's idle flag).
  bool idle() const;
  // Called just before handlers run: on the lane's thread for appends and relocations (inline
  // in the simulator), on the driver's for installs and departures. Set before any work.
  void set_trace(std::function<void(const HandlerTrace&)> trace) { trace_ = std::move(trace); }

 private:
  struct PendingOp {
    enum class Kind { kMoveOut, kAttach, kDestroy, kDetach, kPolicy } kind;
    wire::MoveOut move;
    std::uint64_t agent = 0;
    wire::PolicyCheck check;  // kPolicy: a check by the stream's controller
  };
  // What the delivery batches of one stream in flight share on its lane: the lane's thread
  // alone reads and writes `stopped`; this thread sets `yield`.
  struct DeliveryChain {
    // A batch ended before its last message (a handler held the stream, an operation
    // yielded, or the slice ran out): the batches after it run nothing, so that their
    // messages go back behind its rest, in order.
    bool stopped = false;
    // An operation waits for the stream: the batches stop after the handler that runs.
    std::atomic<bool> yield{false};
  };
  struct Hosted {
    wire::StreamRecord rec;
    std::vector<std::uint64_t> agents;
    LazyQueue<proto::Delivery> inbox;
    LazyQueue<PendingOp> ops;
    std::unordered_set<StreamId> in_peers;   // channels into it (senders)
    std::unordered_set<StreamId> out_peers;  // channels from it (receivers)
    bool ready = false;                      // on ready_
    // A handler asked to move or destroy this stream: no further delivery until the leader's
    // order for it arrives (or the request fails), so it takes effect "after the handler
    // returns and before the next delivery" (guarantee 3).
    std::uint64_t held_by = 0;
    // Whether an agent of it has an append handler, as its lane last said (after every attach,
    // arrival, delivery batch and detach): without one, messages are consumed here at once.
    bool has_append_handler = false;
    // Work of it on its lane: one job, or two delivery batches (the next is handed over
    // while the last one runs, so that the lane need not wait for this thread in between).
    std::uint32_t busy = 0;
    // Of a batch in flight that stopped early: how many of its messages (and of the
    // batches' before it) went back to the head of the inbox, where those of a later batch
    // go after them. Zero once nothing is in flight.
    std::uint32_t returned = 0;
    // The delivery batches in flight, while any are (see DeliveryChain).
    std::shared_ptr<DeliveryChain> chain;
    // A move whose target failed while the briefcases were being saved: depart() keeps the
    // stream (the epoch of that move; 0: none).
    std::uint64_t move_called_off = 0;
    // Its briefcases are being saved for a move: appends that waited for an open stay waiting
    // and leave with it (a durable stream's would otherwise be held here, unstored).
    bool departing = false;
    // Its agents' briefcases as its arrival left them (saved on its lane after the relocation
    // handlers), while no work of it ran since: a move then leaves with them without a round
    // trip to its lane. Reset by every submit().
    std::optional<std::vector<wire::AgentState>> briefcases_at_rest;
    // Set for a durable stream only (idle streams are many).
    std::unique_ptr<DurableState> durable;
    // The senders that opened it (wire::Opened): the only ones it takes a channel from.
    std::vector<StreamId> opened;
  };
  // Opens (site/opens.cpp): appends from `from` to a stream it has not opened wait for the
  // leader's answer to an implicit open.
  struct OpenWait {
    std::string name;       // the stream opened
    std::string from_name;  // the opener's, for errors
    std::deque<std::string> messages;
    bool answered = false;  // yes came while the stream was departing: no request is out
  };
  bool has_opened(Hosted* h, proto::ChannelKey key) const;
  void append_opened(Hosted* h, StreamId from, const std::string& to, std::string message,
                     const std::string& from_name);
  OpenWait& open_for(Hosted* h, StreamId from, StreamId to, const std::string& name);
  void ask_open(proto::ChannelKey key, const std::string& name);
  void flush_opened(Hosted& h);
  void on_open_answer(proto::ChannelKey key, const wire::Reply& r);
  void on_not_opened(proto::ChannelKey key);
  bool sender_opened(proto::ChannelKey key) const;
  void on_opened(const wire::Opened& m);
  // The appends of stream `from` that wait for opens: taken (it leaves), or copied (for its
  // checkpoint); and waiting again here (it arrived, or was recovered).
  std::vector<wire::WaitingAppends> take_waiting(StreamId from);
  std::vector<wire::WaitingAppends> waiting_of(StreamId from) const;
  // Appends of `from` wait for an open's verdict here: they go out under its numbering then,
  // so the numbering (Transport::set_sender_origin) must stay until they have.
  bool opens_waiting(StreamId from) const;
  void wait_again(Hosted& h, std::vector<wire::WaitingAppends> waiting);
  std::unordered_set<proto::ChannelKey, proto::ChannelKeyHash> opened_;  // pairs opened here
  std::unordered_map<proto::ChannelKey, OpenWait, proto::ChannelKeyHash> opening_;
  // Destroys (site/destroys.cpp): a handler's request waits here until the stream consumed
  // what the handler's stream appended to it before.
  struct WaitingDestroy {
    std::uint64_t req = 0;
    wire::DestroyReq request;
    proto::ChannelKey after;
  };
  std::vector<WaitingDestroy> destroys_waiting_;
  void request_destroy(std::uint64_t req, wire::DestroyReq m, StreamId caller);
  void send_waiting_destroys();
  std::unordered_map<std::uint64_t, proto::ChannelKey> open_requests_;
  // A shell's implicit opens that were denied, by stream: its next append gets the denial.
  std::unordered_map<StreamId, std::string> open_denied_;
  struct Delivering;
  struct Arriving;
  // Durable streams: the host's side of checkpointing.
  bool durable_waits(const Hosted& h) const;
  void hold_append(Hosted& h, const std::string& to, const std::string& message,
                   const std::string& from_name);
  void maybe_checkpoint(Hosted& h);
  void send_checkpoint(StreamId id, std::vector<wire::AgentState> briefcases);
  wire::Arrive snapshot(Hosted& h, std::vector<wire::AgentState> briefcases);
  wire::OutChannel out_channel(proto::ChannelKey key, const proto::SendState& st) const;
  void save_briefcases(Hosted& h, std::function<void(std::vector<wire::AgentState>)> then);
  void on_checkpointed(const wire::Checkpointed& m);
  void commit_durable(Hosted& h, bool covering_only);
  void on_failure_manager_failed(SiteId fm);
  void on_leader_restarted();
  SiteId failure_manager_of(const wire::StreamRecord& rec) const;
  // ... and the failure manager's.
  void on_checkpoint(SiteId from, wire::Checkpoint c);
  void store_pending_checkpoints();
  bool restore_checkpoint(const wire::Recover& m, wire::Arrive* a);

  void route(proto::Delivery& d);
  // The sender rules (wire::Sender; site/sender_rules.cpp), checked before on_control.
  enum class Admission { kAllow, kRefuse, kWait };
  Admission admit_control(SiteId from, const wire::ControlMessage& m) const;
  Admission admit_checkpoint(SiteId from, const wire::Checkpoint& c) const;
  bool host_as_known(SiteId from, StreamId stream) const;
  void refuse_control(SiteId from, const wire::ControlMessage& m);
  void wait_for_host(SiteId from, wire::Checkpoint c);
  void recheck_waiting_checkpoints(StreamId stream);
  void on_control(SiteId from_site, const wire::ControlMessage& m);
  void on_placed(const wire::Placed& m);
  void settle(std::uint64_t below);
  void on_location(const wire::StreamRecord& rec,
                   const std::vector<wire::InChannel>& final_in = {});
  bool apply_record(const wire::StreamRecord& rec,
                    const std::vector<wire::InChannel>& final_in = {});
  // A key of a pair with `peer` from the leader (Welcome, PeerUpdate), for the transport.
  void set_pair_key(SiteId peer, const std::string& key);
  void apply_peer(const wire::PeerRecord& peer);
  static std::uint64_t not_consumed(const proto::SendState& st, proto::Seq final_consumed);
  void on_arrive(SiteId from, wire::Arrive a);
  void on_expect(const wire::Expect& m);
  void try_install_parked();
  bool install_arrival(wire::Arrive& a, bool recovery);
  void on_recover(const wire::Recover& m);
  void on_settle(const wire::Settle& m);
  std::uint64_t held_messages() const;
  Time leader_silence_due() const;

  void arrived(StreamId id, Arriving& work);
  void mark_ready(Hosted& h);
  // Queues `op` for h's next handler boundary, and has its batches in flight stop soon.
  void queue_op(Hosted& h, PendingOp op);
  bool delivers_ahead(const Hosted& h) const;
  void run_ready();
  void apply_op(Hosted& h, PendingOp op);
  void depart(StreamId id, const wire::MoveOut& m, std::vector<wire::AgentState> briefcases);
  bool runnable(const Hosted& h) const;
  void deliver(Hosted& h);
  void discard_batch(Hosted& h);
  void refresh_append_flag(Hosted& h);
  void delivered(StreamId id, Delivering& work);
  void attach(Hosted& h, std::uint64_t agent);
  void detach(Hosted& h, std::uint64_t agent);
  void destroy(Hosted& h);
  void destroy_here(StreamId id);
  void finalize_visited(const wire::Finalize& m);
  // Runs work on the lane of `stream`, then done here; `stream` (if hosted) is busy meanwhile.
  void submit(StreamId stream, std::function<void(Lane&)> work, std::function<void()> done);
  void carry_out(Hosted* h, StreamId from, HandlerRun& run);
  // Handler errors (site/handler_errors.cpp). `sender`: the stream or control stream whose
  // message (or move) the handler ran for, if any: a shell's hears of it directly, or, when
  // `raised`, in the SyncResult or Reply it waits for instead.
  void report_handler_error(StreamId id, const std::string& stream, std::uint64_t agent,
                            const char* event, const tcl::HandlerOutcome& out, StreamId sender = 0,
                            bool raised = false);
  // Sends `report` to the leader for the shells, and to the shell `sender` is (if one) itself
  // unless `raised`.
  void tell_shells(wire::ErrorReport report, StreamId sender, bool raised);
  // The SyncResult of a -sync message whose handlers ran (`ran`: agent and outcome, in attach
  // order); reports every failure but the one the shell raises.
  wire::SyncResult sync_result(StreamId id, const std::string& stream, proto::Seq seq,
                               StreamId sender,
                               std::vector<std::pair<std::uint64_t, tcl::HandlerOutcome*>> ran);
  struct ArrivalFailure {
    std::uint64_t agent = 0;
    const char* event = "";
    const tcl::HandlerOutcome* out = nullptr;
  };
  // Reports the handler errors of an arrival; returns what the requester's Reply carries (the
  // first failure in attach order, when a shell waits for the move).
  wire::HandlerFailure report_arrival_failures(StreamId id, const std::string& stream,
                                               const std::vector<std::uint64_t>& agents,
                                               std::vector<ArrivalFailure> failures,
                                               SiteId requester);
  void send_control(SiteId to, StreamId to_stream, const wire::ControlMessage& m);
  void send_numbered_request(std::uint64_t req, wire::ControlMessage m);
  void reply_installed(const wire::Installed& i);
  // name: the destroyed stream's, for the report to a shell whose messages it never took.
  void drop_channels_to(StreamId to, std::string_view name = {});
  void add_sender(StreamId from, StreamId to);
  Result<proto::Seq> append_raw(StreamId from, StreamId to, SiteId to_site, wire::Bytes payload);
  // Where messages to `to` go now.
  SiteId site_of(StreamId to) const;
  void flush_overflow(proto::ChannelKey key);
  // Installs an arriving stream's send channel, its overflow included. False if inconsistent.
  bool import_channel(proto::ChannelKey key, proto::SendState st);
  static proto::SendState send_state_of(const wire::OutChannel& oc, SiteId dest);
  std::string sender_name(StreamId from) const;
  void report_error(std::string text);
  void add_output(std::string_view text, bool nonewline);
  void count_consumed(StreamId from, std::uint64_t n);
  void count_discarded(StreamId from, std::uint64_t n, std::string_view to_name = {});

  SiteOptions options_;
  proto::Transport transport_;
  std::unique_ptr<SiteView> view_;  // the directory replica, shared with the lanes
  std::shared_ptr<proto::Executor> executor_;
  std::vector<std::unique_ptr<Lane>> lanes_;  // one per executor lane
  std::size_t work_in_flight_ = 0;
  // Policy: the controllers, loaded once welcomed (site 0: at once), and the events they
  // handle as the leader last heard.
  void load_controllers();
  void drop_overflow(proto::ChannelKey key);
  void held_changed(StreamId from, std::int64_t delta);
  bool controllers_due() const;
  void on_policy_check(const wire::PolicyCheck& m);
  void run_policy(StreamId stream, std::uint64_t agent, const wire::PolicyCheck& m);
  void submit_lane(std::size_t lane, std::function<void(Lane&)> work, std::function<void()> done);
  void send_controls(const wire::Controls& c);
  bool is_controller(std::uint64_t agent) const;
  bool controllers_loaded_ = false;
  std::optional<wire::Controls> controls_sent_;
  std::map<std::uint64_t, std::string> broken_controllers_;  // failed to load: why
  // Agents loaded here (on their stream's lane), and whether each has an append handler.
  std::unordered_map<std::uint64_t, bool> loaded_;
  // Per loaded agent, its briefcase right after its initialization here: what a recovery
  // restores when the agent is cached here already.
  std::unordered_map<std::uint64_t, std::string> initial_briefcases_;
  std::unordered_map<StreamId, std::unique_ptr<Hosted>> hosted_;
  std::deque<StreamId> ready_;
  std::unordered_map<std::uint64_t, wire::Code> code_;  // agent code cached here
  std::deque<wire::Arrive> parked_;                     // arrivals waiting for code
  // Moves to here the leader announced (wire::Expect), by stream; and arrivals it has not
  // (yet) announced, with their senders: not counted as work (idle()), at most
  // kMaxUnexpectedPerSource from each sender, its oldest dropped first.
  struct Expected {
    std::uint64_t epoch = 0;
    SiteId source = 0;
  };
  std::map<StreamId, Expected> expected_;
  std::deque<std::pair<SiteId, wire::Arrive>> unexpected_;
  static constexpr std::size_t kMaxUnexpectedPerSource = 64;
  // Appends refused by a full channel buffer, kept in order and retried on release.
  std::unordered_map<proto::ChannelKey, std::deque<wire::Bytes>, proto::ChannelKeyHash> overflow_;
  // Senders here to each receiver stream, so relocation and destruction touch only them.
  std::unordered_map<StreamId, std::unordered_set<StreamId>> senders_to_;
  // Receivers the leader knows we send to (wire::Watch), until they are destroyed.
  std::unordered_set<StreamId> watching_;
  std::map<StreamId, Time> retry_at_;  // receivers to re-send to after a rejection
  // Checkpoints received this step, stored together in one commit at its end.
  std::vector<std::pair<SiteId, wire::Checkpoint>> pending_checkpoints_;
  Time checkpoint_retry_at_ = proto::kNever;  // a failure manager refused or failed a checkpoint
  std::unordered_map<std::uint64_t, wire::Reply> replies_;
  std::unordered_set<std::uint64_t> handler_requests_;  // replies nobody waits for
  // Every request sent, until answered; for a move, the target, which answers the requester
  // itself (with the stream's Location first): nobody else but the leader may.
  struct Awaited {
    SiteId move_target = wire::kNoSite;
    std::string stream;
  };
  std::unordered_map<std::uint64_t, Awaited> awaiting_replies_;
  std::vector<SiteId> going_;  // on_placed()'s scratch
  bool words_lost_ = false;    // set_boot() of a restarted leader's site: see step()
  // Where a stream was before its last move, as this site heard (kept at a shell, and at a
  // failure manager for its durable streams): a handler error, a -sync result or a
  // checkpoint sent from there before the move may come after the leader's word of it.
  struct Host {
    SiteId site = wire::kNoSite;
    std::uint64_t epoch = 0;
  };
  std::unordered_map<StreamId, Host> previous_host_;
  // Checkpoints from a site this failure manager does not know yet as the stream's host at
  // their epoch: the leader's word of the move is on its way (it pushes a durable stream's
  // moves to its failure manager at once). At most kMaxWaitingPerSource from each sender.
  std::deque<std::pair<SiteId, wire::Checkpoint>> checkpoints_waiting_;
  static constexpr std::size_t kMaxWaitingPerSource = 16;
  std::unordered_map<std::uint64_t, StreamId> holds_;  // request -> the stream it holds
  std::map<std::pair<StreamId, proto::Seq>, SyncAnswer> sync_results_;
  std::deque<std::pair<Time, std::string>> output_;
  std::deque<std::string> errors_;
  std::string partial_line_;
  std::function<void(StreamId, wire::ByteView)> leader_inbox_;
  std::function<void(const HandlerTrace&)> trace_;
  SiteCounters counters_;
  SiteId last_source_ = proto::kNoSource;
  Time now_ = 0;
  bool welcomed_ = false;
  bool finished_ = false;
  bool lost_session_ = false;
  bool suspended_ = false;
  std::map<StreamId, std::uint64_t> refused_arrivals_;  // refuse_arrivals()
  // Streams destroyed here whose outgoing channels still hold messages: their receivers.
  std::unordered_map<StreamId, std::unordered_set<StreamId>> retired_senders_;
  Time resume_timeout_ = 0;        // from the Welcome; 0: the leader is not durable
  std::uint32_t leader_boot_ = 0;  // the boot of site 0 last heard (set_boot)
  Time welcomed_at_ = 0;
  Time failure_timeout_ = 0;  // from the Welcome; 0: no failure detection
};

}  // namespace mstream::site
