#pragma once
// An agent's initialization on a lane, shared by SiteCore's attaches and arrivals
// (site_core.cpp) and its controllers (policy.cpp). Internal to the site layer.

#include <cstdint>
#include <string>

#include "site/lane.hpp"
#include "site/site_core.hpp"

namespace mstream::site {

// An agent's first visit to a site: its initialization runs on its lane.
struct Loading {
  std::uint64_t agent = 0;
  wire::Code code;
  HandlerRun run;
  Status status;
  std::string error_info;
  bool has_append = false;
  std::string initial;  // the briefcase as the initialization left it
};

inline void load_on(Lane& lane, Loading& l) {
  l.status = lane.with(
      &l.run, [&](AgentRunner& runner) { return runner.load(l.code, l.run.ctx, &l.error_info); });
  if (!l.status.ok()) return;
  l.has_append = lane.runner().has_handler(l.agent, tcl::Event::kAppend);
  l.initial = lane.runner().save_briefcase(l.agent);
}

}  // namespace mstream::site
