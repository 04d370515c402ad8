#pragma once
// The session secret on disk (doc/security.md), in a file only its owner may read (like ssh's
// keys and Erlang's cookie):
//
//   <64 hexadecimal digits: the secret>
//   leader-public-key <64 hexadecimal digits: the leader's X25519 public key>
//
// Whoever holds the secret may join the session; the second line pins the leader's key pair,
// so that a joiner takes its join accept only from the holder of the pair's secret key. The
// leader keeps that secret key beside the secret, in SECRET_PATH.leader (64 hexadecimal digits,
// mode 0600 too), and makes the secret and the pair when there are none: copying the secret
// file to the other machines hands out both.

#include <optional>
#include <string>

#include "mstream/status.hpp"
#include "proto/joiner.hpp"
#include "wire/crypto.hpp"

namespace mstream::runtime {

// $MSTREAM_SECRET_FILE, else $HOME/.mstream/secret; empty when neither is set.
std::string default_secret_path();
// Where the leader's secret key lives, beside the secret file.
inline std::string leader_key_path(const std::string& secret_path) {
  return secret_path + ".leader";
}

struct SessionSecret {
  wire::Key secret{};
  // None: a file of before the leader's key pair (the leader adds it; a member must be given
  // the leader's file again).
  std::optional<wire::KxPublicKey> leader_public;
};

// Reads the secret file at `path`. Errors: kNotFound (no such file), kPermissionDenied (others
// may read or write it), kInvalidArgument (not a secret file), kIoError.
Result<SessionSecret> read_secret(const std::string& path);

// The leader's: the secret and its key pair.
struct LeaderSecret {
  wire::Key secret{};
  wire::KxKeyPair kx{};
};
// Reads the secret at `path` and the leader's secret key beside it, or makes what is missing:
// a new random secret and pair (and the directory, mode 0700) when there is no secret file
// (*made_secret), or a pair for a secret file without one, whose public key line is then
// added to it (*made_pair). Two processes making a secret at once end up with the same one
// (the file appears whole, or not at all). Errors: read_secret's (for either file), kIoError,
// kInvalidArgument when the secret key does not belong to the pinned public key, kNotFound
// when the file pins a public key whose secret key is not here (not the leader's machine).
Result<LeaderSecret> read_or_make_leader_secret(const std::string& path, bool* made_secret,
                                                bool* made_pair);

// What a member joins a secured session with: a fresh key pair for each join. None without a
// secret, or with one that pins no leader key.
std::optional<proto::JoinSecrets> join_secrets(const std::optional<SessionSecret>& s);

}  // namespace mstream::runtime
