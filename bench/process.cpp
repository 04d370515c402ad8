#include "bench/process.hpp"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

namespace mstream::bench {

std::string Placement::describe() const {
  if (!pinned()) return "unpinned";
  return "cpu" + std::to_string(parent_core) + "/cpu" + std::to_string(child_core);
}

Placement choose_placement(bool pin) {
  Placement p;
  if (!pin) return p;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return p;
  std::vector<int> allowed;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) allowed.push_back(cpu);
  }
  if (allowed.size() < 2) return p;  // one core: pinning both to it would only serialise
  p.parent_core = allowed[0];
  p.child_core = allowed[1];
  return p;
}

bool pin_to_core(int core) {
  if (core < 0) return true;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

AffinityGuard::AffinityGuard() {
  CPU_ZERO(&saved_);
  ok_ = sched_getaffinity(0, sizeof(saved_), &saved_) == 0;
}

AffinityGuard::~AffinityGuard() {
  if (ok_) sched_setaffinity(0, sizeof(saved_), &saved_);
}

Link::~Link() {
  if (read_fd_ >= 0) close(read_fd_);
  if (write_fd_ >= 0) close(write_fd_);
}

bool Link::send(std::uint64_t word) {
  for (;;) {
    ssize_t n = write(write_fd_, &word, sizeof(word));
    if (n == static_cast<ssize_t>(sizeof(word))) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

std::optional<std::uint64_t> Link::receive(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pfd{read_fd_, POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(std::max<std::int64_t>(0, left.count())));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return std::nullopt;
    std::uint64_t word = 0;
    ssize_t n = read(read_fd_, &word, sizeof(word));
    if (n < 0 && errno == EINTR) continue;
    // A short read cannot happen for 8-byte writes to a pipe; EOF means the peer is gone.
    if (n != static_cast<ssize_t>(sizeof(word))) return std::nullopt;
    return word;
  }
}

Result<std::unique_ptr<Child>> Child::spawn(int core, Body body) {
  int down[2];  // parent -> child
  int up[2];    // child -> parent
  if (pipe2(down, O_CLOEXEC) != 0) {
    return Status::error(Status::Code::kIoError, std::string("pipe: ") + std::strerror(errno));
  }
  if (pipe2(up, O_CLOEXEC) != 0) {
    close(down[0]);
    close(down[1]);
    return Status::error(Status::Code::kIoError, std::string("pipe: ") + std::strerror(errno));
  }
  // Buffered output would otherwise be written twice, once by each process.
  std::fflush(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {down[0], down[1], up[0], up[1]}) close(fd);
    return Status::error(Status::Code::kIoError, std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // A child must never outlive a benchmark, even if the parent is killed.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(3);
    close(down[1]);
    close(up[0]);
    int code = 2;
    {
      Link link(down[0], up[1]);
      if (pin_to_core(core)) {
        try {
          code = body(link);
        } catch (...) {
          code = 2;
        }
      }
    }
    _exit(code);
  }
  close(down[0]);
  close(up[1]);
  return std::unique_ptr<Child>(new Child(pid, std::make_unique<Link>(up[0], down[1])));
}

int Child::wait(std::chrono::milliseconds timeout) {
  if (reaped_) return -1;
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) {
      reaped_ = true;
      return -1;
    }
    if (Clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  reaped_ = true;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Child::~Child() {
  if (!reaped_) {
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

}  // namespace mstream::bench
