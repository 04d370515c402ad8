#include "runtime/output_merger.hpp"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <system_error>

#include "runtime/clock.hpp"

namespace mstream::runtime {
namespace {

// Reads an unsigned decimal number at the start of `s` into `value`; returns the digits used
// (0 if there are none or the number does not fit).
template <typename T>
std::size_t parse_number(std::string_view s, T* value) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *value);
  if (ec != std::errc()) return 0;
  return static_cast<std::size_t>(end - s.data());
}

// poll() takes milliseconds; round up so that we never wake just before a line is due. Capped
// so that the thread looks at its state at least once a second whatever happens.
int poll_timeout_ms(proto::Time wake_at, proto::Time now) {
  constexpr proto::Time kMaxSleep = proto::kSecond;
  const proto::Time sleep = wake_at <= now ? 0 : std::min(wake_at - now, kMaxSleep);
  return static_cast<int>((sleep + proto::kMillisecond - 1) / proto::kMillisecond);
}

}  // namespace

std::string stamped_line(proto::Time stamp, proto::SiteId site, std::string_view text) {
  std::string line = "@" + std::to_string(stamp) + " " + std::to_string(site) + " ";
  line.append(text);
  return line;
}

std::optional<StampedLine> parse_stamped_line(std::string_view line) {
  if (line.empty() || line[0] != '@') return std::nullopt;
  line.remove_prefix(1);
  StampedLine parsed;
  const std::size_t stamp_digits = parse_number(line, &parsed.stamp);
  if (stamp_digits == 0 || stamp_digits >= line.size() || line[stamp_digits] != ' ')
    return std::nullopt;
  line.remove_prefix(stamp_digits + 1);
  const std::size_t site_digits = parse_number(line, &parsed.site);
  if (site_digits == 0) return std::nullopt;
  line.remove_prefix(site_digits);
  if (!line.empty()) {
    if (line[0] != ' ') return std::nullopt;
    parsed.text = line.substr(1);
  }
  return parsed;
}

Result<std::unique_ptr<OutputMerger>> OutputMerger::start(std::FILE* out,
                                                          OutputMergerOptions options) {
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0)
    return Status::error(Status::Code::kIoError, std::string("eventfd: ") + strerror(errno));
  std::unique_ptr<OutputMerger> merger(new OutputMerger(out, options, wake_fd));
  // The thread inherits the mask in force when it is made: with every signal blocked there,
  // SIGINT and friends reach the caller's threads (and their handlers) instead.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    merger->thread_ = std::thread([m = merger.get()] { m->run(); });
  } catch (const std::system_error& e) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return Status::error(Status::Code::kIoError, std::string("output thread: ") + e.what());
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return merger;
}

OutputMerger::OutputMerger(std::FILE* out, OutputMergerOptions options, int wake_fd)
    : out_(out), options_(options), wake_fd_(wake_fd) {}

OutputMerger::~OutputMerger() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  read_sources_locked();
  if (!shell_tail_.empty()) hold_locked(shell_tail_since_, std::exchange(shell_tail_, "") + "\n");
  print_until_locked(proto::kNever);
  for (const auto& source : sources_) close(source->reader.fd());
  close(wake_fd_);
}

void OutputMerger::add_source(LineReader reader, std::optional<proto::SiteId> site) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    sources_.push_back(std::make_unique<Source>(Source{std::move(reader), site}));
    // Lines the reader had buffered before it came to us would not wake poll().
    read_sources_locked();
  }
  wake();
}

void OutputMerger::shell_line(std::string_view text) {
  std::string line(text);
  line.push_back('\n');
  shell_output(line);
}

void OutputMerger::shell_output(std::string_view text) {
  if (text.empty()) return;
  const proto::Time now = monotonic_now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (;;) {
      if (shell_tail_.empty()) shell_tail_since_ = now;
      const std::size_t nl = text.find('\n');
      if (nl == std::string_view::npos) {
        shell_tail_.append(text);
        break;
      }
      shell_tail_.append(text.substr(0, nl + 1));
      hold_locked(shell_tail_since_, std::exchange(shell_tail_, ""));
      text.remove_prefix(nl + 1);
      if (text.empty()) break;
    }
  }
  // The thread may be asleep with no line held; the new one is due in `hold`.
  wake();
}

void OutputMerger::flush() {
  std::lock_guard<std::mutex> lock(mu_);
  read_sources_locked();
  print_until_locked(proto::kNever);
}

bool OutputMerger::sources_closed() {
  std::lock_guard<std::mutex> lock(mu_);
  read_sources_locked();
  return std::all_of(sources_.begin(), sources_.end(), [](const auto& s) { return s->eof; });
}

void OutputMerger::wake() {
  const std::uint64_t one = 1;
  // Failure means the counter is saturated: the thread has a wake-up pending anyway.
  [[maybe_unused]] const ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void OutputMerger::run() {
  std::vector<pollfd> fds;
  for (;;) {
    proto::Time wake_at = proto::kNever;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      build_pollfds_locked(&fds);
      if (!held_.empty()) wake_at = held_.begin()->first.first + options_.hold.count();
    }
    // Only the destructor closes a source's fd, after joining us, so the fds stay valid while
    // we poll without the lock.
    ::poll(fds.data(), fds.size(), poll_timeout_ms(wake_at, monotonic_now()));
    std::uint64_t wakeups;
    [[maybe_unused]] const ssize_t n = read(wake_fd_, &wakeups, sizeof(wakeups));
    std::lock_guard<std::mutex> lock(mu_);
    read_sources_locked();
    print_until_locked(monotonic_now() - options_.hold.count());
  }
}

void OutputMerger::build_pollfds_locked(std::vector<pollfd>* fds) const {
  fds->clear();
  fds->push_back(pollfd{wake_fd_, POLLIN, 0});
  for (const auto& source : sources_)
    if (!source->eof) fds->push_back(pollfd{source->reader.fd(), POLLIN, 0});
}

void OutputMerger::read_sources_locked() {
  for (const auto& source : sources_) {
    if (source->eof) continue;
    const proto::Time now = monotonic_now();
    std::string line;
    while (source->reader.try_read_line(&line)) hold_source_line_locked(*source, line, now);
    if (source->reader.closed()) {
      if (source->reader.take_rest(&line)) hold_source_line_locked(*source, line, now);
      source->eof = true;
    }
  }
}

void OutputMerger::hold_source_line_locked(const Source& source, std::string_view line,
                                           proto::Time now) {
  if (const auto stamped = parse_stamped_line(line)) {
    std::string out = "[" + std::to_string(stamped->site) + "] ";
    out.append(stamped->text);
    out.push_back('\n');
    // A line cannot have been printed after we read it (one clock for all processes of the
    // machine); clamping keeps a bogus future stamp from being held indefinitely.
    hold_locked(std::min(stamped->stamp, now), std::move(out));
    return;
  }
  // An unstamped line was printed at the latest when we read it.
  std::string out = source.site ? "[" + std::to_string(*source.site) + "] " : std::string();
  out.append(line);
  out.push_back('\n');
  hold_locked(now, std::move(out));
}

void OutputMerger::hold_locked(proto::Time stamp, std::string line) {
  held_.emplace(std::make_pair(stamp, arrivals_++), std::move(line));
}

void OutputMerger::print_until_locked(proto::Time stamp_limit) {
  bool printed = false;
  while (!held_.empty() && held_.begin()->first.first <= stamp_limit) {
    const std::string& line = held_.begin()->second;
    std::fwrite(line.data(), 1, line.size(), out_);
    held_.erase(held_.begin());
    printed = true;
  }
  if (printed) std::fflush(out_);
}

}  // namespace mstream::runtime
