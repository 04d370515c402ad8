#include "runtime/child_process.hpp"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

#include "runtime/clock.hpp"

extern char** environ;

namespace mstream::runtime {
namespace {

Status io_error(const char* what) {
  return Status::error(Status::Code::kIoError, std::string(what) + ": " + strerror(errno));
}

// pipes[0]: child's input (child reads [0], we write [1]); pipes[1]: child's output.
Status make_pipes(int pipes[2][2]) {
  if (pipe2(pipes[0], O_CLOEXEC) != 0) return io_error("pipe");
  if (pipe2(pipes[1], O_CLOEXEC) != 0) {
    close(pipes[0][0]);
    close(pipes[0][1]);
    return io_error("pipe");
  }
  return Status::ok_status();
}

// In the child, right after fork: die with the parent, so a killed test or demo leaves no
// orphan behind. The getppid() check covers a parent that died before prctl().
void die_with_parent(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
}

// Reaps pid (status may be null), waiting as long as it takes: call only once it has exited or
// was sent SIGKILL.
void reap(pid_t pid, int* status) {
  while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
  }
}

std::string_view env_name(std::string_view entry) { return entry.substr(0, entry.find('=')); }

// Our environment with `overrides` ("NAME=VALUE") replacing or adding entries.
std::vector<std::string> child_environment(const std::vector<std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    bool overridden = false;
    for (const std::string& o : overrides) overridden |= env_name(o) == env_name(entry);
    if (!overridden) env.emplace_back(entry);
  }
  env.insert(env.end(), overrides.begin(), overrides.end());
  return env;
}

}  // namespace

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "ended with wait status " + std::to_string(status);
}

bool LineReader::take_line(std::string* line) {
  const std::size_t nl = buffer_.find('\n');
  if (nl == std::string::npos) return false;
  line->assign(buffer_, 0, nl);
  buffer_.erase(0, nl + 1);
  return true;
}

bool LineReader::fill() {
  if (eof_ || fd_ < 0) return false;
  char chunk[4096];
  for (;;) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 0) <= 0) return true;
    const ssize_t n = ::read(fd_, chunk, sizeof(chunk));
    if (n > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    eof_ = true;
    return false;
  }
}

bool LineReader::try_read_line(std::string* line) {
  if (take_line(line)) return true;
  fill();
  return take_line(line);
}

bool LineReader::closed() {
  fill();
  return eof_ && buffer_.find('\n') == std::string::npos;
}

bool LineReader::take_rest(std::string* line) {
  if (!closed() || buffer_.empty()) return false;
  *line = std::exchange(buffer_, std::string());
  return true;
}

Result<std::string> LineReader::read_line(std::chrono::nanoseconds timeout) {
  const proto::Time deadline = deadline_after(monotonic_now(), timeout);
  std::string line;
  for (;;) {
    if (try_read_line(&line)) return line;
    if (eof_) return Status::error(Status::Code::kUnavailable, "the writer closed the pipe");
    const proto::Time now = monotonic_now();
    if (now >= deadline) return Status::error(Status::Code::kUnavailable, "timed out");
    pollfd pfd{fd_, POLLIN, 0};
    const proto::Time left_ms = (deadline - now) / proto::kMillisecond + 1;
    ::poll(&pfd, 1, static_cast<int>(std::min<proto::Time>(left_ms, 1000)));
  }
}

Status write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("write");
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::ok_status();
}

Result<ChildProcess> ChildProcess::spawn(const std::vector<std::string>& argv,
                                         const SpawnOptions& options) {
  if (argv.empty())
    return Status::error(Status::Code::kInvalidArgument, "spawn: empty argument list");
  // Built before fork: the child must not allocate (the parent may hold malloc's lock).
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::vector<std::string> env_storage = child_environment(options.environment);
  std::vector<char*> env;
  for (const std::string& e : env_storage) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  const pid_t group = options.process_group;
  auto child = fork([&args, &env, group](int input_fd, int output_fd) {
    if (group >= 0 && setpgid(0, group) != 0) return 127;
    // The mask survives exec; a daemon that finds SIGTERM blocked would never stop.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // dup2 clears O_CLOEXEC on the copies, so exactly stdin and stdout survive exec.
    if (dup2(input_fd, STDIN_FILENO) < 0 || dup2(output_fd, STDOUT_FILENO) < 0) return 127;
    execve(args[0], args.data(), env.data());
    return 127;
  });
  // Also from our side, so the child is in its group when we return even if it has not been
  // scheduled yet (the usual job-control race). It fails harmlessly once the child has exec'd,
  // by which time the child's own call has done it.
  if (child.ok() && group >= 0) setpgid(child->pid(), group == 0 ? child->pid() : group);
  return child;
}

Result<ChildProcess> ChildProcess::fork(
    const std::function<int(int input_fd, int output_fd)>& body) {
  int pipes[2][2];
  Status st = make_pipes(pipes);
  if (!st.ok()) return st;
  // The child runs our code with a copy of our stdio buffers: were it to flush them, what they
  // hold would be written twice.
  std::fflush(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    for (auto& p : pipes) close(p[0]), close(p[1]);
    return io_error("fork");
  }
  if (pid == 0) {
    die_with_parent(parent);
    close(pipes[0][1]);
    close(pipes[1][0]);
    int code = 125;
    try {
      code = body(pipes[0][0], pipes[1][1]);
    } catch (...) {
      code = 126;
    }
    // _exit, not exit: the parent's atexit handlers and buffered streams are not ours.
    _exit(code);
  }
  close(pipes[0][0]);
  close(pipes[1][1]);
  return ChildProcess(pid, pipes[0][1], pipes[1][0]);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      input_fd_(std::exchange(other.input_fd_, -1)),
      output_(std::exchange(other.output_, LineReader(-1))) {}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    reap(pid_, nullptr);
  }
  close_input();
  if (output_.fd() >= 0) close(output_.fd());
}

Status ChildProcess::write_line(std::string_view line) {
  if (input_fd_ < 0) return Status::error(Status::Code::kUnavailable, "input already closed");
  Status st = write_all(input_fd_, line);
  if (!st.ok()) return st;
  return write_all(input_fd_, "\n");
}

void ChildProcess::close_input() {
  if (input_fd_ >= 0) close(std::exchange(input_fd_, -1));
}

std::optional<int> ChildProcess::try_reap() {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  pid_t r;
  while ((r = waitpid(pid_, &status, WNOHANG)) < 0 && errno == EINTR) {
  }
  if (r == 0) return std::nullopt;
  pid_ = -1;
  // ECHILD: someone else reaped it; we cannot know how it ended.
  if (r < 0) return std::nullopt;
  return status;
}

Status ChildProcess::send_signal(int signal) {
  if (pid_ <= 0) return Status::error(Status::Code::kUnavailable, "the child was already reaped");
  if (kill(pid_, signal) != 0) return io_error("kill");
  return Status::ok_status();
}

int ChildProcess::wait(std::chrono::nanoseconds timeout) {
  if (pid_ <= 0) return -1;
  const proto::Time deadline = deadline_after(monotonic_now(), timeout);
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) {
      pid_ = -1;
      return -1;
    }
    if (monotonic_now() >= deadline) {
      kill(pid_, SIGKILL);
      reap(pid_, &status);
      break;
    }
    usleep(1000);
  }
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace mstream::runtime
