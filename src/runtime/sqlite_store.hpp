#pragma once
// SqliteStore: proto::DurableStore in one SQLite database file, in WAL mode with
// synchronous=FULL: every put() is one transaction whose commit fsyncs the write-ahead log,
// so a record put() returned for survives a crash of the process and of the machine. The
// cost is one fsync per put(), which is why sites batch their checkpoints (doc/session.md
// "Durable streams").
//
// Thread-safety: none; one thread uses a store.

#include <memory>
#include <string>

#include "proto/durable_store.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace mstream::runtime {

class SqliteStore final : public proto::DurableStore {
 public:
  // Opens (creating if needed) the database at `path`. Errors: kIoError with SQLite's message.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Status put(const std::vector<proto::StoredRecord>& batch) override;
  Result<std::optional<proto::StoredRecord>> get(std::uint64_t key) override;
  Result<std::vector<proto::StoredRecord>> scan() override;
  Status erase(std::uint64_t key) override;

  const std::string& path() const { return path_; }

 private:
  SqliteStore() = default;
  Status exec(const char* sql);
  Status error(const char* what) const;

  std::string path_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* upsert_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
  sqlite3_stmt* delete_ = nullptr;
  sqlite3_stmt* delete_older_ = nullptr;  // an empty record's erase
  sqlite3_stmt* scan_ = nullptr;
};

}  // namespace mstream::runtime
