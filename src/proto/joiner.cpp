#include "proto/joiner.hpp"

namespace mstream::proto {

Joiner::Joiner(std::uint64_t nonce, wire::JoinMessage::Role role, std::uint64_t pid,
               std::optional<JoinSecrets> secrets)
    : secrets_(secrets) {
  m_.nonce = nonce;
  m_.role = role;
  m_.pid = pid;
  if (secrets_) {
    m_.has_public = true;
    m_.public_key = secrets_->own.public_key;
    // A pinned key no exchange can be made with opens no accept: doubted below.
    auto k = wire::kx_joiner_open_key(secrets_->own, secrets_->leader_public);
    if (k.ok()) open_key_ = *k;
  }
  encode();
}

void Joiner::encode() {
  if (!secrets_) {
    m_.op = wire::JoinMessage::Op::kRequest;
    wire::encode_join(m_, &request_);
  } else if (!challenged_) {
    m_.op = wire::JoinMessage::Op::kHello;
    wire::encode_join(m_, &request_);
  } else {
    m_.op = wire::JoinMessage::Op::kRequest;
    m_.has_cookie = true;
    wire::encode_sealed_join(m_, secrets_->join_key, &request_);
  }
}

Joiner::Outcome Joiner::on_reply(wire::ByteView bytes) {
  using Op = wire::JoinMessage::Op;
  Outcome out;
  const bool sealed = wire::datagram_kind(bytes) == wire::kKindSealedJoin;
  Result<wire::JoinMessage> r = Status::error(Status::Code::kMalformed, "");
  if (!sealed) {
    r = wire::decode_join(bytes);
  } else if (secrets_) {
    // The only sealed answer is the accept, under the key exchange's key.
    auto nonce = wire::sealed_join_nonce(bytes);
    if (!nonce.ok() || *nonce != m_.nonce) return out;
    if (open_key_) r = wire::decode_sealed_join(bytes, *open_key_);
    if (!open_key_ || (!r.ok() && r.status().code() == Status::Code::kPermissionDenied)) {
      // Sealed for our nonce, but not by the holder of the leader's key pair we pinned (or
      // damaged on the way): a leader of another key pair answers every time.
      ++doubts_;
      out.kind = Outcome::Kind::kDoubted;
      out.reason =
          "the leader's answer did not authenticate under its public key in our secret file: "
          "the leader's key pair is another (copy the leader's secret file here again)";
      return out;
    }
  }
  if (!r.ok() || r->nonce != m_.nonce) return out;
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
      if (!secrets_ || sealed) return out;
      if (challenged_ && m_.cookie == r->cookie) return out;
      challenged_ = true;
      doubts_ = 0;
      m_.cookie = r->cookie;
      encode();
      out.kind = Outcome::Kind::kResend;
      return out;
    case Op::kAccept:
      if (secrets_ && (!sealed || !r->has_key)) return out;
      out.kind = Outcome::Kind::kAccepted;
      out.site = r->site;
      if (secrets_) out.leader_key = r->key;
      return out;
    case Op::kRequest:
    case Op::kHello:
      return out;
  }
  return out;
}

}  // namespace mstream::proto
