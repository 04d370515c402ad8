#include "cli/session_client.hpp"

#include <tcl.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "runtime/secret_file.hpp"
#include "runtime/socket_address.hpp"
#include "tcl/tcl_host.hpp"

namespace mstream::cli {

using namespace std::chrono_literals;

std::string default_listen_for(const std::string& leader) {
  auto a = runtime::SocketAddress::parse(leader);
  return a.ok() && a->is_loopback() ? "127.0.0.1:0" : "0.0.0.0:0";
}

std::string default_session() {
  const char* s = std::getenv("MSTREAM_SESSION");
  return s && *s ? s : "127.0.0.1:7070";
}

void add_security_options(CLI::App* app, SecurityOptions* o, bool leader) {
  app->add_option("--secret-file", o->secret_file,
                  std::string("the session secret: whoever holds it may join the session, and "
                              "its traffic is authenticated and encrypted (default "
                              "$MSTREAM_SECRET_FILE, else ~/.mstream/secret") +
                      (leader ? ", made when there is none)" : ": copy the leader's)"));
  app->add_flag("--insecure", o->insecure,
                "no secret: anyone who can reach the session's ports may join it and read or "
                "forge its traffic (doc/security.md)");
}

namespace {

// The secret file's path, or why there is none; empty with --insecure.
Result<std::string> secret_path(const SecurityOptions& o) {
  if (o.insecure) {
    if (!o.secret_file.empty())
      return Status::error(Status::Code::kInvalidArgument,
                           "--insecure and --secret-file do not go together");
    return std::string();
  }
  const std::string path = o.secret_file.empty() ? runtime::default_secret_path() : o.secret_file;
  if (path.empty())
    return Status::error(Status::Code::kInvalidArgument,
                         "no session secret: neither --secret-file, $MSTREAM_SECRET_FILE nor $HOME "
                         "is set (or pass --insecure)");
  if (!wire::crypto_ready())
    return Status::error(Status::Code::kIoError, "libsodium could not be initialised");
  return path;
}

}  // namespace

Result<std::optional<runtime::SessionSecret>> session_secret(const SecurityOptions& o) {
  auto path = secret_path(o);
  if (!path.ok()) return path.status();
  if (path->empty()) return std::optional<runtime::SessionSecret>();
  auto secret = runtime::read_secret(*path);
  if (!secret.ok()) {
    if (secret.status().code() == Status::Code::kNotFound)
      return Status::error(Status::Code::kNotFound,
                           secret.status().message() +
                               ": copy the leader's there, name it with --secret-file, or pass "
                               "--insecure to join an unsecured session");
    return secret.status();
  }
  if (!secret->leader_public)
    return Status::error(Status::Code::kInvalidArgument,
                         "the session secret " + *path +
                             " has no leader-public-key line (it is older than the leader's key "
                             "pair): copy the leader's secret file here again");
  return std::optional<runtime::SessionSecret>(*secret);
}

Result<std::optional<runtime::LeaderSecret>> leader_secret(const SecurityOptions& o) {
  auto path = secret_path(o);
  if (!path.ok()) return path.status();
  if (path->empty()) return std::optional<runtime::LeaderSecret>();
  bool made_secret = false, made_pair = false;
  auto secret = runtime::read_or_make_leader_secret(*path, &made_secret, &made_pair);
  if (!secret.ok()) return secret.status();
  if (made_secret)
    std::fprintf(stderr,
                 "mstream: made a new session secret at %s (the leader's secret key beside it, "
                 "in %s); copy %s to the other machines of the session\n",
                 path->c_str(), runtime::leader_key_path(*path).c_str(), path->c_str());
  if (made_pair)
    std::fprintf(stderr,
                 "mstream: made the leader's key pair for the session secret at %s (its secret "
                 "key in %s) and added its public key to the secret file; copy %s to the other "
                 "machines of the session again\n",
                 path->c_str(), runtime::leader_key_path(*path).c_str(), path->c_str());
  return std::optional<runtime::LeaderSecret>(*secret);
}

Result<std::unique_ptr<SessionClient>> SessionClient::connect(
    const std::string& leader, std::chrono::nanoseconds timeout,
    const std::optional<runtime::SessionSecret>& secret) {
  auto loop = runtime::NodeLoop::open({.listen = default_listen_for(leader)});
  if (!loop.ok()) return loop.status();
  auto joined = (*loop)->join(leader, wire::JoinMessage::Role::kShell, timeout,
                              runtime::join_secrets(secret));
  if (!joined.ok()) return joined.status();
  const proto::SiteId* id = &joined->site;
  std::unique_ptr<SessionClient> c(new SessionClient());
  c->loop_ = std::move(*loop);
  site::SiteOptions so = site::SiteOptions::with_mtu(*id, c->loop_->mtu(), true);
  so.leader_key = joined->leader_key;
  c->core_ = std::make_unique<site::SiteCore>(so);
  c->loop_->attach(c->core_.get());
  c->write_ = [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  };
  SessionClient* self = c.get();
  c->api_ = std::make_unique<site::ShellApi>(
      c->core_.get(),
      [self](const std::function<bool()>& done, std::chrono::nanoseconds t) {
        return self->pump(done, t);
      },
      [self](std::string_view text) { self->write_(text); }, 60s);
  if (!c->pump([&] { return c->core_->welcomed(); }, timeout).ok())
    return Status::error(Status::Code::kUnavailable,
                         "the leader at " + leader + " sent no directory");
  // The shell's loop runs only while a command waits; between commands (a script in `after`,
  // computing, or a person thinking) this keeps the leader hearing from it.
  const proto::Time failure_timeout = c->core_->failure_timeout();
  if (failure_timeout > 0 && c->loop_->leader_address())
    c->keepalive_.start(
        c->loop_->fd(), *c->loop_->leader_address(), *id, 0,
        std::chrono::nanoseconds(site::SiteCore::keepalive_interval(failure_timeout)),
        joined->leader_key, c->core_->transport().seals_aegis());
  return c;
}

SessionClient::~SessionClient() {
  if (interp_) Tcl_DeleteInterp(interp_);
}

Status SessionClient::pump(const std::function<bool()>& done, std::chrono::nanoseconds timeout) {
  std::string line;
  bool ok = loop_->run_until(
      [&] {
        while (core_->poll_error(&line)) std::fprintf(stderr, "mstream: %s\n", line.c_str());
        if (watch_ && watch_error_.ok()) watch_error_ = watch_();
        return !watch_error_.ok() || core_->lost_session() || done();
      },
      timeout);
  if (!watch_error_.ok()) return watch_error_;
  if (core_->lost_session())
    return Status::error(Status::Code::kUnavailable,
                         "lost the session: no word from the leader for the failure timeout");
  if (!ok) return Status::error(Status::Code::kUnavailable, "");
  return Status::ok_status();
}

Result<Tcl_Interp*> SessionClient::interpreter() {
  if (interp_) return interp_;
  Tcl_FindExecutable(nullptr);  // Tcl's library and encodings are found from it
  interp_ = Tcl_CreateInterp();
  // The library scripts (clock, auto_load, ...) make a shell script feel like tclsh; their
  // absence is not fatal.
  (void)Tcl_Init(interp_);
  Status st = tcl::install_commands(interp_, api_.get());
  if (!st.ok()) return st;
  return interp_;
}

}  // namespace mstream::cli
