#pragma once
// DurableStore: the part of the environment that survives a crash (DESIGN.md "Architecture":
// the cores reach the world only through the environment). A failure manager keeps the
// checkpoints of the durable streams it manages here, one record per stream, so that it can
// recover one whose site failed (doc/session.md "Durable streams"). The real one is SQLite
// (runtime::SqliteStore); the simulator's lives in memory and can lose what was not synced.
//
// Thread-safety: none; the thread that drives the site uses it.

#include <cstdint>
#include <optional>
#include <vector>

#include "mstream/status.hpp"
#include "wire/codec.hpp"

namespace mstream::proto {

struct StoredRecord {
  std::uint64_t key = 0;      // the stream's id
  std::uint64_t epoch = 0;    // the stream's epoch when the record was taken
  std::uint64_t version = 0;  // grows with every record of one epoch
  wire::Bytes value;
};

class DurableStore {
 public:
  virtual ~DurableStore() = default;
  // Writes the records as one atomic commit: all or none. When it returns ok, they survive a
  // crash of the process (and, as far as the implementation's sync policy says, of the
  // machine). A record older (epoch, then version) than the one stored for its key is
  // skipped: checkpoints of a stream that moved may arrive late from the site it left. A
  // record with an empty value erases its key (unless a newer record is stored for it): what
  // is gone leaves nothing behind, so a store does not grow with what its owner forgot.
  virtual Status put(const std::vector<StoredRecord>& batch) = 0;
  // The newest record stored for `key`, if any.
  virtual Result<std::optional<StoredRecord>> get(std::uint64_t key) = 0;
  // Every record stored, in no promised order (a restarted leader reloads its state so).
  virtual Result<std::vector<StoredRecord>> scan() = 0;
  virtual Status erase(std::uint64_t key) = 0;
};

}  // namespace mstream::proto
