// InstallCapture / UninstallCapture on real SQLite files.
#include "capture/installer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <sstream>

#include "capture/journal_reader.h"
#include "capture/sqlite_db.h"
#include "tests/capture/capture_test_util.h"
#include "tests/test_support.h"

namespace sluice {
namespace {

using testing::AppDb;
using testing::OptionsFor;

// 8-4-4-4-12 lowercase hex, version 4, RFC 4122 variant.
bool IsUuidV4(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (s[i] == '-')) return false;
    if (!dash && !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
    if (!dash && std::isupper(static_cast<unsigned char>(s[i]))) return false;
  }
  return s[14] == '4' && std::string("89ab").find(s[19]) != std::string::npos;
}

class InstallerTest : public ::testing::Test {
 protected:
  std::string MakeDb(const std::string& sql, bool wal = true) {
    AppDb app(path_);
    if (wal) app.Exec("PRAGMA journal_mode=WAL");
    app.Exec(sql);
    return path_;
  }
  int64_t Count(const std::string& sql) {
    AppDb app(path_);
    return std::stoll(app.Scalar(sql));
  }
  testing::TempDir dir_;
  std::string path_ = dir_.file("app.db");
};

TEST_F(InstallerTest, OpenWebuiTwiceIsIdempotent) {
  MakeDb(testing::OpenWebuiSchema(), /*wal=*/false);  // Open WebUI runs journal_mode=DELETE
  Result<InstallReport> r = InstallCapture(OptionsFor(path_));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->switched_to_wal);
  EXPECT_TRUE(IsUuidV4(r->source_id)) << r->source_id;
  EXPECT_EQ(r->tables.size(), 25u);
  EXPECT_EQ(r->newly_tracked.size(), 25u);
  EXPECT_EQ(Count("SELECT count(*) FROM sqlite_master WHERE type='trigger' AND name LIKE "
                  "'\\_sluice\\_%' ESCAPE '\\'"),
            75);
  EXPECT_EQ(Count("SELECT count(*) FROM _sluice_tables"), 25);
  {
    AppDb app(path_);
    EXPECT_EQ(app.Scalar("PRAGMA journal_mode"), "wal");
    EXPECT_EQ(app.Scalar("SELECT value FROM _sluice_meta WHERE key='format_version'"), "1");
  }
  for (const TableShape& t : r->tables) {
    if (t.name == "chat") {
      EXPECT_EQ(t.identity, TableShape::Identity::kUniqueIndex);
      EXPECT_EQ(t.columns[t.KeyColumns()[0]].name, "id");
    }
    if (t.name == "migratehistory") {  // 18 rows of text and integers
      EXPECT_EQ(t.columns[1].seen_kinds, Value::Bit(Value::Kind::kText));
      EXPECT_EQ(t.columns[0].seen_kinds, Value::Bit(Value::Kind::kInteger));
    }
  }

  Result<InstallReport> again = InstallCapture(OptionsFor(path_));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->source_id, r->source_id);
  EXPECT_FALSE(again->switched_to_wal);
  EXPECT_TRUE(again->newly_tracked.empty());
  EXPECT_EQ(again->tables.size(), 25u);
  EXPECT_EQ(Count("SELECT count(*) FROM sqlite_master WHERE type='trigger'"), 75);
  EXPECT_EQ(Count("SELECT count(*) FROM _sluice_journal"), 0);
}

TEST_F(InstallerTest, MissingFileIsRefusedAndNotCreated) {
  std::string missing = dir_.file("nope.db");
  Result<InstallReport> r = InstallCapture(OptionsFor(missing));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "source database " + missing + " does not exist");
  EXPECT_FALSE(std::filesystem::exists(missing));
  EXPECT_EQ(UninstallCapture(OptionsFor(missing)).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(JournalReader::Open(OptionsFor(missing)).status().code(),
            Status::Code::kInvalidArgument);
}

TEST_F(InstallerTest, ReaderRefusesUninstalledFile) {
  MakeDb("CREATE TABLE t(id INTEGER PRIMARY KEY)");
  auto r = JournalReader::Open(OptionsFor(path_));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("sluice init"), std::string::npos);

  std::string rollback = dir_.file("rollback.db");
  {
    AppDb app(rollback);
    app.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY)");
  }
  r = JournalReader::Open(OptionsFor(rollback));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not WAL"), std::string::npos);
}

TEST_F(InstallerTest, LongCollidingNamesAreRefused) {
  std::string a = std::string(63, 'n') + "a";
  std::string b = std::string(63, 'n') + "b";
  MakeDb("CREATE TABLE \"" + a + "\"(id INTEGER PRIMARY KEY); CREATE TABLE \"" + b +
         "\"(id INTEGER PRIMARY KEY); CREATE TABLE ok(id INTEGER PRIMARY KEY, \"_sluice_x\")");
  Result<InstallReport> r = InstallCapture(OptionsFor(path_));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find(a), std::string::npos);
  EXPECT_NE(r.status().message().find(b), std::string::npos);
  EXPECT_NE(r.status().message().find("_sluice_x"), std::string::npos);
  EXPECT_NE(r.status().message().find("source.exclude"), std::string::npos);
  // Nothing was installed: the transaction rolled back.
  EXPECT_EQ(Count("SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_sluice%' ESCAPE '\\'"),
            0);

  CaptureOptions o = OptionsFor(path_);
  o.exclude = {std::string(63, 'n') + "*", "ok"};
  r = InstallCapture(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->tables.empty());
}

TEST_F(InstallerTest, FilterDecidesWhatIsTracked) {
  MakeDb(
      "CREATE TABLE chat(id TEXT PRIMARY KEY); CREATE TABLE chat_tmp(id TEXT PRIMARY KEY);"
      "CREATE TABLE user(id TEXT PRIMARY KEY); CREATE TABLE other(id TEXT PRIMARY KEY)");
  CaptureOptions o = OptionsFor(path_);
  o.include = {"chat*", "user"};
  o.exclude = {"*_tmp"};
  Result<InstallReport> r = InstallCapture(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->newly_tracked, (std::vector<std::string>{"chat", "user"}));
  // Narrowing the filter untracks and removes the triggers.
  o.include = {"chat"};
  r = InstallCapture(o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->tables.size(), 1u);
  EXPECT_EQ(Count("SELECT count(*) FROM sqlite_master WHERE type='trigger'"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM _sluice_tables"), 1);
}

TEST_F(InstallerTest, UninstallLeavesAppDataAndNoSluiceObject) {
  MakeDb(testing::OpenWebuiSchema());
  {
    AppDb app(path_);
    app.Exec(
        "INSERT INTO chat(id,user_id,title,archived,created_at,updated_at) VALUES "
        "('c1','u1','hello',0,1,2)");
  }
  ASSERT_TRUE(InstallCapture(OptionsFor(path_)).ok());
  {
    AppDb app(path_);
    app.Exec("UPDATE chat SET title='changed' WHERE id='c1'");
  }
  ASSERT_TRUE(UninstallCapture(OptionsFor(path_)).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM sqlite_master WHERE name LIKE '%sluice%' OR sql LIKE "
                  "'%sluice%'"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM sqlite_sequence WHERE name LIKE '%sluice%'"), 0);
  {
    AppDb app(path_);
    EXPECT_EQ(app.Scalar("SELECT title FROM chat WHERE id='c1'"), "changed");
    EXPECT_EQ(app.Scalar("SELECT count(*) FROM migratehistory"), "18");
    app.Exec(
        "INSERT INTO chat(id,user_id,title,archived,created_at,updated_at) VALUES "
        "('c2','u1','x',0,1,2)");  // the app still writes
  }
  EXPECT_EQ(Count("SELECT count(*) FROM sqlite_master WHERE type='table'"),
            26);                                          // +sqlite_sequence
  EXPECT_TRUE(UninstallCapture(OptionsFor(path_)).ok());  // twice is fine
}

TEST_F(InstallerTest, AppWritesWhileAnotherConnectionReads) {
  MakeDb("CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
  ASSERT_TRUE(InstallCapture(OptionsFor(path_)).ok());
  AppDb reader(path_);
  reader.Exec("BEGIN");
  EXPECT_EQ(reader.Scalar("SELECT count(*) FROM t"), "0");
  {
    AppDb app(path_);
    EXPECT_EQ(app.Exec("INSERT INTO t(v) VALUES ('a'), ('b')"), SQLITE_OK);
    EXPECT_EQ(app.Exec("UPDATE t SET v = 'c'"), SQLITE_OK);
    EXPECT_EQ(app.Scalar("SELECT count(*) FROM _sluice_journal"), "4");
  }
  EXPECT_EQ(reader.Scalar("SELECT count(*) FROM t"), "0");  // its snapshot is unchanged
  reader.Exec("COMMIT");
}

TEST_F(InstallerTest, WalSwitchBlockedByAReaderIsAClearError) {
  MakeDb("CREATE TABLE t(id INTEGER PRIMARY KEY)", /*wal=*/false);
  AppDb holder(path_);
  holder.Exec("BEGIN");
  holder.Scalar("SELECT count(*) FROM t");  // shared lock in rollback mode
  CaptureOptions o = OptionsFor(path_);
  o.busy_timeout_ms = 200;
  Result<InstallReport> r = InstallCapture(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kBusy);  // runtime, not config: exit 1
  EXPECT_NE(r.status().message().find("close other connections"), std::string::npos)
      << r.status().message();
  holder.Exec("COMMIT");
  r = InstallCapture(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->switched_to_wal);
}

TEST_F(InstallerTest, RootLeavesWalFilesToTheDatabaseOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  MakeDb("CREATE TABLE t(id INTEGER PRIMARY KEY)", /*wal=*/false);
  ASSERT_EQ(::chown(path_.c_str(), 4321, 4321), 0);
  ASSERT_TRUE(InstallCapture(OptionsFor(path_)).ok());
  auto reader = JournalReader::Open(OptionsFor(path_));
  ASSERT_TRUE(reader.ok());
  for (const char* suffix : {"-wal", "-shm"}) {
    struct stat st;
    ASSERT_EQ(::stat((path_ + suffix).c_str(), &st), 0) << suffix;
    EXPECT_EQ(st.st_uid, 4321u) << suffix;
    EXPECT_EQ(st.st_gid, 4321u) << suffix;
  }
}

uid_t OwnerOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_uid;
}

TEST_F(InstallerTest, RootNeverChownsThroughASymlinkOrAHardLink) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  MakeDb("CREATE TABLE t(id INTEGER PRIMARY KEY)");
  ASSERT_EQ(::chown(path_.c_str(), 4242, 4242), 0);
  std::string victim = dir_.file("victim"), linked = dir_.file("linked");
  for (const std::string& v : {victim, linked}) {
    testing::WriteFile(v, "someone else's file");
    ASSERT_EQ(::chown(v.c_str(), 12345, 12345), 0);
  }
  std::filesystem::remove(path_ + "-wal");
  std::filesystem::remove(path_ + "-shm");
  ASSERT_EQ(::symlink(victim.c_str(), (path_ + "-wal").c_str()), 0);
  ASSERT_EQ(::link(linked.c_str(), (path_ + "-shm").c_str()), 0);
  Status s = FixWalOwnership(path_);
  EXPECT_EQ(OwnerOf(victim), 12345u);
  EXPECT_EQ(OwnerOf(linked), 12345u);
  EXPECT_TRUE(s.ok()) << s.ToString();  // not ours to fix: left alone, with a warning

  // A plain root-owned -wal is still given to the database's owner.
  std::filesystem::remove(path_ + "-wal");
  testing::WriteFile(path_ + "-wal", "");
  ASSERT_TRUE(FixWalOwnership(path_).ok());
  EXPECT_EQ(OwnerOf(path_ + "-wal"), 4242u);
}

TEST_F(InstallerTest, InitAsRootLeavesASymlinkedShmTargetAlone) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  MakeDb("CREATE TABLE t(id INTEGER PRIMARY KEY)", /*wal=*/false);
  ASSERT_EQ(::chown(path_.c_str(), 4242, 4242), 0);
  std::string victim = dir_.file("victim");
  testing::WriteFile(victim, "someone else's file");
  ASSERT_EQ(::chown(victim.c_str(), 12345, 12345), 0);
  ASSERT_EQ(::symlink(victim.c_str(), (path_ + "-shm").c_str()), 0);
  Result<InstallReport> r = InstallCapture(OptionsFor(path_));  // SQLite refuses the symlink
  EXPECT_EQ(OwnerOf(victim), 12345u) << (r.ok() ? "init succeeded" : r.status().ToString());
  EXPECT_EQ(testing::ReadFile(victim), "someone else's file");
}

// POSIX locks this process holds on `path` (from /proc/locks).
int LocksHeldOn(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  std::string inode = ":" + std::to_string(st.st_ino) + " ";
  std::string pid = " " + std::to_string(::getpid()) + " ";
  std::istringstream locks(testing::ReadFile("/proc/locks"));
  int n = 0;
  for (std::string line; std::getline(locks, line);) {
    if (line.find("POSIX") != std::string::npos && line.find(pid) != std::string::npos &&
        line.find(inode) != std::string::npos)
      ++n;
  }
  return n;
}

TEST_F(InstallerTest, FixingWalOwnershipKeepsTheLocksSqliteHolds) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  MakeDb("CREATE TABLE t(id INTEGER PRIMARY KEY)");
  ASSERT_EQ(::chown(path_.c_str(), 4242, 4242), 0);
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(path_, 1000);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->QueryInt64("SELECT count(*) FROM t").ok());  // maps the -shm, locks it
  int held = LocksHeldOn(path_ + "-shm");
  ASSERT_GT(held, 0);
  ASSERT_EQ(::chown((path_ + "-shm").c_str(), 0, 0), 0);
  ASSERT_TRUE(FixWalOwnership(path_).ok());
  EXPECT_EQ(OwnerOf(path_ + "-shm"), 4242u);
  // Closing a plain descriptor on the -shm would have dropped them all.
  EXPECT_EQ(LocksHeldOn(path_ + "-shm"), held);
}

TEST_F(InstallerTest, SluiceConnectionsNeverAutoCheckpoint) {
  MakeDb("CREATE TABLE t(id INTEGER PRIMARY KEY)");
  Result<std::unique_ptr<SqliteDb>> db = SqliteDb::Open(path_, 1000);
  ASSERT_TRUE(db.ok());
  Result<int64_t> v = (*db)->QueryInt64("PRAGMA wal_autocheckpoint");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 0);
}

}  // namespace
}  // namespace sluice
