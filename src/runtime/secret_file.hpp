#pragma once
// The session secret on disk (doc/security.md): 64 hexadecimal digits and a newline, in a
// file only its owner may read (like ssh's keys and Erlang's cookie). Whoever holds it may
// join the session; the leader makes one when there is none.

#include <string>

#include "mstream/status.hpp"
#include "wire/crypto.hpp"

namespace mstream::runtime {

// $MSTREAM_SECRET_FILE, else $HOME/.mstream/secret; empty when neither is set.
std::string default_secret_path();

// Reads the secret at `path`. Errors: kNotFound (no such file), kPermissionDenied (others may
// read or write it), kInvalidArgument (not a secret), kIoError.
Result<wire::Key> read_secret(const std::string& path);

// Reads the secret at `path`, or makes a new random one there (and its directory, mode 0700)
// when there is none; *made says which. Two processes making one at once end up with the
// same secret (the file appears whole, or not at all). Errors: read_secret's, kIoError.
Result<wire::Key> read_or_make_secret(const std::string& path, bool* made);

}  // namespace mstream::runtime
