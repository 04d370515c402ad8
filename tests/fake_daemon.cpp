// A stand-in for `mstream leader` and `mstream site` in the launcher's tests: it keeps the
// daemon contract of src/runtime/local_session.hpp (ready line, stamped lines, exit 0 on
// SIGTERM) and can break it on request, with no network and no session behind it.
//
//   fake_daemon leader --listen HOST:PORT [option...]
//   fake_daemon site --leader HOST:PORT [option...]
// options:
//   --id N                 the site id of the ready line and the stamps (site default 1)
//   --base NS              CLOCK_MONOTONIC origin of the schedule (default: when we start)
//   --say MS:TEXT          print TEXT, stamped base+MS, at base+MS
//   --say-late MS:D:TEXT   print TEXT stamped base+MS, but only at base+MS+D (a slow pipe)
//   --no-ready             never print the ready line
//   --bad-ready            print "hello" where the ready line belongs
//   --exit-before-ready C  exit with code C instead of getting ready
//   --ignore-term          ignore SIGTERM (only SIGKILL ends us)
//   --lifetime MS          exit 3 after MS whatever happens (default 60000): a broken test
//                          never leaves us behind for long
// Every line is one write(2) to stdout, so nothing waits in a stdio buffer.

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Nanos = std::int64_t;
constexpr Nanos kMs = 1'000'000;

Nanos now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Nanos>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct Line {
  Nanos stamp = 0;     // what the stamp says
  Nanos write_at = 0;  // when it is written
  std::string text;
};

struct Config {
  bool leader = false;
  std::string address;
  unsigned id = 1;
  Nanos base = 0;
  bool ready = true;
  bool bad_ready = false;
  int exit_before_ready = -1;
  bool ignore_term = false;
  Nanos lifetime = 60'000 * kMs;
  std::vector<Line> lines;
};

[[noreturn]] void usage(const char* what) {
  std::fprintf(stderr, "fake_daemon: bad arguments (%s)\n", what);
  _exit(2);
}

// "MS:TEXT" or, when `late`, "MS:D:TEXT".
Line parse_line(std::string_view arg, bool late, Nanos base) {
  Line line;
  std::size_t colon = arg.find(':');
  if (colon == std::string_view::npos) usage("--say");
  line.stamp = base + std::atoll(std::string(arg.substr(0, colon)).c_str()) * kMs;
  arg.remove_prefix(colon + 1);
  line.write_at = line.stamp;
  if (late) {
    colon = arg.find(':');
    if (colon == std::string_view::npos) usage("--say-late");
    line.write_at += std::atoll(std::string(arg.substr(0, colon)).c_str()) * kMs;
    arg.remove_prefix(colon + 1);
  }
  line.text = std::string(arg);
  return line;
}

Config parse(int argc, char** argv) {
  Config c;
  if (argc < 4) usage("too few");
  const std::string_view mode = argv[1];
  c.leader = mode == "leader";
  if (!c.leader && mode != "site") usage("mode");
  c.address = argv[3];
  c.id = c.leader ? 0 : 1;
  c.base = now();
  // --base must be known before the schedule, wherever it appears.
  for (int i = 4; i + 1 < argc; ++i)
    if (std::string_view(argv[i]) == "--base") c.base = std::atoll(argv[i + 1]);
  for (int i = 4; i < argc; ++i) {
    const std::string_view a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--id" && has_value) {
      c.id = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (a == "--base" && has_value) {
      ++i;
    } else if (a == "--say" && has_value) {
      c.lines.push_back(parse_line(argv[++i], false, c.base));
    } else if (a == "--say-late" && has_value) {
      c.lines.push_back(parse_line(argv[++i], true, c.base));
    } else if (a == "--no-ready") {
      c.ready = false;
    } else if (a == "--bad-ready") {
      c.bad_ready = true;
    } else if (a == "--exit-before-ready" && has_value) {
      c.exit_before_ready = std::atoi(argv[++i]);
    } else if (a == "--ignore-term") {
      c.ignore_term = true;
    } else if (a == "--lifetime" && has_value) {
      c.lifetime = std::atoll(argv[++i]) * kMs;
    } else {
      usage(argv[i]);
    }
  }
  std::stable_sort(c.lines.begin(), c.lines.end(),
                   [](const Line& a, const Line& b) { return a.write_at < b.write_at; });
  return c;
}

void write_line(const std::string& text) {
  const std::string line = text + "\n";
  // Our reader may be gone (its end closed); the test decides what that means, not us.
  [[maybe_unused]] const ssize_t n = write(STDOUT_FILENO, line.data(), line.size());
}

// Sleeps until `deadline`; true if SIGTERM (blocked, unless ignored) arrived first.
bool term_before(Nanos deadline, bool ignore_term) {
  for (;;) {
    const Nanos left = deadline - now();
    if (left <= 0) return false;
    const timespec ts{static_cast<time_t>(left / 1'000'000'000),
                      static_cast<long>(left % 1'000'000'000)};
    if (ignore_term) {
      nanosleep(&ts, nullptr);
      continue;
    }
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    if (sigtimedwait(&term, nullptr, &ts) == SIGTERM) return true;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Config c = parse(argc, argv);
  const Nanos started = now();
  if (c.ignore_term) {
    signal(SIGTERM, SIG_IGN);
  } else {
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, nullptr);
  }
  if (c.exit_before_ready >= 0) return c.exit_before_ready;
  const char* stamped_env = getenv("MSTREAM_STAMPED_OUTPUT");
  const bool stamped = stamped_env != nullptr && std::string_view(stamped_env) == "1";

  if (c.bad_ready) {
    write_line("hello");
  } else if (c.ready && c.leader) {
    // A real leader would print the port it bound; ours is made up.
    const std::string host = c.address.substr(0, c.address.rfind(':'));
    write_line("mstream: leader listening on " + host + ":54321");
  } else if (c.ready) {
    write_line("mstream: site " + std::to_string(c.id) + " joined " + c.address);
  }
  for (const Line& line : c.lines) {
    if (term_before(line.write_at, c.ignore_term)) return 0;
    if (stamped)
      write_line("@" + std::to_string(line.stamp) + " " + std::to_string(c.id) + " " + line.text);
    else
      write_line(line.text);
  }
  return term_before(started + c.lifetime, c.ignore_term) ? 0 : 3;
}
