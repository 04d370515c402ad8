// What a site forgets of the streams and shells that are gone, and when (doc/session.md "What
// is forgotten"): a session that runs for months with temporary streams and shells that come
// and go must not grow with them.
#include "site/site_core.hpp"

namespace mstream::site {

std::vector<StreamId> SiteCore::hosted_ids() const {
  std::vector<StreamId> ids;
  ids.reserve(hosted_.size());
  for (const auto& [id, h] : hosted_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

SiteSizes SiteCore::sizes() const {
  SiteSizes s;
  s.hosted = hosted_.size();
  s.code = code_.size();
  s.loaded = std::max(loaded_.size(), initial_briefcases_.size());
  for (const auto& lane : lanes_) s.sandboxes += lane->runner().sandbox_count();
  s.directory_streams = view_->directory.names().size();
  s.directory_peers = view_->directory.peer_record_count();
  s.destroyed_records = view_->directory.destroyed_record_count();
  s.sender_pins = transport_.sender_pin_count();
  s.send_channels = transport_.send_channel_count();
  s.recv_channels = transport_.recv_channel_count();
  s.shell_counts = counters_.consumed_from_shell.size();
  s.per_stream = expected_.size() + opened_.size() + opening_.size() + open_denied_.size() +
                 senders_to_.size() + watching_.size() + retry_at_.size() + previous_host_.size() +
                 sync_results_.size() + overflow_.size() + open_requests_.size() + holds_.size() +
                 refused_arrivals_.size();
  return s;
}

}  // namespace mstream::site
