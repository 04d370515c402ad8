#include "sim/memory_store.hpp"

namespace mstream::sim {

Status MemoryStore::put(const std::vector<proto::StoredRecord>& batch) {
  const Fault fault = hook_ ? hook_(batch) : Fault::kNone;
  if (fault == Fault::kCrashBeforeCommit)
    return Status::error(Status::Code::kUnavailable, "the node crashed before the commit");
  if (fault == Fault::kLieAboutCommit) return Status::ok_status();
  ++commits_;
  for (const proto::StoredRecord& r : batch) {
    auto it = records_.find(r.key);
    // As SqliteStore's upsert: only a strictly newer (epoch, version) replaces, in batch order.
    if (it != records_.end() && (r.epoch < it->second.epoch || (r.epoch == it->second.epoch &&
                                                                r.version <= it->second.version))) {
      ++skipped_;
      continue;
    }
    if (r.value.empty()) {
      if (it != records_.end()) records_.erase(it);
      continue;
    }
    records_[r.key] = r;
  }
  return Status::ok_status();
}

Result<std::optional<proto::StoredRecord>> MemoryStore::get(std::uint64_t key) {
  auto it = records_.find(key);
  if (it == records_.end()) return std::optional<proto::StoredRecord>();
  return std::optional<proto::StoredRecord>(it->second);
}

Result<std::vector<proto::StoredRecord>> MemoryStore::scan() {
  std::vector<proto::StoredRecord> out;
  out.reserve(records_.size());
  for (const auto& [key, r] : records_) out.push_back(r);
  return out;
}

Status MemoryStore::erase(std::uint64_t key) {
  records_.erase(key);
  return Status::ok_status();
}

}  // namespace mstream::sim
