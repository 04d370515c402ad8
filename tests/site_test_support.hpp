#pragma once
// SiteCores wired to each other in memory, for tests of one site's logic against others.

#include <map>
#include <memory>

#include "site/site_core.hpp"

namespace mstream::site {

// Sites wired to each other in memory: every datagram reaches the site it is for.
class Sites {
 public:
  // rules_off: SiteOptions::sender_rules_off, for every site. An id from kFirstShellId on is
  // a shell's.
  explicit Sites(std::initializer_list<SiteId> ids, std::uint32_t rules_off = 0) {
    for (SiteId id : ids) {
      SiteOptions o = SiteOptions::with_mtu(id, 1400, is_shell(id));
      o.sender_rules_off = rules_off;
      cores_[id] = std::make_unique<SiteCore>(o);
    }
    for (auto& [id, core] : cores_)
      for (auto& [other, unused] : cores_)
        if (other != id) core->admit(other);
  }
  SiteCore& operator[](SiteId id) { return *cores_.at(id); }
  void pump() {
    for (int round = 0; round < 100; ++round) {
      bool moved = false;
      for (auto& [id, core] : cores_) {
        if (core->next_timeout() <= now_) core->on_timeout(now_);
        core->step(now_);
        proto::OutDatagram out;
        while (core->poll_transmit(now_, &out)) {
          auto to = cores_.find(out.to);
          if (to == cores_.end()) continue;
          to->second->on_datagram(out.bytes, now_);
          moved = true;
        }
      }
      now_ += proto::kMillisecond;
      if (!moved && round > 40) return;  // retries come after 20 ms
    }
  }

 private:
  std::map<SiteId, std::unique_ptr<SiteCore>> cores_;
  proto::Time now_ = 0;
};

}  // namespace mstream::site
