#include "runtime/secret_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace mstream::runtime {
namespace {

Status io_error(const std::string& what, const std::string& path) {
  return Status::error(Status::Code::kIoError, what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

std::string default_secret_path() {
  if (const char* p = std::getenv("MSTREAM_SECRET_FILE"); p && *p) return p;
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.mstream/secret";
  return {};
}

Result<wire::Key> read_secret(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return Status::error(Status::Code::kNotFound, "no session secret at " + path);
    return io_error("cannot open the session secret", path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return io_error("cannot stat the session secret", path);
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::error(Status::Code::kPermissionDenied,
                         "the session secret " + path + " may be read or written by others (mode " +
                             mode + "): chmod 600 " + path);
  }
  char buf[80];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n < 0) return io_error("cannot read the session secret", path);
  std::string_view text(buf, static_cast<std::size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.remove_suffix(1);
  auto key = wire::key_from_hex(text);
  if (!key.ok())
    return Status::error(Status::Code::kInvalidArgument,
                         "the session secret " + path + " is damaged: " + key.status().message());
  return key;
}

Result<wire::Key> read_or_make_secret(const std::string& path, bool* made) {
  *made = false;
  auto existing = read_secret(path);
  if (existing.ok() || existing.status().code() != Status::Code::kNotFound) return existing;
  if (!wire::crypto_ready())
    return Status::error(Status::Code::kIoError, "libsodium could not be initialised");
  const std::filesystem::path file(path);
  if (file.has_parent_path()) {
    std::error_code ec;
    const auto dir = file.parent_path();
    if (!std::filesystem::exists(dir, ec)) {
      std::filesystem::create_directories(dir, ec);
      if (ec)
        return Status::error(Status::Code::kIoError,
                             "cannot make " + dir.string() + ": " + ec.message());
      ::chmod(dir.c_str(), 0700);
    }
  }
  // Written aside, then linked into place: a reader never sees half a secret, and of two
  // makers racing, the second's link fails and it reads the first's.
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("cannot write the session secret", temp);
  const std::string text = wire::key_to_hex(wire::random_key()) + "\n";
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  ::close(fd);
  if (!written) {
    Status st = io_error("cannot write the session secret", temp);
    ::unlink(temp.c_str());
    return st;
  }
  const int linked = ::link(temp.c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(temp.c_str());
  if (linked != 0 && link_errno != EEXIST) {
    errno = link_errno;
    return io_error("cannot write the session secret", path);
  }
  *made = linked == 0;
  return read_secret(path);
}

}  // namespace mstream::runtime
