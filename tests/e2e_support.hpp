#pragma once
// Helpers for the end-to-end tests of the mstream command (session_*_test.cpp): they run the
// real binary as a user would and look only at what a user sees (exit codes, stdout, stderr,
// `mstream status --json`, the processes left). Every wait is bounded, every process a test
// starts dies with it (PR_SET_PDEATHSIG) and is killed and reaped by its owner.
//
// Thread-safety: none; tests are single-threaded, which is also what makes fork() safe here.

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace mstream::e2e {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The mstream binary under test: $MSTREAM_BINARY, else the one this test was built with.
inline std::string mstream_binary() {
  if (const char* env = std::getenv("MSTREAM_BINARY"); env != nullptr && *env != '\0') return env;
#ifdef MSTREAM_BINARY
  return MSTREAM_BINARY;
#else
  return "mstream";
#endif
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream all;
  all << in.rdbuf();
  return all.str();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

inline std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// Polls `condition` every few milliseconds until it holds or `timeout` passes.
template <typename Condition>
bool wait_until(Condition condition, std::chrono::nanoseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
}

// A fresh directory, removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/mstream-e2e-XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `text` to NAME in the directory; returns its full path.
  std::string write(const std::string& name, const std::string& text) const {
    write_file(file(name), text);
    return file(name);
  }

 private:
  std::string path_;
};

struct ProcessOptions {
  std::string cwd;          // "" : ours
  std::string stdin_path;   // "" : /dev/null
  std::string stdout_path;  // "" : /dev/null
  std::string stderr_path;  // "" : /dev/null
};

// One process of the binary under test, its output going to files. Destroying it SIGKILLs and
// reaps it if it still runs.
class Process {
 public:
  // argv[0] is a path. The child starts with the default action for every signal and none
  // blocked (ctest may start us with SIGINT ignored), and dies with this process.
  static std::unique_ptr<Process> start(const std::vector<std::string>& argv,
                                        const ProcessOptions& options) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const std::string in = options.stdin_path.empty() ? "/dev/null" : options.stdin_path;
    const std::string out = options.stdout_path.empty() ? "/dev/null" : options.stdout_path;
    const std::string err = options.stderr_path.empty() ? "/dev/null" : options.stderr_path;
    std::fflush(nullptr);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) return nullptr;
    if (pid == 0) {
      // Async-signal-safe calls only from here on.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      struct sigaction default_action {};
      default_action.sa_handler = SIG_DFL;
      for (int s = 1; s < NSIG; ++s) sigaction(s, &default_action, nullptr);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      const int in_fd = open(in.c_str(), O_RDONLY);
      const int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (in_fd < 0 || out_fd < 0 || err_fd < 0) _exit(126);
      dup2(in_fd, 0);
      dup2(out_fd, 1);
      dup2(err_fd, 2);
      if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) _exit(126);
      execv(args[0], args.data());
      _exit(127);
    }
    return std::unique_ptr<Process>(new Process(pid));
  }

  ~Process() {
    if (pid_ > 0 && !status_) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running() {
    poll();
    return !status_;
  }
  // The exit code once it exited (128 + N if signal N ended it), after waiting at most
  // `timeout`; std::nullopt if it still runs.
  std::optional<int> wait(std::chrono::nanoseconds timeout) {
    wait_until([this] { return !running(); }, timeout);
    if (!status_) return std::nullopt;
    if (WIFEXITED(*status_)) return WEXITSTATUS(*status_);
    return 128 + WTERMSIG(*status_);
  }
  void signal(int sig) {
    if (running()) kill(pid_, sig);
  }

 private:
  explicit Process(pid_t pid) : pid_(pid) {}
  void poll() {
    if (status_) return;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
  }
  pid_t pid_;
  std::optional<int> status_;
};

// What a finished command showed its user.
struct CommandResult {
  int exit_code = -1;  // -1: it did not end within its timeout and was killed
  std::string out;
  std::string err;
  std::vector<std::string> lines() const { return split_lines(out); }
  // It ended on its own with an error: a non-zero exit code, not a signal or our timeout.
  bool failed() const { return exit_code > 0 && exit_code < 128; }
  // A summary for assertion messages.
  std::string describe() const {
    return "exit code " + std::to_string(exit_code) + "\n--- stdout:\n" + out + "--- stderr:\n" +
           err;
  }
};

// Runs `mstream ARGS...` in `dir` (stdin from `stdin_text`) and waits at most `timeout`.
// `wrapper`, if given, runs it (e.g. {"ip", "netns", "exec", "NS"}: in a network namespace).
inline CommandResult run_mstream(const TempDir& dir, const std::vector<std::string>& args,
                                 std::chrono::nanoseconds timeout = 60s,
                                 const std::string& stdin_text = "",
                                 const std::vector<std::string>& wrapper = {}) {
  static int serial = 0;
  const std::string tag = std::to_string(++serial);
  ProcessOptions options;
  options.cwd = dir.path();
  options.stdin_path = dir.write("stdin." + tag, stdin_text);
  options.stdout_path = dir.file("stdout." + tag);
  options.stderr_path = dir.file("stderr." + tag);
  std::vector<std::string> argv = wrapper;
  argv.push_back(mstream_binary());
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult result;
  {
    auto process = Process::start(argv, options);
    if (process == nullptr) return result;
    result.exit_code = process->wait(timeout).value_or(-1);
  }
  result.out = read_file(options.stdout_path);
  result.err = read_file(options.stderr_path);
  return result;
}

// Writes `script` to DIR/test.tcl and runs `mstream run RUN_ARGS... test.tcl SCRIPT_ARGS...`
// in DIR, so that errors name the file "test.tcl".
inline CommandResult run_script(const TempDir& dir, const std::string& script,
                                const std::vector<std::string>& run_args = {},
                                const std::vector<std::string>& script_args = {},
                                std::chrono::nanoseconds timeout = 60s) {
  dir.write("test.tcl", script);
  std::vector<std::string> args = {"run"};
  args.insert(args.end(), run_args.begin(), run_args.end());
  args.push_back("test.tcl");
  args.insert(args.end(), script_args.begin(), script_args.end());
  return run_mstream(dir, args, timeout);
}

// The lines of `out` that a handler printed at `site` ("[site] text"), without the prefix.
inline std::vector<std::string> site_lines(const std::string& out, int site) {
  const std::string prefix = "[" + std::to_string(site) + "] ";
  std::vector<std::string> lines;
  for (const std::string& line : split_lines(out))
    if (line.rfind(prefix, 0) == 0) lines.push_back(line.substr(prefix.size()));
  return lines;
}

// The lines of `out` that the shell printed (no "[N] " prefix).
inline std::vector<std::string> shell_lines(const std::string& out) {
  std::vector<std::string> lines;
  for (const std::string& line : split_lines(out))
    if (line.empty() || line[0] != '[') lines.push_back(line);
  return lines;
}

// ---- processes, as /proc shows them ----

struct ProcInfo {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgrp = 0;
  char state = '?';
};

inline std::optional<ProcInfo> proc_info(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
  const std::size_t close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat.substr(close + 1));
  ProcInfo info;
  info.pid = pid;
  if (!(rest >> info.state >> info.ppid >> info.pgrp)) return std::nullopt;
  return info;
}

inline std::vector<ProcInfo> all_processes() {
  std::vector<ProcInfo> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* entry = readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;
    if (auto info = proc_info(static_cast<pid_t>(pid))) out.push_back(*info);
  }
  closedir(proc);
  return out;
}

// The live (not zombie) children of `parent`.
inline std::vector<pid_t> live_children(pid_t parent) {
  std::vector<pid_t> out;
  for (const ProcInfo& p : all_processes())
    if (p.ppid == parent && p.state != 'Z') out.push_back(p.pid);
  return out;
}

// The live members of process group `group`.
inline std::vector<pid_t> live_group_members(pid_t group) {
  std::vector<pid_t> out;
  for (const ProcInfo& p : all_processes())
    if (p.pgrp == group && p.state != 'Z') out.push_back(p.pid);
  return out;
}

inline std::string command_line(pid_t pid) {
  std::string raw = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  for (char& c : raw)
    if (c == '\0') c = ' ';
  return raw;
}

// True once `pid` runs no more (gone, or a zombie nobody reaped yet: a container's init may
// never reap). Reaps it first if it is ours, as it is when we are its subreaper.
inline bool dead_within(pid_t pid, std::chrono::nanoseconds timeout) {
  return wait_until(
      [pid] {
        waitpid(pid, nullptr, WNOHANG);
        const auto info = proc_info(pid);
        return !info || info->state == 'Z' || info->state == 'X';
      },
      timeout);
}

// Makes this process the reaper of its orphaned descendants while it lives, so that the
// daemons of a dead `mstream run` come to us and can be seen gone.
class SubreaperScope {
 public:
  SubreaperScope() { prctl(PR_SET_CHILD_SUBREAPER, 1); }
  ~SubreaperScope() { prctl(PR_SET_CHILD_SUBREAPER, 0); }
  SubreaperScope(const SubreaperScope&) = delete;
  SubreaperScope& operator=(const SubreaperScope&) = delete;
};

// ---- a command that keeps running: a daemon (`mstream leader`, `mstream site`), or a run
// that a test watches ----

class Background {
 public:
  // Starts `mstream ARGS...` (run by `wrapper`, if given, as run_mstream's) with its output in
  // DIR/NAME.out and DIR/NAME.err, and waits at most `timeout` for its first line. Null if it
  // did not print one.
  static std::unique_ptr<Background> start(const TempDir& dir, const std::string& name,
                                           const std::vector<std::string>& args,
                                           std::chrono::nanoseconds timeout = 10s,
                                           const std::vector<std::string>& wrapper = {}) {
    ProcessOptions options;
    options.cwd = dir.path();
    options.stdout_path = dir.file(name + ".out");
    options.stderr_path = dir.file(name + ".err");
    std::vector<std::string> argv = wrapper;
    argv.push_back(mstream_binary());
    argv.insert(argv.end(), args.begin(), args.end());
    std::unique_ptr<Background> d(new Background(options.stdout_path, options.stderr_path));
    d->process_ = Process::start(argv, options);
    if (d->process_ == nullptr) return nullptr;
    if (!wait_until([&] { return contains(d->out(), "\n") || !d->process_->running(); }, timeout))
      return nullptr;
    if (!contains(d->out(), "\n")) return nullptr;
    return d;
  }

  Process& process() { return *process_; }
  pid_t pid() const { return process_->pid(); }
  std::string out() const { return read_file(out_path_); }
  std::string err() const { return read_file(err_path_); }
  std::string first_line() const { return split_lines(out()).at(0); }
  // Waits at most `timeout` for `text` to appear in its stdout.
  bool wait_for_output(const std::string& text, std::chrono::nanoseconds timeout) const {
    return wait_until([&] { return contains(out(), text); }, timeout);
  }
  // SIGTERM, then the exit code (std::nullopt if it did not end within `timeout`).
  std::optional<int> stop(std::chrono::nanoseconds timeout = 5s) {
    process_->signal(SIGTERM);
    return process_->wait(timeout);
  }

 private:
  Background(std::string out_path, std::string err_path)
      : out_path_(std::move(out_path)), err_path_(std::move(err_path)) {}
  std::string out_path_;
  std::string err_path_;
  std::unique_ptr<Process> process_;
};

// ---- a minimal JSON reader, for `mstream status --json` ----

struct Json;
using JsonArray = std::vector<Json>;
using JsonObject = std::map<std::string, Json>;

struct Json {
  std::variant<std::nullptr_t, bool, double, std::string, JsonArray, JsonObject> value;

  bool is_object() const { return std::holds_alternative<JsonObject>(value); }
  bool is_array() const { return std::holds_alternative<JsonArray>(value); }
  bool is_number() const { return std::holds_alternative<double>(value); }
  bool is_string() const { return std::holds_alternative<std::string>(value); }
  const JsonObject& object() const { return std::get<JsonObject>(value); }
  const JsonArray& array() const { return std::get<JsonArray>(value); }
  double number() const { return std::get<double>(value); }
  const std::string& string() const { return std::get<std::string>(value); }
  bool has(const std::string& key) const { return is_object() && object().count(key) != 0; }
  const Json& operator[](const std::string& key) const { return object().at(key); }
};

// Parses one JSON value that fills `text` (surrounding whitespace allowed); std::nullopt on
// any syntax error. Enough of JSON for our own output: \uXXXX escapes below 0x80 only.
class JsonParser {
 public:
  static std::optional<Json> parse(const std::string& text) {
    JsonParser p(text);
    std::optional<Json> v = p.value();
    p.skip_space();
    if (!v || p.at_ != text.size()) return std::nullopt;
    return v;
  }

 private:
  explicit JsonParser(const std::string& text) : text_(text) {}
  void skip_space() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
  }
  bool eat(char c) {
    skip_space();
    if (at_ < text_.size() && text_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  bool word(const std::string& w) {
    if (text_.compare(at_, w.size(), w) != 0) return false;
    at_ += w.size();
    return true;
  }
  std::optional<std::string> string_body() {
    std::string out;
    while (at_ < text_.size()) {
      const char c = text_[at_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) return std::nullopt;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_ >= text_.size()) return std::nullopt;
      const char e = text_[at_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          if (at_ + 4 > text_.size()) return std::nullopt;
          const long code = std::strtol(text_.substr(at_, 4).c_str(), nullptr, 16);
          at_ += 4;
          if (code >= 0x80) return std::nullopt;
          out += static_cast<char>(code);
          break;
        }
        default:
          return std::nullopt;
      }
    }
    return std::nullopt;
  }
  std::optional<Json> value() {
    if (++depth_ > 64) return std::nullopt;
    std::optional<Json> v = value_inner();
    --depth_;
    return v;
  }
  std::optional<Json> value_inner() {
    skip_space();
    if (at_ >= text_.size()) return std::nullopt;
    const char c = text_[at_];
    if (c == '{') {
      ++at_;
      JsonObject obj;
      if (eat('}')) return Json{obj};
      do {
        if (!eat('"')) return std::nullopt;
        auto key = string_body();
        if (!key || !eat(':')) return std::nullopt;
        auto v = value();
        if (!v) return std::nullopt;
        obj[*key] = std::move(*v);
      } while (eat(','));
      if (!eat('}')) return std::nullopt;
      return Json{obj};
    }
    if (c == '[') {
      ++at_;
      JsonArray arr;
      if (eat(']')) return Json{arr};
      do {
        auto v = value();
        if (!v) return std::nullopt;
        arr.push_back(std::move(*v));
      } while (eat(','));
      if (!eat(']')) return std::nullopt;
      return Json{arr};
    }
    if (c == '"') {
      ++at_;
      auto s = string_body();
      if (!s) return std::nullopt;
      return Json{*s};
    }
    if (word("true")) return Json{true};
    if (word("false")) return Json{false};
    if (word("null")) return Json{nullptr};
    const char* begin = text_.c_str() + at_;
    char* end = nullptr;
    const double d = std::strtod(begin, &end);
    if (end == begin) return std::nullopt;
    at_ += static_cast<std::size_t>(end - begin);
    return Json{d};
  }

  const std::string& text_;
  std::size_t at_ = 0;
  int depth_ = 0;
};

}  // namespace mstream::e2e
