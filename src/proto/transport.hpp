#pragma once
// Transport: the sans-IO messaging core of one site. It owns one Path per remote site (window,
// selective acks, RTT, congestion, coalescing, fragmentation) and one channel per sender/
// receiver stream pair multiplexed on the paths (sequence numbers, reordering, duplicate
// suppression, consumption acknowledgements, bounded sender buffers).
//
// Driving it: the driver (real sockets or the simulator) calls
//   on_datagram()  for every datagram addressed to this site,
//   on_timeout()   once now >= next_timeout(),
// and after each batch of those calls (and after append()/consume()) drains
//   poll_transmit()  the datagrams to send, each addressed to a site,
//   poll_delivery()  messages ready for consumption, in per-pair order,
//   poll_released()  consumption acknowledgements received by local senders.
// Nothing here touches a socket, a thread or a clock; `now` is always passed in.
//
// Guarantees (seed 004 §2.3, DESIGN.md guarantees 1 and 2): for each channel, messages are
// delivered once, in append order; a CONSUMED acknowledgement is sent only for messages the
// application consumed; the sender keeps each message until that acknowledgement, even after
// the path's own acknowledgement (the transport receipt) has stopped retransmitting it.
//
// Thread-safety: none; one thread drives a Transport.

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "mstream/status.hpp"
#include "proto/channel.hpp"
#include "proto/config.hpp"
#include "proto/keyring.hpp"
#include "proto/path.hpp"
#include "proto/replay_window.hpp"
#include "proto/sender_pins.hpp"
#include "proto/types.hpp"
#include "wire/codec.hpp"
#include "wire/crypto.hpp"
#include "wire/datagram.hpp"

namespace mstream::proto {

struct OutDatagram {
  SiteId to = 0;
  wire::Bytes bytes;  // reused between calls: the caller may keep its capacity
};

struct Delivery {
  ChannelKey key;
  Seq seq = 0;
  wire::Bytes payload;
  std::uint32_t origin = 0;  // the channel's numbering it was delivered under (consume())
};

// The receiver consumed every message of `key` up to and including `up_to`; the sender's
// copies are released.
struct Released {
  ChannelKey key;
  Seq up_to = 0;
};

// The receiver acknowledged `up_to`, beyond every message the channel holds: it consumed, from
// an earlier life of the sender, messages this one has not appended yet (a durable stream
// restored from a checkpoint taken before they went out, whose re-appended messages wait in
// its site's overflow queue behind the channel's bound). catch_up() lets them in.
struct AckedAhead {
  ChannelKey key;
  Seq up_to = 0;
};

// A receiver site refused a message (e.g. the stream is not there). The message stays in the
// sender's buffer; a later relocate_receiver() re-sends it.
struct Rejected {
  ChannelKey key;
  Seq seq = 0;
  SiteId site = 0;
  wire::RejectReason reason{};
};

struct TransportStats {
  std::uint64_t datagrams_in = 0;
  std::uint64_t datagrams_out = 0;
  std::uint64_t malformed_in = 0;          // failed to decode (bad checksum, truncated, ...)
  std::uint64_t misaddressed_in = 0;       // dst_site is not us
  std::uint64_t duplicate_packets = 0;     // a packet number seen before
  std::uint64_t dropped_out_of_order = 0;  // go-back-N receiver discards
  std::uint64_t duplicate_messages = 0;    // a message seen before (after a re-send)
  // Answers to duplicates folded into one already owed on the same channel and path.
  std::uint64_t consumed_answers_merged = 0;
  // Messages catch_up() let past a channel's bound, acknowledged before they were appended.
  std::uint64_t caught_up = 0;
  std::uint64_t rejected_frames = 0;  // frames refused: no such stream, out of window, ...
  std::uint64_t bogus_acks = 0;       // acks for packets or messages never sent
  std::uint64_t retransmissions = 0;
  std::uint64_t messages_delivered = 0;
  std::uint64_t messages_released = 0;
  std::uint64_t paths_refused = 0;    // datagrams from a new site beyond kMaxPaths
  std::uint64_t unknown_site_in = 0;  // datagrams from a site not admitted (or not keyed yet)
  std::uint64_t stale_numbering = 0;  // copies of a channel's older numbering (failures)
  std::uint64_t stale_boot_in = 0;    // for another boot of ours, or from an older one of theirs
  std::uint64_t paths_restarted = 0;  // a newer boot of the remote was heard
  // Secured sessions (set_pair_key): none of these reaches a channel or a handler.
  std::uint64_t forged_in = 0;    // sealed, but did not authenticate under its pair's key
  std::uint64_t replayed_in = 0;  // authenticated, but its counter was seen (or is too old)
  std::uint64_t unsealed_in = 0;  // not sealed at all
  // DATA or FRAGMENT in the name of a sender pinned to another site (set_sender_pin): only a
  // member lying does that.
  std::uint64_t impostor_frames = 0;
  // DATA or FRAGMENT opening a channel from a sender its receiver's openers do not include.
  std::uint64_t unopened_frames = 0;
  // DATA or FRAGMENT in the name of a user stream (kByLocation) from a site that neither the
  // leader's words nor its answer to an ask made after the frame came place for the stream
  // (Transport::on_placed): only a member lying does that.
  std::uint64_t wrong_site_frames = 0;
  // Frames held for the leader's word on where their sender is (SenderPins), and frames
  // refused uncounted: copies from a site their sender was at before, frames whose site a word
  // or the leader's answer placed after their hold time was up, and frames forgotten unjudged
  // (beyond SenderPins::kMaxUnjudged). Their senders re-send.
  std::uint64_t held_frames = 0;
  std::uint64_t held_refused = 0;
  // CONSUMED or REJECT of a channel from a site its messages do not go to: late, from a site
  // the receiver left, or a member lying.
  std::uint64_t misdirected_acks = 0;
};

class Transport {
 public:
  // A datagram from a site beyond this many known ones is dropped: a forged source id must
  // not make us allocate without bound.
  static constexpr std::size_t kMaxPaths = 4096;

  Transport(SiteId self, TransportConfig config);
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  SiteId self() const { return self_; }
  const TransportConfig& config() const { return config_; }
  // This process's boot (wire/datagram.hpp): 0 but for a leader restarted from its durable
  // state, whose peers must not take its fresh packet numbers for old ones. Set it before
  // anything is sent.
  void set_boot(std::uint32_t boot);
  std::uint32_t boot() const { return boot_; }
  // Secures the transport (doc/security.md): every datagram to a peer is sealed under the key
  // of the pair (self, peer) (wire/crypto.hpp), and a datagram that says it is from site X is
  // opened only with the key of the pair (self, X): one that does not authenticate under it
  // (sealed in X's name by another member, or another session's) is counted in forged_in, a
  // replayed one in replayed_in, an unsealed one in unsealed_in, and dropped before anything
  // of it is looked at. One from a site whose key this transport does not have (yet: the
  // leader's word on a new member may still be on its way) is dropped as from a site not
  // admitted (unknown_site_in); its sender repeats it. Secure before anything is sent, like
  // set_boot(): paths made later leave room for the seal, so that sealed datagrams stay
  // within config().path.mtu.
  //
  // With the session's master key the transport derives every pair key itself
  // (wire::pair_key): the leader's process (site 0), and tools whose two ends share a key.
  void set_master_key(const wire::Key& master);
  // A member's key with `peer` (from its join, the Welcome or a PeerUpdate). The first one
  // secures the transport.
  void set_pair_key(SiteId peer, const wire::Key& key);
  // Forgets the key of the pair with `peer` (expel_site() does too): it left or failed.
  void drop_pair_key(SiteId peer) { keys_.drop(peer); }
  bool secured() const { return secured_; }
  // Whether it seals with AEGIS-256 towards the peers that open it (TransportConfig::aes).
  bool seals_aegis() const { return secured_ && keys_.aegis(); }
  // The key of the pair (self, peer), if this transport has or derives it: for the
  // simulator's checkers, which look inside what is sent, and its hostile member.
  std::optional<wire::Key> pair_key(SiteId peer) const { return keys_.key(peer); }

  // Senders that never move: `pin(from)` names the one site whose DATA and FRAGMENT of a
  // channel from `from` are taken (kNoPin: any site, the sender is mobile). Frames from any
  // other site are counted in impostor_frames and dropped before the channel sees them, so
  // that a member cannot speak for the leader or another site's control stream. Null: none
  // is pinned. A plain function, as it runs for every frame received.
  //
  // kByLocation: the sender is a user stream, which moves; its frames are taken only from the
  // site locate_sender() last named for it, or the one before (SenderPins). From a site a word
  // named for it before those they are stale copies, refused uncounted. From another site they
  // are held, bounded, for TransportConfig::pin_hold: a word naming that site takes them. Each
  // such frame also makes the site ask the leader (poll_unplaced); the answer (on_placed)
  // judges what came before the ask: from a site still unplaced, counted in wrong_site_frames
  // and dropped. Whatever is dropped is refused to its site (REJECT kNoSuchStream) so that an
  // honest sender misjudged re-sends.
  static constexpr SiteId kNoPin = 0xFFFFFFFFu;
  static constexpr SiteId kByLocation = 0xFFFFFFFEu;
  using SenderPin = SiteId (*)(StreamId from);
  void set_sender_pin(SenderPin pin) { pin_ = pin; }
  // Which senders a stream here takes (its openers, seed 004 §2.2): asked once per new
  // receive channel, never per frame, so a refused sender costs nothing after its first
  // frame and an admitted one nothing at all. A refused frame is answered REJECT(kNotOpened)
  // and counted in unopened_frames. Null: every sender.
  using OpenGate = std::function<bool(ChannelKey key)>;
  void set_open_gate(OpenGate gate) { open_gate_ = std::move(gate); }
  // The leader's word on where the user stream `from` is (the site's directory), of any
  // epoch: an older one names a site it was at. Frames held for it are judged again at once.
  void locate_sender(StreamId from, SiteId site, std::uint64_t epoch, Time now);
  std::size_t held_frames() const { return pins_.held(); }
  // Frames refused before their verdict, waiting for the leader's answer.
  std::size_t unjudged_frames() const { return pins_.unjudged(); }
  // A sender whose frames came from a site its words do not place: the site asks the leader
  // (wire::Watch with `ask`, which also has the leader tell it the sender's moves at once
  // from then on) and gives the answer (wire::Placed) to on_placed(). At most one ask per
  // sender is on its way (another after pin_hold without an answer).
  struct UnplacedSender {
    StreamId from = 0;
    std::uint64_t ask = 0;
  };
  bool poll_unplaced(UnplacedSender* out);
  // The leader's answer to the ask `ask` on `from`: every word it owed this site on `from`
  // came before it. `going`: sites `from` may be going to, whose word may come later (where
  // an operation in flight at the leader hands it, the targets of moves this site asked for:
  // their word comes from the target). The frames held or refused in its name before the ask
  // are judged: from a site now placed, or in `going` (held on for its word), honest; from
  // any other, a lie (wrong_site_frames). REQUIRES: the answer is the leader's, and the words
  // before it were given to locate_sender().
  void on_placed(StreamId from, std::uint64_t ask, std::span<const SiteId> going, Time now);
  // The leader restarted (this site saw its new boot, or this is its process): the words its
  // old process had not sent are lost, so the frames held now, and those that come in the
  // next TransportConfig::pin_words_lost, are never counted in wrong_site_frames.
  void leader_restarted(Time now);
  std::size_t sender_pin_count() const { return pins_.record_count(); }
  // Whether the words given to locate_sender() place `from` at `site` (SenderPins::names).
  bool sender_placed_at(StreamId from, SiteId site) const { return pins_.names(from, site); }
  static constexpr std::size_t kRetiredSenders = 4096;
  // Forgets the receive channels from `from` here and its deliveries not yet taken: a
  // member's control stream, once it left or failed and was fenced.
  void forget_sender(StreamId from);

  // Membership: once a site was admitted, datagrams from sites not admitted are dropped
  // (counted in unknown_site_in) and no path is made for them, so a forged source id cannot
  // make this site allocate state or retransmit towards nobody. With no site admitted, every
  // site is accepted (single-pair tests and tools).
  void admit_site(SiteId site) {
    admitted_.insert(site);
    membership_ = true;
  }
  // Forgets the site (it failed or left): its datagrams are dropped from now on, as from any
  // site not admitted (fencing), and nothing is sent there; channels to streams that lived
  // there keep their messages until relocate_receiver() sends them elsewhere.
  void expel_site(SiteId site);

  // Keepalive: when nothing was sent to `site` for `interval`, an empty unnumbered datagram
  // goes there: it asks for no answer (each end keeps the other hearing from it) and is never
  // retransmitted, so it is no work for idle(). 0 stops it. The failure detector reads
  // last_heard().
  void set_keepalive(SiteId site, Time interval);
  // When a datagram from `site` was last accepted; -1 if never.
  Time last_heard(SiteId site) const;

  // Channels from `from` made here from now on start the numbering `origin` (SendState::
  // origin): a stream recovered without its state must not reuse the numbers of its earlier
  // life. 0 (the default) forgets the setting.
  void set_sender_origin(StreamId from, std::uint32_t origin);

  // The retransmission class of the path to `site` (the default comes from the config).
  void set_retransmission(SiteId site, RetransmissionClass c) {
    path_to(site).set_retransmission(c);
  }

  // Receiving endpoints at this site. Data for a stream not open here is answered with
  // REJECT(kNoSuchStream).
  Status open_stream(StreamId id);
  // Forgets the stream and its receive channels' state.
  Status close_stream(StreamId id);
  bool is_open(StreamId id) const;

  // Appends a message from `from` (a local sender) to stream `to` at site `to_site`.
  // Returns the message's sequence number in the (from, to) channel.
  // Errors, with nothing accepted: kInvalidArgument (stream id 0), kTooLarge (larger than
  // max_message_bytes), kWouldBlock (the channel's buffer holds max_unconsumed_messages or
  // max_unconsumed_bytes of unconsumed messages). A full buffer refuses rather than blocks
  // because the caller is usually an event loop or a handler: blocking it could deadlock two
  // streams appending to each other, and would stall every other stream on that thread. The
  // caller retries after a Released event for that channel.
  Result<Seq> append(StreamId from, StreamId to, SiteId to_site, wire::ByteView payload, Time now);

  // A datagram from the network. Malformed or misaddressed ones are counted and dropped;
  // the returned Status says why, for logging. Never throws.
  Status on_datagram(wire::ByteView bytes, Time now);
  // The site that sent the last datagram on_datagram() accepted (returned ok for), so a
  // driver can learn a peer's address without parsing the header again.
  SiteId last_source() const { return decoded_.header.src_site; }

  // The earliest time on_timeout() has work, or kNever.
  Time next_timeout() const;
  void on_timeout(Time now);

  // Fills *out with the next datagram to send; false when there is none now.
  bool poll_transmit(Time now, OutDatagram* out);

  // The next message ready for consumption; false when none.
  bool poll_delivery(Delivery* out);
  // The application consumed every delivered message of `key` up to `up_to`, delivered
  // under the numbering `origin` (Delivery::origin). Must follow the delivery order. Errors:
  // kNotFound (no such channel), kInvalidArgument (up_to not yet delivered or not after the
  // last consumed one), kUnavailable (the channel started a new numbering since: nothing to do).
  Status consume(ChannelKey key, Seq up_to, Time now, std::uint32_t origin = 0);

  bool poll_released(Released* out);
  bool poll_rejected(Rejected* out);
  // Acknowledgements beyond all a channel holds (counted in bogus_acks as well: a member may
  // lie so about a channel to a stream it hosts, where it could drop messages anyway). At most
  // kMaxAckedAhead wait; more are dropped (the receiver answers the next re-send again).
  static constexpr std::size_t kMaxAckedAhead = 256;
  bool poll_acked_ahead(AckedAhead* out);
  // Appends the front of *waiting to the channel `key`, past its bound, while they are
  // numbered up to `up_to`, then re-sends every unconsumed message of it, so that the
  // receiver's answer to the copies it has releases them. Returns how many it took. A channel
  // that is gone takes none.
  std::size_t catch_up(ChannelKey key, Seq up_to, std::deque<wire::Bytes>* waiting);

  // The receiver `to` now lives at `new_site`: every unconsumed message of every local
  // channel to it is re-sent there, from the first unconsumed one, in order.
  void relocate_receiver(StreamId to, SiteId new_site);

  // Sequence state of one channel, as an explicit value that can travel with a moving
  // stream. Export leaves the channel in place; import replaces (or creates) it.
  Result<SendState> export_send_state(ChannelKey key) const;
  // Exports and forgets the channel: the sender moved away, and nothing of it stays behind
  // here (DESIGN.md guarantee 4). Consumption acks still arriving for it are counted as
  // bogus_acks and dropped; the new site is released by the receiver's answer to its re-send.
  Result<SendState> take_send_state(ChannelKey key);
  // Import starts a new incarnation of the sender's side (state.incarnation + 1), carried in
  // every DATA it sends, so that receivers send consumption acks here and not to a site the
  // sender left, whichever copies arrive last. Errors: kInvalidArgument (inconsistent state).
  Status import_send_state(ChannelKey key, SendState state);
  Result<RecvState> export_recv_state(ChannelKey key) const;
  Status import_recv_state(ChannelKey key, RecvState state);

  // Introspection, for tests, checkers and benchmarks.
  const TransportStats& stats() const { return stats_; }
  const Path* path(SiteId site) const;
  const SendChannel* send_channel(ChannelKey key) const;
  const RecvChannel* recv_channel(ChannelKey key) const;
  std::size_t send_channel_count() const { return send_.size(); }
  // The local senders with a channel to `to` (empty when none).
  std::vector<StreamId> senders_to(StreamId to) const {
    auto it = send_index_.find(to);
    return it == send_index_.end() ? std::vector<StreamId>{} : it->second;
  }
  // Unconsumed messages of the local send channels `count` selects.
  template <class Pred>
  std::uint64_t unconsumed_messages(Pred count) const {
    std::uint64_t n = 0;
    for (const auto& [key, ch] : send_)
      if (count(key)) n += ch.unconsumed_count();
    return n;
  }
  std::size_t recv_channel_count() const { return recv_.size(); }
  // True when no local sender has an unconsumed message, no datagram of ours awaits its
  // acknowledgement and no consumption ack or rejection is waiting to be sent.
  bool idle() const;

 private:
  Path& path_to(SiteId site);
  // The remote restarted (a newer boot): its end of the path is gone, so ours starts over
  // too, and everything it had not consumed or heard acknowledged as consumed goes again.
  Path& reset_path(SiteId site, std::uint32_t peer_boot, Time now);
  // Whether anything may be sent to `site`: not once it was expelled (it failed or left).
  bool reachable(SiteId site) const {
    return site == self_ || !membership_ || admitted_.contains(site);
  }
  bool poll_path(Time now, OutDatagram* out);
  bool poll_one(SiteId site, Path& p, Time now, OutDatagram* out);
  // Opens a sealed datagram into opened_; false (counted) when it does not authenticate.
  Status open_sealed(wire::ByteView bytes);
  // What a new path is made with: the config's, with room for the seal.
  PathConfig path_config() const;
  // What protects this transport's datagrams: the seal when secured, else their checksum.
  wire::Integrity integrity() const {
    return secured_ ? wire::Integrity::kSealed : wire::Integrity::kChecksum;
  }
  bool keepalive_due(SiteId site, const Path& p, Time now) const;
  void on_frame(SiteId src, const wire::Frame& f, Time now);
  void on_data(SiteId src, const wire::Frame& f, Time now);
  // The user-stream pin (kByLocation): whether `f` goes on to its channel now; if not, it was
  // held for the leader's word, or refused.
  bool user_frame_taken(SiteId src, const wire::Frame& f, Time now);
  // A frame held for the leader's word, dropped after all (`forged`: counted as a lie).
  void ask_about(StreamId from, Time now);
  void judge_held(StreamId from, std::uint64_t answered, std::span<const SiteId> going, Time now);
  void refuse_held(SenderPins::Held& h);
  void refuse(const SenderPins::Held& h);
  void on_consumed(SiteId src, const wire::Frame& f);
  void on_reject(SiteId src, const wire::Frame& f);
  void flush_ready(RecvChannel& ch, ChannelKey key);
  void set_reply_site(RecvChannel& ch, ChannelKey key, SiteId site, Time now);
  void queue_data(SendChannel& ch, ChannelKey key);
  void queue_consumed(RecvChannel& ch, ChannelKey key, Time now);
  // A CONSUMED up to `up_to` for `site`, whatever the channel's reply site is.
  void queue_direct_consumed(SiteId site, ChannelKey key, Seq up_to, Time now);
  void queue_reject(SiteId site, ChannelKey key, Seq seq, wire::RejectReason reason);
  void release(SendChannel& ch, ChannelKey key, Seq up_to);
  // Appends between streams of this site skip the network but keep its guarantees.
  void deliver_local(SendChannel& ch, ChannelKey key);
  // Packs control frames and channel data for `site` into *body, up to `room` bytes.
  void fill_body(Path& p, std::size_t room, wire::Bytes* body);
  bool fill_data(Path& p, std::size_t room, wire::Bytes* body);

  // Receiver stream -> the senders of its channels here, so that relocating or closing one
  // stream touches only its own channels.
  using ChannelIndex = std::unordered_map<StreamId, std::vector<StreamId>>;
  static void index_add(ChannelIndex& index, ChannelKey key);
  static void index_remove(ChannelIndex& index, ChannelKey key);
  // recv_index_ and recv_from_ follow recv_.
  void recv_added(ChannelKey key);
  void recv_removed(ChannelKey key);
  void count_recv_from(StreamId from, int delta);
  void retire_sender(StreamId from);

  SiteId self_;
  TransportConfig config_;
  // Consumed messages after which a path's consumption acks go at once (queue_consumed): a
  // quarter of a channel's bound.
  std::uint32_t consumed_burst_;
  std::uint32_t boot_ = 0;
  std::unordered_map<SiteId, std::unique_ptr<Path>> paths_;
  // Paths whose data became ready since the last poll, oldest first (poll_path): at most one
  // entry per path between two polls, as its queue empties only when polled.
  std::deque<SiteId> first_ready_;
  std::unordered_map<ChannelKey, SendChannel, ChannelKeyHash> send_;
  std::unordered_map<ChannelKey, RecvChannel, ChannelKeyHash> recv_;
  ChannelIndex send_index_;
  ChannelIndex recv_index_;
  // How many receive channels each sender has here: a destroyed sender's pin is kept while
  // it has one (retired_senders_).
  std::unordered_map<StreamId, std::uint32_t> recv_from_;
  // Senders destroyed, oldest first: their pins are kept for the last kRetiredSenders of them,
  // and for any with a receive channel here still (its last copies may still come).
  std::deque<StreamId> retired_senders_;
  std::unordered_set<StreamId> open_;
  std::unordered_set<SiteId> admitted_;
  std::unordered_map<SiteId, Time> keepalive_;
  std::unordered_map<StreamId, std::uint32_t> sender_origin_;
  bool membership_ = false;  // set by the first admit_site(); expelling all keeps it on
  std::deque<Delivery> deliveries_;
  std::deque<Released> released_;
  std::deque<Rejected> rejected_;
  std::deque<AckedAhead> acked_ahead_;
  TransportStats stats_;
  wire::DecodedDatagram decoded_;  // reused across on_datagram calls
  wire::Bytes body_;               // reused across poll_transmit calls
  // Secured: the keys of this site's pairs (which peers open AEGIS-256, their paths know:
  // Path::peer_opens_aegis).
  bool secured_ = false;
  Keyring keys_;
  SenderPin pin_ = nullptr;
  OpenGate open_gate_;
  SenderPins pins_;
  std::vector<SenderPins::Held> judged_;               // scratch of judge_held() and on_timeout()
  std::vector<SenderPins::Unjudged> judged_unjudged_;  // scratch of on_placed()
  std::deque<StreamId> unplaced_;
  std::unordered_map<StreamId, Time> asks_;  // when the last ask about a sender was made
  Time excused_until_ = 0;                   // leader_restarted()
  void refresh_repeat(wire::Bytes* datagram);
  wire::DecodedDatagram repeat_;  // refresh_repeat's scratch
  wire::Bytes repeat_bytes_;
  std::uint64_t seal_counter_ = 0;
  wire::SealedHeader sealed_header_;  // of the datagram on_datagram() opened last
  wire::Bytes opened_;                // its plaintext: decoded_ points into it
  wire::Bytes sealed_;                // poll_transmit's sealing buffer
  std::unordered_map<SiteId, ReplayWindow> replay_;
};

}  // namespace mstream::proto
