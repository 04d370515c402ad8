#pragma once
// A whole session in one test process, without a network or threads: the leader's process
// (LeaderNode: site 0 and the LeaderCore), sites 1..N and shells that come and go, each a
// proto::Node whose datagrams are handed straight to the node they are for, on a simulated
// clock. Handlers run inline (no executor), Tcl agents included. A shell is driven through the
// ShellApi the script commands use, whose waits run the whole session, so a test reads like a
// script: create, attach, append, move, destroy, leave.
//
// Unsecured, with failure detection off: nothing is lost, nobody is declared failed, and an
// idle shell stays a member until it leaves.
//
// Thread-safety: none; one test thread.

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "leader/leader_node.hpp"
#include "proto/joiner.hpp"
#include "site/shell_api.hpp"
#include "site/site_core.hpp"

namespace mstream::testing {

class MemorySession {
 public:
  struct Options {
    std::uint32_t sites = 3;
    // The leader's durable state (`mstream leader --state`), if any.
    std::shared_ptr<proto::DurableStore> leader_state;
    // Applied to the options of every node (site 0 and the shells included) before it starts.
    std::function<void(site::SiteOptions*)> site_options;
  };

  explicit MemorySession(Options options) : options_(std::move(options)) {
    leader::LeaderOptions lo;
    lo.failure_timeout = 0;
    lo.state = options_.leader_state;
    leader_ = std::make_unique<leader::LeaderNode>(node_options(0, false), lo);
    leader_->set_own_address("mem:0", 0);
    EXPECT_TRUE(leader_->open_state(now_).ok());
    nodes_[0] = leader_.get();
    for (std::uint32_t i = 0; i < options_.sites; ++i) {
      const proto::SiteId id = join(wire::JoinMessage::Role::kSite);
      sites_[id] = std::make_unique<site::SiteCore>(node_options(id, false));
      nodes_[id] = sites_[id].get();
      EXPECT_TRUE(run_until([&] { return sites_[id]->welcomed() && sites_[id]->controls_told(); }))
          << "site " << id << " was not welcomed";
    }
  }

  leader::LeaderNode& leader() { return *leader_; }
  site::SiteCore& site(proto::SiteId id) { return id == 0 ? leader_->site() : *sites_.at(id); }
  proto::Time now() const { return now_; }

  // A new shell joins; its API, valid until it leaves.
  site::ShellApi& join_shell() {
    const proto::SiteId id = join(wire::JoinMessage::Role::kShell);
    auto& s = shells_[id];
    s.core = std::make_unique<site::SiteCore>(node_options(id, true));
    nodes_[id] = s.core.get();
    s.api = std::make_unique<site::ShellApi>(
        s.core.get(),
        [this](const std::function<bool()>& done, std::chrono::nanoseconds) {
          return run_until(done) ? Status::ok_status()
                                 : Status::error(Status::Code::kUnavailable, "");
        },
        [](std::string_view) {}, std::chrono::seconds(60));
    EXPECT_TRUE(run_until([&] { return s.core->welcomed(); })) << "shell " << id;
    last_shell_ = id;
    return *s.api;
  }
  proto::SiteId last_shell() const { return last_shell_; }
  site::SiteCore& shell_core(proto::SiteId id) { return *shells_.at(id).core; }

  // Shell `id` says Leave and goes once the leader heard it.
  void leave_shell(proto::SiteId id) {
    Shell& s = shells_.at(id);
    s.api->leave();
    EXPECT_TRUE(run_until([&] {
      const auto& peers = leader_->leader().peers();
      auto p = peers.find(id);
      return p == peers.end() || !p->second.live;
    })) << "shell "
        << id << " did not leave";
    nodes_.erase(id);
    shells_.erase(id);
    // The leader's word of it reaches everyone.
    (void)run_until([] { return false; }, 200);
  }

  // Runs every node until done() or `rounds` rounds (a simulated millisecond each) passed.
  bool run_until(const std::function<bool()>& done, int rounds = 20000) {
    for (int r = 0; r < rounds; ++r) {
      if (done()) return true;
      round();
      now_ += proto::kMillisecond;
    }
    return done();
  }

 private:
  struct Shell {
    std::unique_ptr<site::SiteCore> core;
    std::unique_ptr<site::ShellApi> api;
  };

  site::SiteOptions node_options(proto::SiteId id, bool shell) const {
    site::SiteOptions o = site::SiteOptions::with_mtu(id, 1400, shell);
    o.keep_output = false;
    o.log_forwarded_errors = false;
    if (options_.site_options) options_.site_options(&o);
    return o;
  }

  proto::SiteId join(wire::JoinMessage::Role role) {
    const std::uint64_t nonce = ++nonce_;
    proto::Joiner joiner(nonce, role, nonce, std::nullopt);
    for (int attempt = 0; attempt < 4; ++attempt) {
      wire::Bytes reply;
      if (!leader_->on_join(joiner.request(), "mem:" + std::to_string(nonce), now_, &reply))
        continue;
      const proto::Joiner::Outcome out = joiner.on_reply(reply);
      if (out.kind == proto::Joiner::Outcome::Kind::kAccepted) return out.site;
    }
    ADD_FAILURE() << "the leader admitted nobody";
    return 0;
  }

  void round() {
    for (int again = 0; again < 8; ++again) {
      bool moved = false;
      // A step adds or removes no node: only join_shell() and leave_shell() do.
      for (auto& [id, node] : nodes_) {
        if (node->next_timeout() <= now_) node->on_timeout(now_);
        node->step(now_);
        while (node->poll_transmit(now_, &out_)) {
          moved = true;
          auto to = nodes_.find(out_.to);
          if (to != nodes_.end()) to->second->on_datagram(out_.bytes, now_);
        }
        moved = moved || node->has_work();
      }
      if (!moved) return;
    }
  }

  Options options_;
  proto::Time now_ = proto::kSecond;
  std::uint64_t nonce_ = 0;
  std::unique_ptr<leader::LeaderNode> leader_;
  std::map<proto::SiteId, std::unique_ptr<site::SiteCore>> sites_;
  std::map<proto::SiteId, Shell> shells_;
  std::map<proto::SiteId, proto::Node*> nodes_;
  proto::SiteId last_shell_ = 0;
  proto::OutDatagram out_;
};

}  // namespace mstream::testing
