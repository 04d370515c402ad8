#pragma once
// A child process with a line-oriented pipe each way, for the multi-process demo, tests and
// benchmarks: the parent reads what the child writes to its output and closes the child's
// input to tell it to finish. Every wait is bounded, and a ChildProcess that is destroyed
// while its child runs kills and reaps it, so no error path leaves a process behind. The
// child also dies with its parent (PR_SET_PDEATHSIG), covering a parent that is killed
// outright.
// Thread-safety: none. Fork only from a single-threaded process; spawn() may also be called
// from a process with other threads, since its child runs only async-signal-safe calls before
// exec.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mstream/status.hpp"

namespace mstream::runtime {

// One end of a pipe, read a line at a time.
class LineReader {
 public:
  explicit LineReader(int fd = -1) : fd_(fd) {}
  // Waits at most `timeout` for a complete line (without its '\n').
  // Errors: kUnavailable on timeout or when the writer closed its end first.
  Result<std::string> read_line(std::chrono::nanoseconds timeout);
  // A complete line if one is ready now.
  bool try_read_line(std::string* line);
  // The writer closed its end and every line was read.
  bool closed();
  // Once closed(): the last line if the writer ended it without a '\n'. False otherwise.
  bool take_rest(std::string* line);
  int fd() const { return fd_; }

 private:
  bool take_line(std::string* line);
  // Reads what is available without blocking; false once the writer closed.
  bool fill();
  int fd_;
  bool eof_ = false;
  std::string buffer_;
};

// Writes all of `text` to fd. Errors: kIoError.
Status write_all(int fd, std::string_view text);

// How a waitpid() status reads to a user: "exited with code 3", "killed by signal 9".
std::string describe_wait_status(int status);

struct SpawnOptions {
  // -1: the child stays in our process group; 0: it leads a new group (its pgid is its pid);
  // > 0: it joins that existing group. Set before exec, so a signal sent to the group after
  // spawn() returns reaches the child. If joining fails (the group is gone) the child exits 127
  // without running argv.
  pid_t process_group = -1;
  // "NAME=VALUE" entries added to the child's environment (replacing ours of the same NAME).
  std::vector<std::string> environment;
};

class ChildProcess {
 public:
  // Runs argv (argv[0] is a path) with its stdin and stdout on pipes to us; stderr is shared.
  // The child starts with no signal blocked, whatever our mask is.
  static Result<ChildProcess> spawn(const std::vector<std::string>& argv,
                                    const SpawnOptions& options = {});
  // Forks and runs body(input_fd, output_fd) in the child, which exits with its result (126
  // if it threw) and never returns into the caller's code (no atexit handlers, no test
  // framework teardown). Our stdio buffers are flushed first, so no output is written twice.
  static Result<ChildProcess> fork(const std::function<int(int input_fd, int output_fd)>& body);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) = delete;
  ChildProcess(const ChildProcess&) = delete;
  ~ChildProcess();

  // -1 once the child was reaped (by wait() or try_reap()).
  pid_t pid() const { return pid_; }
  LineReader& output() { return output_; }
  // Moves our read end of the child's output out, with any lines already buffered in it, so
  // that another owner (a reader thread) can keep reading. The caller then owns the fd and
  // closes it; output() is left empty (fd -1).
  LineReader take_output() { return std::exchange(output_, LineReader(-1)); }
  // Our write end of the child's input, for a caller that frames its own writes (write_all);
  // -1 once closed. Owned by this object.
  int input_fd() const { return input_fd_; }
  Status write_line(std::string_view line);
  // EOF on the child's input: our agreed signal that it may finish.
  void close_input();
  // Waits at most `timeout` for the child to exit; then kills it (SIGKILL) and reaps it.
  // Returns its exit code, 128 + signal if a signal ended it, or -1 if it was already reaped.
  int wait(std::chrono::nanoseconds timeout);
  // Never blocks: if the child has exited, reaps it and returns its waitpid() status
  // (describe_wait_status, WIFEXITED, ...); std::nullopt while it runs or once it was reaped.
  std::optional<int> try_reap();
  // Sends `signal` to the child. Errors: kUnavailable once the child was reaped (its pid may
  // belong to another process by now), kIoError if kill() fails.
  Status send_signal(int signal);

 private:
  ChildProcess(pid_t pid, int input_fd, int output_fd)
      : pid_(pid), input_fd_(input_fd), output_(output_fd) {}
  pid_t pid_ = -1;
  int input_fd_ = -1;  // our write end of the child's input
  LineReader output_;  // our read end of the child's output
};

}  // namespace mstream::runtime
