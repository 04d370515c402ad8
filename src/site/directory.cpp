#include "site/directory.hpp"

#include <algorithm>
#include <charconv>

#include "site/ids.hpp"

namespace mstream::site {

bool Directory::apply(const wire::StreamRecord& rec, const std::vector<wire::InChannel>& final_in) {
  auto it = by_id_.find(rec.id);
  if (it != by_id_.end() && it->second.epoch > rec.epoch) return false;
  // A word on a destroyed stream (a move's target answers on a channel of its own, which may
  // come after the leader's word of the destroy) must not bring it back.
  if (it == by_id_.end() && destroyed(rec.id)) return false;
  if (rec.site == wire::kNoSite) {
    if (!destroyed_.emplace(rec.id, final_in).second) return false;
    destroyed_order_.push_back(rec.id);
    trim_destroyed();
    if (it == by_id_.end()) return true;
    auto n = by_name_.find(it->second.name);
    if (n != by_name_.end() && n->second == rec.id) by_name_.erase(n);
    by_id_.erase(it);
    return true;
  }
  by_id_[rec.id] = rec;
  by_name_[rec.name] = rec.id;
  return true;
}

void Directory::settle(std::uint64_t below) {
  if (below <= settled_below_) return;
  settled_below_ = below;
  trim_destroyed();
}

// Those below the watermark need no record once kKeptDestroyed newer ones are kept; one above
// it (destroyed while an older create was in flight) waits for the watermark to pass it.
void Directory::trim_destroyed() {
  std::size_t looked = 0;
  while (destroyed_order_.size() > kept_destroyed_ && looked++ < destroyed_order_.size()) {
    const std::uint64_t id = destroyed_order_.front();
    destroyed_order_.pop_front();
    if (id < settled_below_)
      destroyed_.erase(id);
    else
      destroyed_order_.push_back(id);
  }
}

void Directory::apply(const wire::PeerRecord& peer) {
  if (peer.shell) shells_below_ = std::max(shells_below_, peer.site + 1);
  if (peer.shell && !peer.live) {
    peers_.erase(peer.site);
    return;
  }
  peers_[peer.site] = peer;
}

bool Directory::gone(std::uint32_t site) const {
  auto it = peers_.find(site);
  if (it != peers_.end()) return !it->second.live;
  return site >= kFirstShellId && site < shells_below_;
}

const wire::StreamRecord* Directory::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : find(it->second);
}

const wire::StreamRecord* Directory::find(std::uint64_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

const wire::PeerRecord* Directory::peer(std::uint32_t site) const {
  auto it = peers_.find(site);
  return it == peers_.end() ? nullptr : &it->second;
}

}  // namespace mstream::site

namespace mstream::site {

std::uint64_t Directory::final_consumed(std::uint64_t id, std::uint64_t from) const {
  auto it = destroyed_.find(id);
  if (it == destroyed_.end()) return 0;
  for (const auto& in : it->second)
    if (in.from == from) return in.consumed_up_to;
  return 0;
}

namespace {
constexpr std::string_view kSystemPrefix = "/system/";
constexpr std::string_view kSystemSitePrefix = "/system/site/";

std::string system_name(tcl::SiteNumber site) {
  return std::string(kSystemSitePrefix) + std::to_string(site);
}

}  // namespace

Status Directory::no_such_stream(const std::string& name) {
  return Status::error(Status::Code::kNotFound, "no such stream \"" + name + "\"");
}

Status Directory::check_user_stream(const std::string& name) {
  if (name.rfind(kSystemPrefix, 0) != 0) return Status::ok_status();
  return Status::error(Status::Code::kPermissionDenied,
                       "permission denied: \"" + name + "\" is a system stream");
}

std::optional<tcl::SiteNumber> Directory::system_site(const std::string& name) const {
  if (name.rfind(kSystemSitePrefix, 0) != 0) return std::nullopt;
  const std::string_view digits = std::string_view(name).substr(kSystemSitePrefix.size());
  tcl::SiteNumber site = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), site);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() ||
      system_name(site) != name)
    return std::nullopt;
  const wire::PeerRecord* p = peer(site);
  if (!p || !p->live || p->shell) return std::nullopt;
  return site;
}

bool Directory::exists(const std::string& name) const {
  return find(name) != nullptr || system_site(name).has_value();
}

Result<tcl::SiteNumber> Directory::location_of(const std::string& name) const {
  if (auto site = system_site(name)) return *site;
  const wire::StreamRecord* rec = find(name);
  if (!rec) return no_such_stream(name);
  return rec->site;
}

Result<tcl::SiteNumber> Directory::creator_of(const std::string& name) const {
  if (auto site = system_site(name)) return *site;
  const wire::StreamRecord* rec = find(name);
  if (!rec) return no_such_stream(name);
  return rec->creator;
}

std::vector<tcl::StreamInfo> Directory::stream_list() const {
  std::vector<tcl::StreamInfo> out;
  for (const auto& [name, id] : by_name_) {
    const wire::StreamRecord* rec = find(id);
    if (rec) out.push_back({name, rec->site});
  }
  for (tcl::SiteNumber site : live_sites()) out.push_back({system_name(site), site});
  std::sort(out.begin(), out.end(),
            [](const tcl::StreamInfo& a, const tcl::StreamInfo& b) { return a.name < b.name; });
  return out;
}

std::vector<tcl::SiteNumber> Directory::live_sites() const {
  std::vector<tcl::SiteNumber> out;
  for (const auto& [id, p] : peers_)
    if (p.live && !p.shell) out.push_back(id);
  return out;
}

std::vector<tcl::PeerInfo> Directory::peer_list() const {
  std::vector<tcl::PeerInfo> out;
  for (const auto& [id, p] : peers_)
    if (!p.shell) out.push_back({id, p.address, p.live != 0});
  return out;
}

}  // namespace mstream::site
