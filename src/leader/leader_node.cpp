#include "leader/leader_node.hpp"

namespace mstream::leader {

LeaderNode::LeaderNode(site::SiteOptions site_options, LeaderOptions leader_options)
    : site_([&] {
        site_options.self = 0;
        site_options.shell = false;
        return site_options;
      }()),
      leader_(
          leader_options,
          [this](SiteId to, const wire::ControlMessage& m) { site_.send_from_leader(to, m); },
          [this, timeout = leader_options.failure_timeout](SiteId site) {
            site_.admit(site);
            // The leader keeps every member hearing from it, so that one it declared failed
            // (and no longer pings) notices within the timeout.
            if (timeout > 0) site_.set_keepalive(site, site::SiteCore::keepalive_interval(timeout));
          }) {
  leader_.set_last_heard([this](SiteId site) { return site_.last_heard(site); });
  site_.set_leader_inbox([this](StreamId from, wire::ByteView payload) {
    if (!site::is_control(from)) return;
    auto m = wire::decode_control(payload);
    if (!m.ok()) return;  // counted by nobody: only admitted sites reach this stream
    leader_.on_message(site::control_site(from), *m, now_);
  });
  // Site 0 learns the directory like any site, from the leader.
  wire::Welcome w;
  for (const auto& [id, p] : leader_.peers()) w.peers.push_back(p);
  site_.send_from_leader(0, w);
}

bool LeaderNode::on_join(wire::ByteView bytes, const std::string& from, Time now,
                         wire::Bytes* reply) {
  now_ = now;
  auto m = wire::decode_join(bytes);
  if (!m.ok()) return false;
  wire::JoinMessage answer;
  if (!leader_.on_join(*m, from, &answer, now)) return false;
  wire::encode_join(answer, reply);
  return true;
}

void LeaderNode::step(Time now) {
  now_ = now;
  site_.step(now);
}

Time LeaderNode::next_timeout() const {
  return std::min(site_.next_timeout(), leader_.next_timeout());
}

void LeaderNode::on_timeout(Time now) {
  now_ = now;
  site_.on_timeout(now);
  leader_.on_timeout(now);
}

std::optional<std::string> LeaderNode::peer_address(SiteId site) const {
  auto it = leader_.peers().find(site);
  if (it == leader_.peers().end() || it->second.address.empty()) return std::nullopt;
  return it->second.address;
}

}  // namespace mstream::leader
