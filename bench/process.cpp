#include "bench/process.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

namespace mstream::bench {
namespace {

// The child's exit code when it could not pin itself: a benchmark must not silently run
// unpinned when it reports a placement.
constexpr int kCouldNotPin = 2;

std::optional<std::uint64_t> parse_word(const std::string& line) {
  std::uint64_t word = 0;
  const char* end = line.data() + line.size();
  const auto [stop, ec] = std::from_chars(line.data(), end, word);
  if (ec != std::errc() || stop != end || line.empty()) return std::nullopt;
  return word;
}

}  // namespace

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

Status AffinityGuard::pin(int core) {
  if (pin_to_core(core)) return Status::ok_status();
  return Status::error(Status::Code::kIoError, "sched_setaffinity(cpu" + std::to_string(core) +
                                                   "): " + std::strerror(errno));
}

bool Link::send(std::uint64_t word) {
  // One short write: the line reaches the reader whole.
  return runtime::write_all(output_fd_, std::to_string(word) + "\n").ok();
}

std::optional<std::uint64_t> Link::receive(std::chrono::milliseconds timeout) {
  auto line = input_->read_line(timeout);
  if (!line.ok()) return std::nullopt;
  return parse_word(*line);
}

std::optional<std::uint64_t> Link::try_receive() {
  std::string line;
  if (!input_->try_read_line(&line)) return std::nullopt;
  return parse_word(line);
}

Result<runtime::ChildProcess> fork_pinned(int core,
                                          const std::function<int(Link& to_parent)>& body) {
  return runtime::ChildProcess::fork([core, &body](int input_fd, int output_fd) {
    if (!pin_to_core(core)) return kCouldNotPin;
    runtime::LineReader input(input_fd);
    Link to_parent(input, output_fd);
    return body(to_parent);
  });
}

}  // namespace mstream::bench
