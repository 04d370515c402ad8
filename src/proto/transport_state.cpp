// A channel's state taken out of a Transport and put into another: a stream that moves takes
// its channels' sequence state with it (seed 004 §2.3; guarantee 4). Beside transport.cpp.
#include "proto/transport.hpp"

namespace mstream::proto {

Result<SendState> Transport::export_send_state(ChannelKey key) const {
  auto it = send_.find(key);
  if (it == send_.end()) return Status::error(Status::Code::kNotFound, "no such send channel");
  return it->second.export_state();
}

Result<SendState> Transport::take_send_state(ChannelKey key) {
  auto it = send_.find(key);
  if (it == send_.end()) return Status::error(Status::Code::kNotFound, "no such send channel");
  SendState state = it->second.export_state();
  // An entry left on the path's ready list finds no channel and is skipped.
  send_.erase(it);
  index_remove(send_index_, key);
  return state;
}

Status Transport::import_send_state(ChannelKey key, SendState state) {
  if (key.from == 0 || key.to == 0 || state.next_seq == 0 ||
      state.consumed_up_to + 1 + state.unconsumed.size() != state.next_seq)
    return Status::error(Status::Code::kInvalidArgument, "inconsistent send state");
  std::uint64_t bytes = 0;
  for (const wire::Bytes& b : state.unconsumed) {
    if (b.size() > SendChannel::kMaxMessageSize)
      return Status::error(Status::Code::kInvalidArgument, "send state holds a message too large");
    bytes += b.size();
  }
  if (bytes > SendChannel::kMaxBufferedBytes)
    return Status::error(Status::Code::kInvalidArgument, "send state holds too many bytes");
  // The channel lives here now: a new incarnation, so that receivers tell the copies this
  // site sends from those the previous one sent before it let go.
  if (state.incarnation == std::numeric_limits<std::uint32_t>::max())
    return Status::error(Status::Code::kInvalidArgument, "send state moved too often");
  ++state.incarnation;
  if (!send_.contains(key)) index_add(send_index_, key);
  SendChannel& ch = send_[key] = SendChannel(std::move(state));
  queue_data(ch, key);
  return Status::ok_status();
}

Result<RecvState> Transport::export_recv_state(ChannelKey key) const {
  auto it = recv_.find(key);
  if (it == recv_.end()) return Status::error(Status::Code::kNotFound, "no such recv channel");
  return it->second.export_state();
}

Status Transport::import_recv_state(ChannelKey key, RecvState state) {
  if (key.from == 0 || key.to == 0)
    return Status::error(Status::Code::kInvalidArgument, "stream id 0 is reserved");
  if (!is_open(key.to))
    return Status::error(Status::Code::kNotFound,
                         "stream " + std::to_string(key.to) + " is not open here");
  std::erase_if(deliveries_, [key](const Delivery& d) { return d.key == key; });
  if (!recv_.contains(key)) recv_added(key);
  RecvChannel& ch = recv_[key] = RecvChannel(state);
  // Confirm what was consumed before the move, at once: the last ack may have been lost
  // with it.
  queue_consumed(ch, key, 0);
  return Status::ok_status();
}

}  // namespace mstream::proto
