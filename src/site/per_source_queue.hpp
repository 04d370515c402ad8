#pragma once
// What members sent that waits for the leader's word (an Arrive before its Expect, a
// checkpoint before the move it follows), bounded per sender: one member's forgeries never
// push out another's real message, and the sender's oldest goes first.

#include <algorithm>
#include <cstddef>
#include <deque>
#include <utility>

#include "proto/types.hpp"

namespace mstream::site {

// Appends {from, v} to *q; if `from` already has `most` waiting, its oldest is handed to
// evict(from, oldest) and dropped first.
template <class T, class Evict>
void push_per_source(std::deque<std::pair<proto::SiteId, T>>* q, proto::SiteId from, T v,
                     std::size_t most, Evict evict) {
  const auto mine = [from](const auto& w) { return w.first == from; };
  if (static_cast<std::size_t>(std::count_if(q->begin(), q->end(), mine)) >= most) {
    auto oldest = std::find_if(q->begin(), q->end(), mine);
    evict(from, oldest->second);
    q->erase(oldest);
  }
  q->emplace_back(from, std::move(v));
}

}  // namespace mstream::site
