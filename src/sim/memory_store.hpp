#pragma once
// MemoryStore: the simulator's proto::DurableStore, with runtime::SqliteStore's semantics (an
// atomic batch, records older by (epoch, version) than the stored one skipped, the newest per
// key). It plays a node's disk: the driver keeps one per node index and hands it to each
// process that node runs, so a restarted node finds what its crashed process committed.
//
// A fault hook, asked inside every put() before the commit, decides whether the node crashes
// at that point: before the commit (the batch is lost, as an unsynced write is) or right
// after it (the records are stored; the node dies before it can tell anyone). The store
// cannot stop its caller, so it only says what happened: put() then fails (lost) or succeeds
// (committed), and the driver must crash the node before anything the caller does next can
// leave it (SessionDriver::run_node: at the end of the step that called put()).
//
// Thread-safety: none; the thread that drives the simulation uses it.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "proto/durable_store.hpp"

namespace mstream::sim {

class MemoryStore final : public proto::DurableStore {
 public:
  enum class Fault : std::uint8_t {
    kNone,
    kCrashBeforeCommit,  // the batch is lost with the node
    kCrashAfterCommit,   // the batch is stored; the node's answers are lost with it
    // The batch is dropped, and put() says it was stored: a disk that lies about its sync.
    // No protocol can survive it; the checkers' tests use it to show they notice.
    kLieAboutCommit,
  };
  // Called with each batch before it is committed.
  using Hook = std::function<Fault(const std::vector<proto::StoredRecord>&)>;

  void set_hook(Hook hook) { hook_ = std::move(hook); }

  Status put(const std::vector<proto::StoredRecord>& batch) override;
  Result<std::optional<proto::StoredRecord>> get(std::uint64_t key) override;
  Result<std::vector<proto::StoredRecord>> scan() override;
  Status erase(std::uint64_t key) override;

  // Counts, for the run's summary.
  std::uint64_t commits() const { return commits_; }
  std::uint64_t skipped() const { return skipped_; }

 private:
  std::map<std::uint64_t, proto::StoredRecord> records_;
  Hook hook_;
  std::uint64_t commits_ = 0;
  std::uint64_t skipped_ = 0;
};

}  // namespace mstream::sim
