#pragma once
// Control messages of a session: what sites, shells and the leader tell each other about
// streams, agents and membership. They travel as ordinary messages on reliable FIFO channels
// between control streams (one per site or shell, plus the leader's), so they inherit the
// messaging core's ordering and exactly-once delivery (doc/session.md).
//
// Encoding: u8 version (2), u8 type, then the message's fields in declaration order: integers
// as LEB128 varints, strings and blobs length-prefixed, vectors count-prefixed. decode_control()
// checks every length and count against the bytes left and the limits below and fails with
// kMalformed rather than throwing or reading out of bounds; the fuzz target feeds it noise.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "mstream/status.hpp"
#include "wire/codec.hpp"

namespace mstream::wire {

// 2: InChannel and OutChannel carry the sender's incarnation (doc/protocol.md).
// 3: failures: StreamRecord, InChannel and OutChannel carry the numbering's origin, Welcome
// the failure timeout, ProbeReply what senders hold; Recover, Settle, Settled.
// 4: Welcome carries the resume timeout of a durable leader.
// 5: policy: AttachReq and Code carry agent flags. 6: Controls, OpenReq, PolicyCheck and
// PolicyVerdict. 7: Expect.
// 8: pair keys (doc/security.md): each member seals only under the keys of its own pairs, so
// Welcome carries the newcomer's key with every member, and PeerUpdate a member's key with
// the newcomer. ErrorReport names the stream and agent it is about (its sender rule needs
// them). Opens are kept by the stream's site: OpenReq names its opener, Opened, and Arrive and
// Recover carry the stream's openers.
// 9: Watch carries an ask, which the leader answers with Placed (the user-stream pin's
// verdicts, doc/security.md).
// 10: handler errors said where they happen (COMMANDS.md stream_append -sync, stream_move):
// SyncResult and Reply carry a HandlerFailure.
// 11: Location and Welcome carry the watermark of destroyed streams (settled_below).
// 12: Placed names a destroyed sender's last site (its channels stay there until consumed).
inline constexpr std::uint8_t kControlVersion = 12;
inline constexpr std::uint32_t kNoSite = 0xFFFFFFFFu;
inline constexpr std::size_t kMaxNameBytes = 4096;
inline constexpr std::size_t kMaxCodeBytes = 16u << 20;

// Flags of a stream (CreateReq, Location, Install, Arrive).
inline constexpr std::uint64_t kStreamTemp = 1;
inline constexpr std::uint64_t kStreamDurable = 2;

// Flags of an agent (AttachReq, Code).
// The stream's controller (COMMANDS.md, Policy): a Tcl agent, the stream's first, fixed for
// the stream's life; it may set policy handlers.
inline constexpr std::uint64_t kAgentController = 1;
// Code the site's owner installed (a session or site controller, from a local file): it runs
// outside the sandbox. Set by the site for its own controllers only; never taken from the wire
// (the leader refuses it in an AttachReq, a site clears it in a Code).
inline constexpr std::uint64_t kAgentTrusted = 2;

// Who may send a control message (doc/security.md, "Sender rules"). Every message type
// states its rule as `kSender`, next to its definition; the receiver checks it in one place
// before acting on the message (SiteCore::sender_allowed, LeaderCore::sender_allowed), and a
// message that breaks it is dropped, counted per type, and changes nothing. A rule is only
// as strong as the proof of the sender's site id, which the per-pair keys give.
enum class Sender : std::uint8_t {
  // The leader's process (site 0) only: commands and the directory.
  kLeader,
  // Any member, in its own name, to the leader: a request answered to its sender, a watch, or
  // its own account of itself (a probe's answer is believed: doc/security.md).
  kMember,
  // A site (not a shell), in its own name, to the leader.
  kSite,
  // A shell, in its own name, to the leader.
  kShell,
  // The site the leader says hosts the stream the message names: at the leader, the stream's
  // site or the target of its move in flight; at a failure manager, the host at the
  // checkpoint's epoch (the leader pushes a durable stream's moves to it at once); at a
  // shell, the stream's site as it knows it, the one before, or where its channel is headed.
  kHost,
  // An answer, from the member the leader asked: the site an operation on the stream was
  // sent to (or the stream's site), the site a policy check went to.
  kAsked,
  // Arrive: from the source the leader's Expect names (an Arrive before its Expect waits).
  kMoveSource,
  // Checkpointed: from the stream's failure manager.
  kFailureManager,
  // Reply and Location: from the leader, or from the target of a move the receiver asked for
  // (the target tells the requester where the stream is now and answers it itself).
  kLeaderOrMoveTarget,
};

// What a stream is, as every site's directory replica knows it.
struct StreamRecord {
  std::uint64_t id = 0;
  std::string name;
  std::uint32_t site = kNoSite;  // kNoSite: destroyed
  std::uint64_t epoch = 0;       // bumped by every move
  std::uint32_t creator = 0;
  std::uint32_t failure_manager = 0;
  std::uint64_t flags = 0;
  // The numbering of the outgoing channels the stream opens (proto::SendState::origin): 0, or
  // the epoch of its last recovery (channels a durable stream's checkpoint restored keep
  // theirs: OutChannel::origin).
  std::uint32_t origin = 0;
  template <class A>
  void fields(A& a) {
    a(id, name, site, epoch, creator, failure_manager, flags, origin);
  }
};

struct PeerRecord {
  std::uint32_t site = 0;
  std::string address;  // "HOST:PORT" as the leader saw it
  std::uint64_t pid = 0;
  std::uint64_t live = 1;
  std::uint64_t shell = 0;  // a shell, not a site: hosts no streams
  template <class A>
  void fields(A& a) {
    a(site, address, pid, live, shell);
  }
};

struct InChannel {  // a channel into the moving stream: what it consumed
  std::uint64_t from = 0;
  std::uint64_t consumed_up_to = 0;
  std::uint32_t reply_site = 0;
  std::uint32_t reply_incarnation = 0;  // the sender's incarnation at reply_site (protocol.md)
  std::uint32_t origin = 0;             // the sender's numbering
  template <class A>
  void fields(A& a) {
    a(from, consumed_up_to, reply_site, reply_incarnation, origin);
  }
};

// A handler that raised an error where an operation a shell waits for ran it: a -sync
// append's append handlers, or the initialization and relocation handlers of a moved stream
// on arrival. The first such agent in attach order names it (agent 0: none failed).
struct HandlerFailure {
  std::uint64_t agent = 0;
  std::string event;    // "append", "initialization", "relocation"
  std::string message;  // the handler's own error message
  template <class A>
  void fields(A& a) {
    a(agent, event, message);
  }
};

// ---- Requests to the leader (from a site's handlers or a shell). Each is answered by one
// Reply with the same req.
struct CreateReq {
  static constexpr Sender kSender = Sender::kMember;
  std::uint64_t req = 0;
  std::string name;
  std::uint32_t site = kNoSite;  // kNoSite: the caller's site
  std::uint32_t failure_manager = kNoSite;
  std::uint64_t flags = 0;
  template <class A>
  void fields(A& a) {
    a(req, name, site, failure_manager, flags);
  }
};
struct DestroyReq {
  static constexpr Sender kSender = Sender::kMember;
  std::uint64_t req = 0;
  std::string name;
  template <class A>
  void fields(A& a) {
    a(req, name);
  }
};
struct MoveReq {
  static constexpr Sender kSender = Sender::kMember;
  std::uint64_t req = 0;
  std::string name;
  std::uint32_t site = 0;
  template <class A>
  void fields(A& a) {
    a(req, name, site);
  }
};
struct AttachReq {
  static constexpr Sender kSender = Sender::kMember;
  std::uint64_t req = 0;
  std::string stream;
  std::string args;
  std::string body;
  std::string cpp_type;     // empty: a Tcl agent
  std::uint64_t flags = 0;  // kAgent*
  template <class A>
  void fields(A& a) {
    a(req, stream, args, body, cpp_type, flags);
  }
};
struct DetachReq {  // agent_exit
  static constexpr Sender kSender = Sender::kHost;
  std::uint64_t req = 0;
  std::uint64_t stream = 0;
  std::uint64_t agent = 0;
  template <class A>
  void fields(A& a) {
    a(req, stream, agent);
  }
};
// Termination detection for `mstream run` (doc/session.md, "Quiescence").
struct QuiesceReq {
  static constexpr Sender kSender = Sender::kShell;
  std::uint64_t req = 0;
  // User messages the asking shell appended so far, less those it discarded (their stream
  // was destroyed).
  std::uint64_t appended = 0;
  template <class A>
  void fields(A& a) {
    a(req, appended);
  }
};

struct Reply {
  static constexpr Sender kSender = Sender::kLeaderOrMoveTarget;
  std::uint64_t req = 0;
  std::uint64_t code = 0;  // a StatusCode; 0 ok
  std::string text;        // the error message, or the result (agent id, ...)
  // A move's, from its target: the move took effect (code 0), but a handler failed there on
  // arrival. The target reports it to no one else's shell in the requester's place.
  HandlerFailure failure;
  template <class A>
  void fields(A& a) {
    a(req, code, text, failure);
  }
};

// ---- Leader to sites and shells.
// The key of the pair (receiver, site) (wire::pair_key), 32 bytes; the receiver ignores one
// of another size. Only the leader sends them, sealed under the receiver's key with it.
struct PairKey {
  std::uint32_t site = 0;
  std::string key;
  template <class A>
  void fields(A& a) {
    a(site, key);
  }
};
struct Welcome {  // the first message a joined site or shell gets: the whole directory
  static constexpr Sender kSender = Sender::kLeader;
  std::uint32_t you = 0;
  std::vector<PeerRecord> peers;
  std::vector<StreamRecord> streams;
  // The session's failure timeout in microseconds (0: no failure detection): a peer keeps
  // the leader hearing from it well within it, and leaves the session when it has not heard
  // from the leader for that long (it was declared failed and fenced, or the leader is gone).
  std::uint64_t failure_timeout_us = 0;
  // With a durable leader (`mstream leader --state`): how long a peer that stopped hearing
  // from the leader waits for it to come back before it leaves, handlers paused meanwhile
  // (it may have been declared failed). 0: it leaves at the failure timeout.
  std::uint64_t resume_timeout_us = 0;
  // A secured session's: the newcomer's keys with every live member (but the leader's, which
  // came with its join).
  std::vector<PairKey> keys;
  // Every stream id below it that `streams` lacks was destroyed (or never created): stream
  // ids are never reused, so this replaces a record per stream ever destroyed.
  std::uint64_t settled_below = 0;
  template <class A>
  void fields(A& a) {
    a(you, peers, streams, failure_timeout_us, resume_timeout_us, keys, settled_below);
  }
};
struct PeerUpdate {
  static constexpr Sender kSender = Sender::kLeader;
  PeerRecord peer;
  // A secured session's, when the peer is live: the key of the pair (receiver, peer), 32
  // bytes; empty otherwise.
  std::string key;
  template <class A>
  void fields(A& a) {
    a(peer, key);
  }
};
struct Location {  // a stream was created, moved or destroyed (every site keeps a replica)
  // The leader's word; also the target of a move to its requester, ahead of its Reply.
  static constexpr Sender kSender = Sender::kLeaderOrMoveTarget;
  StreamRecord stream;
  // Destroyed: how far each channel into it was consumed, so a sender discards (and counts)
  // only what was not.
  std::vector<InChannel> final_in;
  // The leader's only (0 from a move's target): every stream id below it that the receiver's
  // replica does not hold, once it applied every word before this one, was destroyed
  // (Welcome::settled_below). 0: no news.
  std::uint64_t settled_below = 0;
  template <class A>
  void fields(A& a) {
    a(stream, final_in, settled_below);
  }
};
struct Install {  // create this stream here
  static constexpr Sender kSender = Sender::kLeader;
  StreamRecord stream;
  template <class A>
  void fields(A& a) {
    a(stream);
  }
};
struct Code {  // an agent's code, shipped once to each site it visits and cached there
  static constexpr Sender kSender = Sender::kLeader;
  std::uint64_t agent = 0;
  std::uint64_t stream = 0;
  std::string args;
  std::string body;
  std::string cpp_type;
  std::uint64_t flags = 0;  // kAgent*
  // Who registered the agent (a site or a shell): agents of one origin may share a sandbox
  // interpreter, agents of different origins never do.
  std::uint32_t origin = kNoSite;
  template <class A>
  void fields(A& a) {
    a(agent, stream, args, body, cpp_type, flags, origin);
  }
};
struct Attach {  // attach agent (whose Code was sent) to the stream here
  static constexpr Sender kSender = Sender::kLeader;
  std::uint64_t stream = 0;
  std::uint64_t agent = 0;
  template <class A>
  void fields(A& a) {
    a(stream, agent);
  }
};
struct MoveOut {  // at the next handler boundary, send the stream to `target`
  static constexpr Sender kSender = Sender::kLeader;
  std::uint64_t stream = 0;
  std::uint64_t epoch = 0;  // the epoch the stream has at the target
  std::uint32_t target = 0;
  // Who asked: the target answers them itself once the stream is installed, saving the
  // detour through the leader (kNoSite: nobody waits).
  std::uint32_t requester = kNoSite;
  std::uint64_t req = 0;
  template <class A>
  void fields(A& a) {
    a(stream, epoch, target, requester, req);
  }
};
struct DestroyStream {
  static constexpr Sender kSender = Sender::kLeader;
  std::uint64_t stream = 0;
  template <class A>
  void fields(A& a) {
    a(stream);
  }
};
struct Finalize {  // the agent is gone: run its finalization handler here and free it
  static constexpr Sender kSender = Sender::kLeader;
  std::uint64_t agent = 0;
  std::uint64_t stream = 0;
  template <class A>
  void fields(A& a) {
    a(agent, stream);
  }
};
struct Probe {
  static constexpr Sender kSender = Sender::kLeader;
  std::uint64_t wave = 0;
  template <class A>
  void fields(A& a) {
    a(wave);
  }
};
struct Shutdown {
  static constexpr Sender kSender = Sender::kLeader;
  std::uint64_t code = 0;
  std::string reason;  // why, when it is not the session's end (e.g. a refused site)
  template <class A>
  void fields(A& a) {
    a(code, reason);
  }
};
struct ErrorReport {  // a handler error, forwarded to shells
  static constexpr Sender kSender = Sender::kHost;
  std::string text;
  // The stream whose agent failed (0: a site's own controller, which only that site runs:
  // no stream to check).
  std::uint64_t stream = 0;
  std::uint64_t agent = 0;
  // The shell whose message (or move) the handler ran for, which the site told directly: by
  // this report, which then comes before the message's consumption ack, so a run waiting for
  // its messages sees it; or in the SyncResult or Reply that shell waits for (the first
  // failure of a -sync append or of an arrival), which raises it there. The leader forwards
  // to the other shells. kNoSite: none.
  std::uint32_t told = kNoSite;
  template <class A>
  void fields(A& a) {
    a(text, told, stream, agent);
  }
};
struct SyncResult {  // the handlers' results for a message appended with -sync
  static constexpr Sender kSender = Sender::kHost;
  std::uint64_t stream = 0;
  std::uint64_t seq = 0;
  // A Tcl list: one element per agent with an append handler; with a failure, AGENT RESULT
  // pairs of the agents whose handlers succeeded.
  std::string result;
  // The first failing append handler, in attach order: the -sync append raises it (it is the
  // shell's error, so the site sends that shell no ErrorReport of it).
  HandlerFailure failure;
  template <class A>
  void fields(A& a) {
    a(stream, seq, result, failure);
  }
};

// ---- Sites to the leader.
struct Installed {  // a create, move or attach took effect here (or failed: code != 0)
  static constexpr Sender kSender = Sender::kAsked;
  std::uint64_t stream = 0;
  std::uint64_t epoch = 0;
  std::uint64_t agent = 0;  // for an attach
  std::uint64_t code = 0;
  std::string text;
  std::vector<InChannel> final_in;  // a destroy: see Location::final_in
  template <class A>
  void fields(A& a) {
    a(stream, epoch, agent, code, text, final_in);
  }
};
struct ShellCount {
  std::uint32_t shell = 0;
  std::uint64_t consumed = 0;
  template <class A>
  void fields(A& a) {
    a(shell, consumed);
  }
  friend bool operator==(const ShellCount&, const ShellCount&) = default;
};
struct ProbeReply {
  static constexpr Sender kSender = Sender::kMember;
  std::uint64_t wave = 0;
  std::uint64_t idle = 0;
  std::uint64_t appended = 0;      // user messages accepted from handlers here, ever
  std::uint64_t consumed = 0;      // messages from streams consumed (or discarded) here, ever
  std::uint64_t requests = 0;      // control requests sent by handlers here, ever
  std::vector<ShellCount> shells;  // messages from each shell consumed here, ever
  std::uint64_t held = 0;          // messages senders here hold, not yet known consumed
  template <class A>
  void fields(A& a) {
    a(wave, idle, appended, consumed, requests, shells, held);
  }
};
struct Leave {  // a shell leaves: its -temp streams go
  static constexpr Sender kSender = Sender::kShell;
  std::uint64_t code = 0;
  template <class A>
  void fields(A& a) {
    a(code);
  }
};

// ---- Site to site.
struct AgentState {
  std::uint64_t agent = 0;
  std::string briefcase;
  template <class A>
  void fields(A& a) {
    a(agent, briefcase);
  }
};
struct OutChannel {  // a channel from the moving stream: its whole sender state
  std::uint64_t to = 0;
  std::uint32_t dest = 0;
  std::uint64_t next_seq = 1;
  std::uint64_t consumed_up_to = 0;
  std::vector<std::string> unconsumed;
  std::uint32_t incarnation = 0;  // the sender's incarnation at the site it leaves
  std::uint32_t origin = 0;       // its numbering
  template <class A>
  void fields(A& a) {
    a(to, dest, next_seq, consumed_up_to, unconsumed, incarnation, origin);
  }
};
// Appends of a moving (or checkpointed) stream to a stream it is opening: they wait, in order,
// for the open's answer wherever the stream goes (site/opens.cpp).
struct WaitingAppends {
  std::uint64_t to = 0;
  std::string name;
  std::vector<std::string> messages;
  template <class A>
  void fields(A& a) {
    a(to, name, messages);
  }
};
struct Arrive {
  static constexpr Sender kSender = Sender::kMoveSource;
  StreamRecord stream;                // with the new epoch and site
  std::vector<std::uint64_t> agents;  // in attach order
  std::vector<AgentState> briefcases;
  std::vector<OutChannel> out;
  std::vector<InChannel> in;
  std::uint32_t requester = kNoSite;  // from MoveOut
  std::uint64_t req = 0;
  // The senders that opened it: its site takes messages from no other (Opened).
  std::vector<std::uint64_t> opened;
  std::vector<WaitingAppends> waiting;
  template <class A>
  void fields(A& a) {
    a(stream, agents, briefcases, out, in, requester, req, opened, waiting);
  }
};

// ---- Site to leader, again (appended here: a type's index is its tag on the wire).
// A stream of this site began sending to `stream`, or DATA in its name came from a site this
// site cannot place: the leader pushes the stream's moves here at once from now on (other
// sites hear of them in batches), and sends the moves it had not told this site yet. An
// `ask` other than 0 is answered with Placed, after those.
struct Watch {
  static constexpr Sender kSender = Sender::kMember;
  std::uint64_t stream = 0;
  std::uint64_t ask = 0;
  template <class A>
  void fields(A& a) {
    a(stream, ask);
  }
};

// ---- Failures (doc/session.md "Failures").
// Leader to a failure manager: the stream's site failed; host it here from its initial state
// (its agents' initialization, then their failure handlers), then answer Installed.
struct Recover {
  static constexpr Sender kSender = Sender::kLeader;
  StreamRecord stream;                // with this site, the new epoch and origin
  std::vector<std::uint64_t> agents;  // in attach order; their Code was sent before
  std::uint32_t failed_site = 0;
  std::vector<std::uint64_t> opened;  // the senders that opened it (Opened)
  template <class A>
  void fields(A& a) {
    a(stream, agents, failed_site, opened);
  }
};
// Leader to the surviving end of a move whose other end failed: does the stream live here
// at `epoch` (the target), or still here, the move now called off (the source)? Answered by
// Settled.
struct Settle {
  static constexpr Sender kSender = Sender::kLeader;
  std::uint64_t stream = 0;
  std::uint64_t epoch = 0;  // the move's
  template <class A>
  void fields(A& a) {
    a(stream, epoch);
  }
};
struct Settled {
  static constexpr Sender kSender = Sender::kAsked;
  std::uint64_t stream = 0;
  std::uint64_t epoch = 0;
  std::uint64_t present = 0;  // 1: it is here (target: arrived; source: kept, move off)
  template <class A>
  void fields(A& a) {
    a(stream, epoch, present);
  }
};

// ---- Durable streams (doc/session.md "Durable streams").
// The site of a durable stream to its failure manager: the stream's whole state after the
// messages it consumed since the last checkpoint (and the messages it appended meanwhile,
// which are sent only once this is stored). `state` is what a move would carry.
struct Checkpoint {
  static constexpr Sender kSender = Sender::kHost;
  std::uint64_t version = 0;  // grows with every checkpoint of one epoch of the stream
  Arrive state;
  template <class A>
  void fields(A& a) {
    a(version, state);
  }
};
// The failure manager stored it (code 0), or could not (the stream's consumption then waits,
// and the site reports the error).
struct Checkpointed {
  static constexpr Sender kSender = Sender::kFailureManager;
  std::uint64_t stream = 0;
  std::uint64_t epoch = 0;
  std::uint64_t version = 0;
  std::uint64_t code = 0;
  std::string text;
  template <class A>
  void fields(A& a) {
    a(stream, epoch, version, code, text);
  }
};

// ---- Policy (COMMANDS.md, Policy; seed 004 §2.2). The leader vets an operation by asking the
// controllers concerned, one at a time: the session's (at site 0), the site's, the stream's.
enum PolicyEvent : std::uint8_t {
  kPolicyOpen,
  kPolicyCreate,
  kPolicyDestroy,
  kPolicyMove,
  kPolicyRegister,
  kPolicyArrival,
  kPolicyNewPeer,
  kPolicyEventCount,
};
enum PolicyLevel : std::uint8_t { kPolicySession, kPolicySite, kPolicyStream, kPolicyLevelCount };
inline constexpr std::uint64_t policy_bit(PolicyEvent e) { return 1ull << e; }

// stream_open, or the implicit open of a first append (seed 004 §2.2: streams are opened like
// sockets): answered by a Reply once every level allowed it and the stream's site knows.
struct OpenReq {
  static constexpr Sender kSender = Sender::kMember;
  std::uint64_t req = 0;
  std::string name;
  // Who opens: the requester's own control stream (a shell), or a stream its site hosts (a
  // handler's): the sender whose messages the stream will take (the leader checks it is the
  // requester's). 0: the requester's control stream.
  std::uint64_t opener = 0;
  template <class A>
  void fields(A& a) {
    a(req, name, opener);
  }
};
struct PolicyCheck {  // leader to the site of the controller asked
  static constexpr Sender kSender = Sender::kLeader;
  std::uint64_t check = 0;
  std::uint8_t level = kPolicySession;
  std::uint8_t event = kPolicyOpen;
  std::uint64_t stream = 0;  // a stream-level check: the stream, whose controller is `agent`
  std::uint64_t agent = 0;
  std::vector<std::string> args;  // key, value, ...: the handler's $argv, as a dict
  template <class A>
  void fields(A& a) {
    a(check, level, event, stream, agent, args);
  }
};
struct PolicyVerdict {  // code 0: allowed; else text says why not
  static constexpr Sender kSender = Sender::kAsked;
  std::uint64_t check = 0;
  std::uint64_t code = 0;
  std::string text;
  template <class A>
  void fields(A& a) {
    a(check, code, text);
  }
};
struct Controls {  // a site's controllers and the policy events they handle (policy_bit masks)
  static constexpr Sender kSender = Sender::kSite;
  std::uint64_t session_events = 0;  // site 0 only: the session controller's
  std::uint64_t site_events = 0;
  template <class A>
  void fields(A& a) {
    a(session_events, site_events);
  }
};

// Leader to a move's target, with the MoveOut to its source: the Arrive of `stream` at `epoch`
// from `source` is expected. A site installs no other Arrive (a member could send one of
// another's stream; doc/security.md, "Members that lie").
struct Expect {
  static constexpr Sender kSender = Sender::kLeader;
  std::uint64_t stream = 0;
  std::uint64_t epoch = 0;
  std::uint32_t source = 0;
  template <class A>
  void fields(A& a) {
    a(stream, epoch, source);
  }
};

// Leader to a stream's site, once an open passed every check: `opener` may now send to the
// stream. Answered by Installed. The set travels with the stream (Arrive::opened) and the
// leader keeps it for recoveries (Recover::opened).
struct Opened {
  static constexpr Sender kSender = Sender::kLeader;
  std::uint64_t stream = 0;
  std::uint64_t opener = 0;
  template <class A>
  void fields(A& a) {
    a(stream, opener);
  }
};

// Leader to a site, answering its Watch of `stream` with `ask`: every word on where the
// stream is that the leader gave before it had the Watch has reached the site before this one
// (its control channel is FIFO). `moving_to`: the site an operation in flight hands the
// stream to (a create, move or recovery; kNoSite: none), which may already be sending in its
// name before its word. The site's transport judges against it what came from a site it could
// not place (proto::Transport::on_placed).
// `destroyed_at`: for a stream among the last LeaderCore::kRetiredKept the leader destroyed,
// the site it was destroyed at, and `destroy_epoch` its destroy's epoch: what it appended is
// still sent from there (a site that joined after the destroy, or restarted, never had the
// word).
struct Placed {
  static constexpr Sender kSender = Sender::kLeader;
  std::uint64_t stream = 0;
  std::uint64_t ask = 0;
  std::uint32_t moving_to = kNoSite;
  std::uint32_t destroyed_at = kNoSite;
  std::uint64_t destroy_epoch = 0;
  template <class A>
  void fields(A& a) {
    a(stream, ask, moving_to, destroyed_at, destroy_epoch);
  }
};

using ControlMessage =
    std::variant<CreateReq, DestroyReq, MoveReq, AttachReq, DetachReq, QuiesceReq, Reply, Welcome,
                 PeerUpdate, Location, Install, Code, Attach, MoveOut, DestroyStream, Finalize,
                 Probe, Shutdown, ErrorReport, SyncResult, Installed, ProbeReply, Leave, Arrive,
                 Watch, Recover, Settle, Settled, Checkpoint, Checkpointed, OpenReq, PolicyCheck,
                 PolicyVerdict, Controls, Expect, Opened, Placed>;

inline constexpr std::size_t kControlTypes = std::variant_size_v<ControlMessage>;
inline Sender sender_rule(const ControlMessage& m) {
  return std::visit([](const auto& v) { return std::decay_t<decltype(v)>::kSender; }, m);
}

// A message of type `index` (the ControlMessage index) with its fields' defaults; index must
// be below kControlTypes (else CreateReq).
ControlMessage control_of_type(std::size_t index);

void encode_control(const ControlMessage& m, Bytes* out);
Result<ControlMessage> decode_control(ByteView in);
const char* control_name(const ControlMessage& m);

}  // namespace mstream::wire
