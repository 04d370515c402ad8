#pragma once
// What `mstream run` prints: the lines that handlers print at every daemon of an embedded
// session, and the shell's own lines, merged into one stream in the order they were printed.
//
// Each daemon writes its output to its own pipe as stamped lines "@<ns> <site> <text>" (ns:
// CLOCK_MONOTONIC when the handler printed; see stamped_line()). Pipes deliver with delays of
// their own, so the merger holds every line back `hold` after its stamp and prints held lines
// in stamp order: a line stamped earlier that arrives up to `hold` late on another pipe still
// comes out first, and a causally later line, which always has a later stamp, comes out after
// it. A line that arrives later than `hold` after its stamp is printed as soon as it is read
// (the merger never waits longer than `hold` for anything). Output lines are `[site] text` for
// a daemon's line and `text` for the shell's.
//
// Threading: the merger owns one reader thread (poll over every pipe plus a wake-up eventfd),
// started by start() and joined by the destructor; the thread blocks every signal, so signals
// sent to the process go to the caller's threads. Every public method is safe to call from any
// thread.

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "mstream/status.hpp"
#include "proto/types.hpp"
#include "runtime/child_process.hpp"

namespace mstream::runtime {

// Set to "1" in a daemon's environment to ask for stamped output (LocalSession does).
inline constexpr const char* kStampedOutputEnv = "MSTREAM_STAMPED_OUTPUT";

// The daemon side of the contract: the line (without '\n') a daemon writes for `text`, which a
// handler at `site` printed at CLOCK_MONOTONIC time `stamp` (runtime::monotonic_now()). `text`
// must not contain '\n'.
std::string stamped_line(proto::Time stamp, proto::SiteId site, std::string_view text);

struct StampedLine {
  proto::Time stamp = 0;
  proto::SiteId site = 0;
  std::string_view text;  // points into the parsed line
};

// Parses "@<ns> <site> <text>" (also "@<ns> <site>" for an empty text); std::nullopt for any
// other line.
std::optional<StampedLine> parse_stamped_line(std::string_view line);

struct OutputMergerOptions {
  // How long after its stamp a line is held before it is printed: the largest delay between
  // a daemon printing and our reading its line that still yields stamp order.
  std::chrono::nanoseconds hold = std::chrono::milliseconds(20);
};

class OutputMerger {
 public:
  // Starts the reader thread. `out` must stay open until the merger is destroyed; the merger
  // writes whole lines to it and fflush()es after each batch, so other writers of `out`
  // interleave only between lines. Errors: kIoError if the eventfd or the thread cannot be made.
  static Result<std::unique_ptr<OutputMerger>> start(std::FILE* out,
                                                     OutputMergerOptions options = {});

  OutputMerger(const OutputMerger&) = delete;
  OutputMerger& operator=(const OutputMerger&) = delete;
  // Stops the thread, reads what the pipes hold now, and prints every held line, the
  // unterminated last line of a pipe whose writer exited and the shell's unterminated text
  // included; then closes every source's fd.
  ~OutputMerger();

  // Reads a daemon's output from now on, lines already buffered in `reader` first. The merger
  // owns reader.fd() from now on. `site` prefixes the lines that carry no stamp (for instance a
  // ready line); std::nullopt prints them as they are. Stamped lines are prefixed with the site
  // in their stamp.
  void add_source(LineReader reader, std::optional<proto::SiteId> site);

  // One line of the shell's own output (without '\n'), stamped now and printed unprefixed.
  void shell_line(std::string_view text);
  // The shell's output as its channel wrote it: each complete line is stamped with the time its
  // first byte was written; an unterminated tail waits for the rest of its line (or for the
  // destructor).
  void shell_output(std::string_view text);

  // Reads what every pipe holds now and prints every held complete line at once, without
  // waiting for `hold`: for quiescence (nothing more will be printed) and exit.
  void flush();

  // Every source's writer has closed its end and every line of it was read.
  bool sources_closed();

 private:
  struct Source {
    LineReader reader;
    std::optional<proto::SiteId> site;
    bool eof = false;
  };
  // Held lines in print order: (stamp, arrival number) -> the output line with its '\n'.
  using HeldLines = std::map<std::pair<proto::Time, std::uint64_t>, std::string>;

  OutputMerger(std::FILE* out, OutputMergerOptions options, int wake_fd);
  void run();
  void wake();
  // The *_locked functions need mu_ held.
  void read_sources_locked();
  void hold_locked(proto::Time stamp, std::string line);
  void hold_source_line_locked(const Source& source, std::string_view line, proto::Time now);
  void print_until_locked(proto::Time stamp_limit);
  void build_pollfds_locked(std::vector<pollfd>* fds) const;

  std::FILE* const out_;
  const OutputMergerOptions options_;
  const int wake_fd_;  // eventfd: add_source, shell lines and stop wake the thread
  std::thread thread_;

  // There is no thread-safety annotation header in the project yet: everything below is
  // guarded by mu_.
  std::mutex mu_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<Source>> sources_;
  HeldLines held_;
  std::uint64_t arrivals_ = 0;
  std::string shell_tail_;            // the shell's unterminated text
  proto::Time shell_tail_since_ = 0;  // when its first byte was written
};

}  // namespace mstream::runtime
