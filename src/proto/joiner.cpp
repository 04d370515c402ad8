#include "proto/joiner.hpp"

namespace mstream::proto {

Joiner::Joiner(std::uint64_t nonce, wire::JoinMessage::Role role, std::uint64_t pid,
               std::optional<wire::Key> join_key)
    : join_key_(join_key) {
  m_.nonce = nonce;
  m_.role = role;
  m_.pid = pid;
  encode();
}

void Joiner::encode() {
  if (!join_key_) {
    m_.op = wire::JoinMessage::Op::kRequest;
    wire::encode_join(m_, &request_);
  } else if (!challenged_) {
    m_.op = wire::JoinMessage::Op::kHello;
    wire::encode_join(m_, &request_);
  } else {
    m_.op = wire::JoinMessage::Op::kRequest;
    m_.has_cookie = true;
    wire::encode_sealed_join(m_, *join_key_, &request_);
  }
}

Joiner::Outcome Joiner::on_reply(wire::ByteView bytes) {
  using Op = wire::JoinMessage::Op;
  Outcome out;
  Result<wire::JoinMessage> r =
      wire::datagram_kind(bytes) == wire::kKindSealedJoin
          ? (join_key_ ? wire::decode_sealed_join(bytes, *join_key_)
                       : Result<wire::JoinMessage>(Status::error(Status::Code::kMalformed, "")))
          : wire::decode_join(bytes);
  if (!r.ok() || r->nonce != m_.nonce) return out;
  const bool sealed = wire::datagram_kind(bytes) == wire::kKindSealedJoin;
  switch (r->op) {
    case Op::kRefuse:
      // A refusal need not be sealed: a joiner whose secret is wrong could not open it, and
      // an attacker able to forge one could as well drop our datagrams.
      out.kind = Outcome::Kind::kRefused;
      out.reason = r->reason;
      return out;
    case Op::kUnauthentic:
      ++doubts_;
      out.kind = Outcome::Kind::kDoubted;
      out.reason = r->reason;
      return out;
    case Op::kChallenge:
      if (!join_key_ || sealed) return out;
      if (challenged_ && m_.cookie == r->cookie) return out;
      challenged_ = true;
      doubts_ = 0;
      m_.cookie = r->cookie;
      encode();
      out.kind = Outcome::Kind::kResend;
      return out;
    case Op::kAccept:
      if (join_key_ && (!sealed || !r->has_key)) return out;
      out.kind = Outcome::Kind::kAccepted;
      out.site = r->site;
      if (join_key_) out.traffic_key = r->key;
      return out;
    case Op::kRequest:
    case Op::kHello:
      return out;
  }
  return out;
}

}  // namespace mstream::proto
