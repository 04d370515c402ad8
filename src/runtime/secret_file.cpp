#include "runtime/secret_file.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace mstream::runtime {
namespace {

constexpr std::string_view kPublicPrefix = "leader-public-key ";

Status io_error(const std::string& what, const std::string& path) {
  return Status::error(Status::Code::kIoError, what + " " + path + ": " + std::strerror(errno));
}

// The text of a file only its owner may read or write (`what` names it in errors).
Result<std::string> read_private(const std::string& path, const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return Status::error(Status::Code::kNotFound, "no " + what + " at " + path);
    return io_error("cannot open the " + what, path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return io_error("cannot stat the " + what, path);
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::error(Status::Code::kPermissionDenied,
                         "the " + what + " " + path + " may be read or written by others (mode " +
                             mode + "): chmod 600 " + path);
  }
  char buf[256];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n < 0) return io_error("cannot read the " + what, path);
  return std::string(buf, static_cast<std::size_t>(n));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
    s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

// Writes `text` to `path` (mode 0600) whole or not at all: aside, then linked into place
// (`replace`: renamed over what is there). EEXIST when it exists and !replace.
Status write_private(const std::string& path, const std::string& text, bool replace,
                     bool* existed) {
  *existed = false;
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("cannot write", temp);
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  ::close(fd);
  if (!written) {
    Status st = io_error("cannot write", temp);
    ::unlink(temp.c_str());
    return st;
  }
  if (replace) {
    if (::rename(temp.c_str(), path.c_str()) != 0) {
      Status st = io_error("cannot write", path);
      ::unlink(temp.c_str());
      return st;
    }
    return Status::ok_status();
  }
  const int linked = ::link(temp.c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(temp.c_str());
  if (linked != 0 && link_errno == EEXIST) {
    *existed = true;
    return Status::ok_status();
  }
  if (linked != 0) {
    errno = link_errno;
    return io_error("cannot write", path);
  }
  return Status::ok_status();
}

std::string secret_text(const wire::Key& secret, const wire::KxPublicKey& leader_public) {
  return wire::key_to_hex(secret) + "\n" + std::string(kPublicPrefix) +
         wire::key_to_hex(leader_public) + "\n";
}

// The leader's secret key at `path`, checked against the public key its secret file pins.
Result<wire::KxKeyPair> read_leader_pair(const std::string& path, const wire::KxPublicKey& pinned) {
  auto text = read_private(path, "leader's secret key");
  if (!text.ok()) return text.status();
  auto sk = wire::key_from_hex(trim(*text));
  if (!sk.ok())
    return Status::error(
        Status::Code::kInvalidArgument,
        "the leader's secret key " + path + " is damaged: " + sk.status().message());
  wire::KxKeyPair pair;
  pair.secret_key = *sk;
  // crypto_kx's public key is X25519's of the secret key.
  if (crypto_scalarmult_base(pair.public_key.data(), pair.secret_key.data()) != 0 ||
      pair.public_key != pinned)
    return Status::error(Status::Code::kInvalidArgument,
                         "the leader's secret key " + path +
                             " does not belong to the public key its secret file pins");
  return pair;
}

}  // namespace

std::string default_secret_path() {
  if (const char* p = std::getenv("MSTREAM_SECRET_FILE"); p && *p) return p;
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.mstream/secret";
  return {};
}

Result<SessionSecret> read_secret(const std::string& path) {
  auto text = read_private(path, "session secret");
  if (!text.ok()) return text.status();
  std::string_view rest = *text;
  const std::size_t eol = rest.find('\n');
  const std::string_view first = trim(rest.substr(0, eol));
  rest = eol == std::string_view::npos ? std::string_view() : trim(rest.substr(eol + 1));
  auto damaged = [&](const std::string& why) {
    return Status::error(Status::Code::kInvalidArgument,
                         "the session secret " + path + " is damaged: " + why);
  };
  SessionSecret out;
  auto key = wire::key_from_hex(first);
  if (!key.ok()) return damaged(key.status().message());
  out.secret = *key;
  if (rest.empty()) return out;
  if (rest.substr(0, kPublicPrefix.size()) != kPublicPrefix)
    return damaged("its second line is not \"leader-public-key\" and 64 hexadecimal digits");
  auto pub = wire::key_from_hex(trim(rest.substr(kPublicPrefix.size())));
  if (!pub.ok()) return damaged("the leader's public key: " + pub.status().message());
  out.leader_public = *pub;
  return out;
}

namespace {

// REQUIRES: the secret's directory is locked (read_or_make_leader_secret).
Result<LeaderSecret> read_or_make_locked(const std::string& path, bool* made_secret,
                                         bool* made_pair) {
  const std::string pair_path = leader_key_path(path);
  auto existing = read_secret(path);
  if (!existing.ok() && existing.status().code() != Status::Code::kNotFound)
    return existing.status();
  if (!existing.ok()) {
    // The secret key first (over one a removed secret left), then the secret that pins it:
    // a secret file is never seen naming a pair whose secret key is not there yet.
    const LeaderSecret fresh{wire::random_key(), wire::kx_keypair()};
    bool existed = false;
    if (Status st = write_private(pair_path, wire::key_to_hex(fresh.kx.secret_key) + "\n",
                                  /*replace=*/true, &existed);
        !st.ok())
      return st;
    if (Status st = write_private(path, secret_text(fresh.secret, fresh.kx.public_key),
                                  /*replace=*/false, &existed);
        !st.ok())
      return st;
    if (!existed) {
      *made_secret = true;
      return fresh;
    }
    existing = read_secret(path);
    if (!existing.ok()) return existing.status();
  }
  LeaderSecret out;
  out.secret = existing->secret;
  if (existing->leader_public) {
    auto pair = read_leader_pair(pair_path, *existing->leader_public);
    if (!pair.ok()) {
      if (pair.status().code() == Status::Code::kNotFound)
        return Status::error(Status::Code::kNotFound,
                             "the session secret " + path +
                                 " pins a leader public key, but the leader's secret key " +
                                 pair_path + " is not there: run the leader where it is");
      return pair.status();
    }
    out.kx = *pair;
    return out;
  }
  // A secret of before the leader's pair: a pair is made (or one a previous attempt left is
  // taken), and its public key added to the secret file.
  auto left = read_private(pair_path, "leader's secret key");
  if (left.ok()) {
    auto sk = wire::key_from_hex(trim(*left));
    if (!sk.ok())
      return Status::error(Status::Code::kInvalidArgument,
                           "the leader's secret key " + pair_path + " is damaged");
    out.kx.secret_key = *sk;
    crypto_scalarmult_base(out.kx.public_key.data(), out.kx.secret_key.data());
  } else if (left.status().code() == Status::Code::kNotFound) {
    out.kx = wire::kx_keypair();
    bool existed = false;
    if (Status st = write_private(pair_path, wire::key_to_hex(out.kx.secret_key) + "\n",
                                  /*replace=*/false, &existed);
        !st.ok())
      return st;
    if (existed)
      return Status::error(Status::Code::kIoError, "the leader's secret key " + pair_path +
                                                       " appeared while it was being made");
  } else {
    return left.status();
  }
  bool existed = false;
  if (Status st = write_private(path, secret_text(out.secret, out.kx.public_key),
                                /*replace=*/true, &existed);
      !st.ok())
    return st;
  *made_pair = true;
  return out;
}

}  // namespace

Result<LeaderSecret> read_or_make_leader_secret(const std::string& path, bool* made_secret,
                                                bool* made_pair) {
  *made_secret = false;
  *made_pair = false;
  if (!wire::crypto_ready())
    return Status::error(Status::Code::kIoError, "libsodium could not be initialised");
  const std::filesystem::path file(path);
  const std::filesystem::path dir = file.has_parent_path() ? file.parent_path() : ".";
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return Status::error(Status::Code::kIoError,
                           "cannot make " + dir.string() + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
  }
  // Two leaders starting at once (tests, a script) must not each make half of a secret and
  // pair: the directory is locked while they are read or made.
  const int lock = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock < 0) return io_error("cannot open the directory of", path);
  if (::flock(lock, LOCK_EX) != 0) {
    Status st = io_error("cannot lock the directory of", path);
    ::close(lock);
    return st;
  }
  auto out = read_or_make_locked(path, made_secret, made_pair);
  ::close(lock);  // and with it the lock
  return out;
}

std::optional<proto::JoinSecrets> join_secrets(const std::optional<SessionSecret>& s) {
  if (!s || !s->leader_public) return std::nullopt;
  return proto::JoinSecrets{wire::join_key_of(s->secret), *s->leader_public, wire::kx_keypair()};
}

}  // namespace mstream::runtime
