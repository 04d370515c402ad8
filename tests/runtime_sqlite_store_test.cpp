// The SQLite durable store (runtime::SqliteStore): what put() returned for is there after the
// process dies without closing it, older records never replace newer ones, a batch is all or
// nothing, and a file that is not a database is refused at open with a clear error.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "runtime/sqlite_store.hpp"

namespace mstream::runtime {
namespace {

class Store : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mstream-store-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string db() const { return dir_ + "/store.db"; }

  static proto::StoredRecord record(std::uint64_t key, std::uint64_t epoch, std::uint64_t version,
                                    const std::string& value) {
    return {key, epoch, version, wire::Bytes(value.begin(), value.end())};
  }
  static std::string value_of(SqliteStore& s, std::uint64_t key) {
    auto r = s.get(key);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok() || !r->has_value()) return "<none>";
    return std::string((*r)->value.begin(), (*r)->value.end());
  }

  std::string dir_;
};

TEST_F(Store, KeepsTheNewestRecordPerKey) {
  auto s = SqliteStore::open(db());
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(value_of(**s, 7), "<none>");
  ASSERT_TRUE((*s)->put({record(7, 1, 1, "a"), record(8, 3, 1, "x")}).ok());
  ASSERT_TRUE((*s)->put({record(7, 1, 2, "b")}).ok());
  EXPECT_EQ(value_of(**s, 7), "b");
  // A late checkpoint from a site the stream left: older epoch, or same epoch older version.
  ASSERT_TRUE((*s)->put({record(7, 0, 9, "old epoch"), record(7, 1, 1, "old version")}).ok());
  EXPECT_EQ(value_of(**s, 7), "b");
  ASSERT_TRUE((*s)->put({record(7, 2, 1, "moved")}).ok());
  EXPECT_EQ(value_of(**s, 7), "moved");
  auto r = (*s)->get(7);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->epoch, 2u);
  EXPECT_EQ((*r)->version, 1u);
  ASSERT_TRUE((*s)->erase(7).ok());
  EXPECT_EQ(value_of(**s, 7), "<none>");
  EXPECT_EQ(value_of(**s, 8), "x");
}

TEST_F(Store, ScanReturnsTheNewestRecordOfEveryKey) {
  auto s = SqliteStore::open(db());
  ASSERT_TRUE(s.ok()) << s.status().message();
  auto empty = (*s)->scan();
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE((*s)->put({record(3, 1, 1, "c"), record(1ull << 63, 1, 1, "high")}).ok());
  ASSERT_TRUE((*s)->put({record(3, 1, 2, "c2"), record(2, 4, 1, "b")}).ok());
  auto all = (*s)->scan();
  ASSERT_TRUE(all.ok()) << all.status().message();
  std::map<std::uint64_t, std::string> got;
  for (const auto& r : *all) got[r.key] = std::string(r.value.begin(), r.value.end());
  EXPECT_EQ(got, (std::map<std::uint64_t, std::string>{{2, "b"}, {3, "c2"}, {1ull << 63, "high"}}));
}

TEST_F(Store, LargeKeysRoundTrip) {
  auto s = SqliteStore::open(db());
  ASSERT_TRUE(s.ok()) << s.status().message();
  const std::uint64_t key = 0xFFFFFFFFFFFFFFF0ull;
  ASSERT_TRUE((*s)->put({record(key, 5, 1, "v")}).ok());
  auto r = (*s)->get(key);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->key, key);
}

// An empty record erases its key, so that what its owner forgot leaves nothing in the file;
// an older one (a late checkpoint) erases nothing, as it would replace nothing.
TEST_F(Store, AnEmptyRecordErasesItsKeyUnlessANewerOneIsStored) {
  auto s = SqliteStore::open(db());
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_TRUE((*s)->put({record(1, 2, 5, "a"), record(2, 2, 5, "b")}).ok());
  ASSERT_TRUE((*s)->put({record(1, 2, 6, ""), record(2, 2, 4, "")}).ok());
  auto one = (*s)->get(1);
  ASSERT_TRUE(one.ok());
  EXPECT_FALSE(one->has_value());
  auto two = (*s)->get(2);
  ASSERT_TRUE(two.ok() && two->has_value());
  EXPECT_EQ(std::string((*two)->value.begin(), (*two)->value.end()), "b");
  ASSERT_TRUE((*s)->put({record(3, 1, 1, "")}).ok());  // nothing to erase
  auto all = (*s)->scan();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(Store, WhatWasPutSurvivesAProcessThatDiesWithoutClosingIt) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto s = SqliteStore::open(db());
    if (!s.ok() || !(*s)->put({record(1, 1, 1, "kept")}).ok()) ::_exit(1);
    ::_exit(0);  // no destructor, no close: as kill -9 after put() returned
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto s = SqliteStore::open(db());
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(value_of(**s, 1), "kept");
}

TEST_F(Store, AFileThatIsNotADatabaseIsRefusedAtOpen) {
  {
    std::ofstream f(db());
    f << std::string(8192, 'z');
  }
  auto s = SqliteStore::open(db());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kIoError);
  EXPECT_NE(s.status().message().find(db()), std::string::npos) << s.status().message();
}

TEST_F(Store, ADirectoryThatDoesNotExistIsRefusedAtOpen) {
  auto s = SqliteStore::open(dir_ + "/missing/store.db");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kIoError);
}

}  // namespace
}  // namespace mstream::runtime
