#pragma once
// The invariant checkers of whole-session runs (session_simulation.hpp). The driver reports
// the ground truth (each message an agent or the shell appended, accepted, in append order),
// every handler run the sites trace (SiteCore::set_trace), which site hosts which stream after
// every event, every Arrive message sent, and the leader's quiescence answer; the checker
// compares them with DESIGN.md's guarantees 1-5. Violations are named by invariant so that
// `FAIL seed=S invariant=NAME` lines stay stable:
//
//   session_fifo             per (sender, receiver) pair, append handlers see the sender's
//                            messages in append order, with the pair's sequence numbers
//                            1, 2, ... (the sequence state travels with both ends). With
//                            failures (guarantee 6, streams without -durable): a stream
//                            recovered at its failure manager restarts from its initial
//                            state, so each of its *lives* (from its creation or a recovery
//                            to the next recovery) is a sender of its own, numbering from 1
//                            again (a durable stream's, only from a recovery that restored no
//                            checkpoint); within one life of the receiver consumption is in order
//                            with no gap, and a new life of the receiver resumes each pair
//                            at or before the next message never consumed (no gap either)
//   session_exactly_once     no message runs the receiver's handlers twice within one life
//                            of the receiver, none that was never appended; across a
//                            recovery of the receiver only messages the sender had not been
//                            acknowledged (released) when the receiver was recovered are
//                            consumed again
//   session_integrity        a message reaches the stream it was appended to, from its sender
//   session_no_loss          at the end every appended message was consumed, except those a
//                            life of a stream appended and had not had consumed when that
//                            life ended in a crash (never the shell's; a destroyed stream's
//                            last life ends in the crash of the site that still holds its
//                            messages, or that hosted it when the destroy was carried out
//                            instead of its recovery); and every message a
//                            sender saw acknowledged was consumed (checked at each recovery
//                            and at the end)
//   one_site_per_stream      at no time do two live sites host a stream (a crashed site hosts
//                            nothing); at rest exactly one does
//   relocation_before_append after a stream's install at a site, its relocation handlers run
//                            there (the agent's own, once) before any further append handler
//                            (guarantee 4); after a recovery install, its failure handlers
//                            instead, likewise
//   move_order               a stream's moves and recoveries take effect in the leader's
//                            order (epochs grow)
//   move_cost_bounded        an Arrive carries one entry per peer the stream ever had, and no
//                            more state at a stream's later moves than at its earlier ones
//                            with as many peers; sites a stream left keep none of its
//                            channels (the driver reports those)
//   briefcase_travels        the agents' own counters (briefcases) continue across moves, and
//                            restart from the initial state at a recovery (a durable stream's:
//                            from the restored checkpoint's, see durable_state)
//   failure_recovered        every stream a site hosted when it crashed is recovered (at
//                            least once more than before), each recovery at the stream's
//                            failure manager, or at site 0 if that crashed too; it runs its
//                            failure handler (the trace's and the agent's own) exactly once per
//                            recovery, and at the end it is still where it was last recovered
//                            unless it moved since
//   quiescence               the leader answers QuiesceReq only when everything appended was
//                            consumed (all but what session_no_loss lets crashes lose) and
//                            every node is idle, nothing runs after, and it does answer once
//                            the traffic stops
//   durable_exactly_once     streams created -durable: a durable receiver's committed state
//                            counts each message at most once across all its lives. A
//                            recovery continues the life its restored checkpoint had reached:
//                            each pair resumes right after what the checkpoint says was
//                            consumed (nothing it covers is consumed again; a gap after it is
//                            session_fifo's), and the checkpoint covers every message its
//                            senders were acknowledged (checked at each recovery and at the
//                            end). As a sender (output commit): what its handlers appended
//                            after the restored checkpoint, which its recovery takes back
//                            (its re-run appends others under the same numbers), was never
//                            consumed anywhere
//   durable_state            a durable receiver's agent state (its briefcase: how many
//                            messages it consumed and a hash of their ids) is, after a
//                            recovery, the state after exactly the messages its restored
//                            checkpoint's channels say were consumed (the initial state if
//                            there was none), and then grows by each message consumed; at the
//                            end it holds every message appended to it (all but what a crashed
//                            sender's life may lose). As a sender: the restored briefcase's
//                            count of messages to each receiver is its channel's numbering
//                            Both hold while a store that can recover the stream has all it
//                            acknowledged: its failure manager's, or once that crashed, site
//                            0's after its first checkpoint there (doc/session.md "Durable
//                            streams"). A recovery in between starts from what site 0 holds,
//                            and from then on the stream is judged as any other, from that
//                            restored state; if there was none, a new life of it as a sender
//                            too (numbering from 1 under the recovery's origin).
//   destroy_after_appends    a stream the shell destroyed had consumed, when the leader
//                            answered the destroy, every message the shell appended to it
//                            before (doc/commands.md stream_destroy); at the end it is hosted
//                            nowhere, and a stream created again under its name is another
//                            stream, judged on its own
//   (the driver adds liveness, progress, determinism, wire_valid, corruption_rejected,
//   api_contract, directory_consistent (at the end every replica holds the leader's streams,
//   where the leader has them, and no other: a late word about a stream destroyed and
//   forgotten is refused), and failure_detection: the leader declares every
//   crashed site failed and no other (site 0, which restarts as itself, never), and no live
//   site gives the session up, not even while the leader is away)
//
// Thread-safety: none; one per run.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "proto/types.hpp"
#include "sim/checker.hpp"
#include "site/site_core.hpp"
#include "wire/control.hpp"

namespace mstream::sim {

// The workload's messages: "g GID COUNT" (a trigger for a sender), "m GID INDEX" (a numbered
// message). GID is unique in a run; INDEX numbers the messages of one (sender, receiver) pair
// from 1, kept by the sender (in its briefcase, for a stream).
struct SessionMessage {
  char kind = 0;
  std::uint64_t gid = 0;
  std::uint64_t number = 0;  // COUNT or INDEX
};
std::optional<SessionMessage> parse_session_message(std::string_view payload);
std::string session_message(char kind, std::uint64_t gid, std::uint64_t number);

// The agents' briefcase: "HANDLED HASH\n" (append handler runs, and the sum of
// session_gid_hash() of the messages they consumed: a state that tells which messages went
// into it, in any order, cheap to compare after each run), then a receiver's "#GID GID ...\n"
// (the messages it consumed, in order: a restored state is judged message by message), then
// "STREAM=COUNT\n" per stream the agent appended to (the number of its last message there).
struct SessionBriefcase {
  std::uint64_t handled = 0;
  std::uint64_t hash = 0;
  std::vector<std::uint64_t> consumed;
  std::map<std::string, std::uint64_t> sent;
};
std::optional<SessionBriefcase> parse_session_briefcase(std::string_view saved);
std::string session_briefcase(const SessionBriefcase& b);
std::uint64_t session_gid_hash(std::uint64_t gid);

// What a durable stream's recovery restored: the record its failure manager's store held
// (SiteCore::restore_checkpoint reads the same one), decoded.
struct DurableRestore {
  bool found = false;    // no record: the stream starts from its initial state
  bool readable = true;  // the record decoded to a checkpoint with one sim agent briefcase
  std::uint64_t epoch = 0, version = 0;
  SessionBriefcase state;
  std::map<proto::StreamId, std::uint64_t> sent_to;  // state.sent, by the streams' ids
  struct In {
    proto::StreamId from = 0;
    std::uint32_t origin = 0;
    std::uint64_t consumed_up_to = 0;
  };
  std::vector<In> in;
  struct Out {
    proto::StreamId to = 0;
    std::uint32_t origin = 0;
    std::uint64_t consumed_up_to = 0;
    std::uint64_t next_seq = 1;
  };
  std::vector<Out> out;
  // Appends to a stream the sender was still opening (Arrive::waiting): its handlers made
  // them, so its state counts them, but no channel numbers them yet.
  std::map<proto::StreamId, std::uint64_t> waiting_to;
};

class SessionChecker {
 public:
  using StreamId = proto::StreamId;
  using SiteId = proto::SiteId;

  void add_stream(StreamId id, std::string name);

  // Ground truth: `from` appended message `gid` to `to` and it was accepted; `index` is the
  // sender's own number for it (see SessionMessage).
  void on_append(std::uint64_t gid, StreamId from, StreamId to, std::uint64_t index);
  // A traced handler run at `site`.
  void on_handler(SiteId site, const site::HandlerTrace& t);
  // The stream's failure manager, as created (site 0 by default).
  void set_failure_manager(StreamId stream, SiteId site);
  // The stream was created -durable.
  void set_durable(StreamId stream);
  // The shell's attach to `stream` failed (a crash): it has no agent whose handlers run.
  void set_agentless(StreamId stream);
  // The shell's attach to `stream` is under way (until its answer): an install meanwhile may
  // or may not find the agent there.
  void set_attaching(StreamId stream, bool attaching);
  // The leader answered the shell's destroy of `stream`.
  void on_destroyed(StreamId stream);
  // After the kRecover trace of a durable stream: the checkpoint its recovery restored.
  void on_durable_restore(StreamId stream, const DurableRestore& r);
  // `site`'s store committed a checkpoint of `stream`, newer than the one it held: `r` as a
  // recovery would read it (found).
  void on_checkpoint_stored(SiteId site, StreamId stream, const DurableRestore& r);
  // `site` crashed: it hosts nothing from now on, and each stream it hosted must recover.
  // keeps_store: its checkpoints stay reachable (site 0, whose next process has its disk).
  void on_site_crashed(SiteId site, bool keeps_store = false);
  // The crash of its last site took what destroyed stream `id` had appended and its receivers
  // had not consumed yet (SiteCore::destroyed_senders_holding): its last life ends in that
  // crash, as a hosted stream's would. Not a durable stream's: it must lose nothing.
  void on_destroyed_sender_lost(StreamId id);
  // The sender `from` (its channel's numbering `origin`) knows `acked` of its messages to
  // `to` consumed: its channel's consumed_up_to, read at the sender's site.
  void on_acked(StreamId from, StreamId to, std::uint32_t origin, std::uint64_t acked);
  // The agent of `stream` ran its failure handler at `site`.
  void on_failure_handler(StreamId stream, SiteId site);
  // The agent of `stream` has counted `count` append handler runs in its briefcase, and
  // `hash` of the messages it consumed (SessionBriefcase).
  void on_agent_count(StreamId stream, std::uint64_t count, std::uint64_t hash);
  // The agent of `stream` ran its relocation handler at `site`.
  void on_relocation_handler(StreamId stream, SiteId site);
  // Whether `site` hosts `stream` now (reported on every change).
  void on_hosting(StreamId stream, SiteId site, bool hosts);
  // An Arrive message as sent; `encoded_bytes` is its size on the wire.
  void on_arrive(const wire::Arrive& a, std::size_t encoded_bytes);
  // The leader answered the shell's QuiesceReq. `not_idle` names what was still busy then
  // (empty: every node idle).
  void on_quiescence(const std::string& not_idle);
  // At the end of the run.
  void check_end();

  void fail(std::string_view invariant, std::string detail);
  bool ok() const { return violations_.empty(); }
  const std::vector<Violation>& violations() const { return violations_; }

  std::uint64_t appended() const { return truth_.size(); }
  std::uint64_t consumed() const { return consumed_; }
  std::uint64_t arrives() const { return arrives_; }
  // Recoveries of a durable stream that had appended, from no checkpoint: its failure
  // manager's crash took them (a new life, on_durable_restore).
  std::uint64_t durable_senders_restarted() const { return senders_restarted_; }
  // Destroyed streams whose last life ended in a crash (on_destroyed_sender_lost, or a destroy
  // carried out after their site crashed with them).
  std::uint64_t destroyed_senders_lost() const { return destroyed_senders_lost_; }
  bool quiesced() const { return quiesced_; }
  // The first appended message not consumed yet, described; empty when none.
  std::string first_unconsumed() const;

 private:
  struct Message {
    StreamId from = 0, to = 0;
    std::uint32_t life = 0;      // the sender's life that appended it
    std::uint64_t position = 0;  // 1-based, in its pair's append order
    bool consumed = false;       // at least once
  };
  // (sender, its life, receiver): what one life of a sender appended to a receiver.
  using PairKey = std::tuple<StreamId, std::uint32_t, StreamId>;
  struct Pair {
    std::vector<std::uint64_t> gids;      // in append order
    std::uint64_t consumed = 0;           // the highest position consumed in receiver_life
    std::uint64_t consumed_ever = 0;      // the highest position consumed in any life (a prefix)
    std::uint32_t receiver_life = 0;      // the receiver's life `consumed` counts in
    std::uint64_t acked = 0;              // the most the sender was seen acknowledged
    std::uint64_t acked_ever = 0;         // ... also before a durable sender's restore forgot it
    std::uint64_t acked_at_recovery = 0;  // ... when the receiver was last recovered
  };
  struct Stream {
    std::string name;
    std::uint64_t epoch = 0;                     // of the last install (or creation: 1)
    SiteId awaiting_relocation = wire::kNoSite;  // installed there, relocation not traced
    SiteId awaiting_handler = wire::kNoSite;     // traced there, the agent's handler not run
    std::vector<SiteId> hosts;
    std::uint64_t append_runs = 0;
    std::uint64_t consumed_hash = 0;           // of the messages append_runs counts
    std::vector<StreamId> senders, receivers;  // peers it ever had
    // Failures: its lives (the origin of each: 0, then each recovery's epoch), where it was
    // last recovered and whether it was installed elsewhere since, its failure manager, how
    // many recoveries its sites' crashes call for, and the failure handler runs of the last.
    std::vector<std::uint32_t> origins{0};
    // Its lives as a sender (its numbering starts over), by the origin each started with:
    // every recovery's of a stream without -durable; of a durable one, a recovery that
    // restored no checkpoint. One that restored a checkpoint goes on with the channels it
    // restored, and opens new ones under its recovery's origin, in the same life.
    std::vector<std::uint32_t> sender_origins{0};
    bool recovering = false;  // the last install was a recovery
    SiteId recovered_at = wire::kNoSite;
    bool moved_since_recovery = false;
    SiteId failure_manager = 0;
    std::uint32_t recoveries = 0, recoveries_due = 0;
    std::uint32_t failure_traces = 0, failure_handlers = 0;
    // Durable streams: a recovery continues the life the checkpoint it restored had reached
    // (its pairs resume there); `lapsed` while no store that can recover it holds all it
    // had acknowledged (its failure manager crashed, and site 0 has not stored a checkpoint of
    // it since); `void_` after a recovery while lapsed: from then on it is judged as any
    // stream, its state being the restored one.
    bool durable = false;
    bool destroyed = false;
    bool held_lost = false;       // destroyed, then a crash took what it still held (its last life)
    bool crashed_hosted = false;  // its site crashed while hosting it, and none hosts it since
    bool agentless = false;
    bool attaching = false;
    SiteId optional_handler = wire::kNoSite;  // installed there while attaching
    bool lapsed = false;
    bool void_ = false;
    bool judged_durable() const { return durable && !void_; }
    std::uint32_t life() const { return static_cast<std::uint32_t>(origins.size() - 1); }
    // The state an Arrive carried beyond messages and briefcases, at the first move with a
    // given (in, out) channel count, and that move's epoch.
    std::map<std::tuple<std::size_t, std::size_t, std::size_t>,
             std::pair<std::size_t, std::uint64_t>>
        first_meta;
  };
  Stream& stream(StreamId id);
  std::string name(StreamId id) const;

  std::unordered_map<std::uint64_t, Message> truth_;
  std::uint32_t life(StreamId id) const;
  std::uint32_t sender_life(StreamId id) const;
  std::uint32_t sender_life_of(StreamId id, std::uint32_t origin) const;
  std::pair<std::uint64_t, const DurableRestore::Out*> appended_to(StreamId id, std::uint32_t l,
                                                                   StreamId to,
                                                                   const DurableRestore& r) const;
  std::map<Pair*, std::uint64_t> check_restorable(StreamId id, const DurableRestore& r,
                                                  const std::string& what);
  void take_back_appends(StreamId id, const DurableRestore& r, const std::string& what);
  void on_recovery(StreamId id, SiteId site, std::uint64_t epoch);
  bool lost_with_its_life(const Message& m) const;
  bool life_crashed(StreamId from, std::uint32_t l) const;
  void end_in_crash(Stream& st);
  std::uint64_t destroyed_senders_lost_ = 0;
  std::uint64_t unconsumed_required() const;

  std::map<PairKey, Pair> pairs_;  // ordered: reports are deterministic
  std::set<SiteId> crashed_;
  std::map<StreamId, Stream> streams_;
  std::uint64_t consumed_ = 0;
  std::uint64_t arrives_ = 0;
  std::uint64_t senders_restarted_ = 0;
  bool quiesced_ = false;
  std::vector<Violation> violations_;
};

}  // namespace mstream::sim
