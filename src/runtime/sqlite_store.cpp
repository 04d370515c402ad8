#include "runtime/sqlite_store.hpp"

#include <sqlite3.h>

#include <limits>

namespace mstream::runtime {
namespace {

// SQLite integers are signed 64-bit: keys, epochs and versions are stored as their bit
// patterns, so the full unsigned range round-trips. Comparisons of epochs and versions in SQL
// would then be wrong above 2^63, which no stream reaches (one per move).
sqlite3_int64 to_sql(std::uint64_t v) { return static_cast<sqlite3_int64>(v); }
std::uint64_t from_sql(sqlite3_int64 v) { return static_cast<std::uint64_t>(v); }

// The row a SELECT of (epoch, version, value) starting at column `first` stands on.
proto::StoredRecord read_row(sqlite3_stmt* st, std::uint64_t key, int first) {
  proto::StoredRecord r;
  r.key = key;
  r.epoch = from_sql(sqlite3_column_int64(st, first));
  r.version = from_sql(sqlite3_column_int64(st, first + 1));
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(st, first + 2));
  const int n = sqlite3_column_bytes(st, first + 2);
  if (p && n > 0) r.value.assign(p, p + n);
  return r;
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  std::unique_ptr<SqliteStore> s(new SqliteStore());
  s->path_ = path;
  if (sqlite3_open_v2(path.c_str(), &s->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK)
    return s->error("open");
  // A corrupt or locked file must fail here, at startup, and not at the first checkpoint.
  (void)sqlite3_busy_timeout(s->db_, 2000);
  if (Status st = s->exec("PRAGMA journal_mode=WAL"); !st.ok()) return st;
  // FULL: the WAL is fsynced at every commit, so an acknowledged checkpoint survives a power
  // loss too (NORMAL would survive a process crash only).
  if (Status st = s->exec("PRAGMA synchronous=FULL"); !st.ok()) return st;
  if (Status st = s->exec("CREATE TABLE IF NOT EXISTS records ("
                          " key INTEGER PRIMARY KEY, epoch INTEGER NOT NULL,"
                          " version INTEGER NOT NULL, value BLOB NOT NULL)");
      !st.ok())
    return st;
  if (sqlite3_prepare_v2(s->db_,
                         "INSERT INTO records (key, epoch, version, value) VALUES (?1, ?2, ?3, ?4)"
                         " ON CONFLICT(key) DO UPDATE SET epoch = excluded.epoch,"
                         " version = excluded.version, value = excluded.value"
                         " WHERE excluded.epoch > records.epoch OR (excluded.epoch = records.epoch"
                         " AND excluded.version > records.version)",
                         -1, &s->upsert_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(s->db_, "SELECT epoch, version, value FROM records WHERE key = ?1", -1,
                         &s->select_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(s->db_, "DELETE FROM records WHERE key = ?1", -1, &s->delete_, nullptr) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(s->db_,
                         "DELETE FROM records WHERE key = ?1 AND (epoch < ?2 OR (epoch = ?2"
                         " AND version < ?3))",
                         -1, &s->delete_older_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(s->db_, "SELECT key, epoch, version, value FROM records ORDER BY key", -1,
                         &s->scan_, nullptr) != SQLITE_OK)
    return s->error("prepare");
  return s;
}

SqliteStore::~SqliteStore() {
  sqlite3_finalize(upsert_);
  sqlite3_finalize(delete_older_);
  sqlite3_finalize(select_);
  sqlite3_finalize(delete_);
  sqlite3_finalize(scan_);
  sqlite3_close(db_);
}

Status SqliteStore::error(const char* what) const {
  return Status::error(Status::Code::kIoError, std::string("durable store ") + path_ + ": " + what +
                                                   ": " +
                                                   (db_ ? sqlite3_errmsg(db_) : "out of memory"));
}

Status SqliteStore::exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) == SQLITE_OK) return Status::ok_status();
  std::string text = message ? message : sqlite3_errmsg(db_);
  sqlite3_free(message);
  return Status::error(Status::Code::kIoError, "durable store " + path_ + ": " + text);
}

Status SqliteStore::put(const std::vector<proto::StoredRecord>& batch) {
  if (batch.empty()) return Status::ok_status();
  if (Status st = exec("BEGIN IMMEDIATE"); !st.ok()) return st;
  for (const proto::StoredRecord& r : batch) {
    if (r.value.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      (void)exec("ROLLBACK");
      return Status::error(Status::Code::kTooLarge, "durable store: record too large");
    }
    // An empty value erases its key (proto::DurableStore::put), under the same age rule.
    sqlite3_stmt* stmt = r.value.empty() ? delete_older_ : upsert_;
    sqlite3_reset(stmt);
    sqlite3_bind_int64(stmt, 1, to_sql(r.key));
    sqlite3_bind_int64(stmt, 2, to_sql(r.epoch));
    sqlite3_bind_int64(stmt, 3, to_sql(r.version));
    if (!r.value.empty())
      sqlite3_bind_blob(stmt, 4, r.value.data(), static_cast<int>(r.value.size()), SQLITE_STATIC);
    const int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc != SQLITE_DONE) {
      Status st = error("write");
      (void)exec("ROLLBACK");
      return st;
    }
  }
  return exec("COMMIT");
}

Result<std::optional<proto::StoredRecord>> SqliteStore::get(std::uint64_t key) {
  sqlite3_reset(select_);
  sqlite3_bind_int64(select_, 1, to_sql(key));
  const int rc = sqlite3_step(select_);
  if (rc == SQLITE_DONE) {
    sqlite3_reset(select_);
    return std::optional<proto::StoredRecord>();
  }
  if (rc != SQLITE_ROW) {
    Status st = error("read");
    sqlite3_reset(select_);
    return st;
  }
  proto::StoredRecord r = read_row(select_, key, 0);
  sqlite3_reset(select_);
  return std::optional<proto::StoredRecord>(std::move(r));
}

Result<std::vector<proto::StoredRecord>> SqliteStore::scan() {
  std::vector<proto::StoredRecord> out;
  sqlite3_reset(scan_);
  int rc;
  while ((rc = sqlite3_step(scan_)) == SQLITE_ROW)
    out.push_back(read_row(scan_, from_sql(sqlite3_column_int64(scan_, 0)), 1));
  Status st = rc == SQLITE_DONE ? Status::ok_status() : error("read");
  sqlite3_reset(scan_);
  if (!st.ok()) return st;
  return out;
}

Status SqliteStore::erase(std::uint64_t key) {
  sqlite3_reset(delete_);
  sqlite3_bind_int64(delete_, 1, to_sql(key));
  const int rc = sqlite3_step(delete_);
  sqlite3_reset(delete_);
  return rc == SQLITE_DONE ? Status::ok_status() : error("erase");
}

}  // namespace mstream::runtime
