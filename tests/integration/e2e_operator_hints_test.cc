// Issue 5 item 19: what the operator is told. A config file that holds the
// sink password and is readable by others is refused (issue #8); `init` on a file or
// directory the user cannot write says so (not "close other connections") and
// exits 1, because exit 2 is for configuration and usage errors only.
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/integration/e2e_support.h"

namespace sluice::e2e {
namespace {

class OperatorHints : public E2eTest {
 protected:
  // Runs `sluice init` as a user that cannot write what `read_only` names.
  // As root, permission bits do not bind: the command runs as nobody, and
  // the writable part is handed to nobody. `dir` holds the database.
  CommandResult InitWithoutWriteAccess(const std::string& dir, const std::string& db_path,
                                       bool read_only_dir) {
    std::string config = WriteConfig(db_path);  // mode 0600: it holds the test server's password
    std::vector<std::string> argv = {SluiceBin(), "init", "--config", config};
    if (::geteuid() == 0) {
      EXPECT_EQ(::chown(config.c_str(), 65534, 65534), 0);  // nobody's own, as a host's would be
      ::chmod(dir_->path().c_str(), 0755);
      ::chmod(dir.c_str(), 0755);
      ::chmod(db_path.c_str(), 0644);
      if (read_only_dir) {
        EXPECT_EQ(::chown(db_path.c_str(), 65534, 65534), 0);  // file writable, dir not
      } else {
        EXPECT_EQ(::chown(dir.c_str(), 65534, 65534), 0);  // dir writable, file not
      }
      argv.insert(argv.begin(), {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    } else if (read_only_dir) {
      ::chmod(dir.c_str(), 0555);
    } else {
      ::chmod(db_path.c_str(), 0444);
    }
    CommandResult r = RunCommand(argv, seconds(30));
    ::chmod(dir.c_str(), 0755);  // so that the temp dir can be removed
    return r;
  }

  // A rollback-journal database in its own directory (so that sluice must
  // create the -wal file to switch it to WAL).
  std::pair<std::string, std::string> RollbackDb() {
    std::string dir = dir_->file("data");
    ::mkdir(dir.c_str(), 0755);
    std::string db_path = dir + "/webui.db";
    CreateOpenWebUiDb(db_path);
    return {dir, db_path};
  }
};

TEST_F(OperatorHints, ReadOnlyDatabaseFileIsNamedAsTheCause) {
  if (skipped_) return;
  auto [dir, db_path] = RollbackDb();
  CommandResult r = InitWithoutWriteAccess(dir, db_path, /*read_only_dir=*/false);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_TRUE(ContainsNoCase(r.err, "not writable")) << r.Describe();
  EXPECT_TRUE(ContainsNoCase(r.err, db_path)) << r.Describe();
  EXPECT_FALSE(ContainsNoCase(r.err, "close other connections")) << r.Describe();
}

TEST_F(OperatorHints, ReadOnlyDirectoryIsNamedAsTheCause) {
  if (skipped_) return;
  auto [dir, db_path] = RollbackDb();
  CommandResult r = InitWithoutWriteAccess(dir, db_path, /*read_only_dir=*/true);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_TRUE(ContainsNoCase(r.err, "directory " + dir + " is not writable")) << r.Describe();
  EXPECT_FALSE(ContainsNoCase(r.err, "close other connections")) << r.Describe();
}

TEST_F(OperatorHints, ConfigWithPasswordReadableByOthersIsRefused) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  std::string url = pg_url_ + " password=not-the-real-one-42";
  std::string config = WriteConfig(db_path, url);
  ::chmod(config.c_str(), 0644);
  // Every command loads the config first: init, run and status refuse it.
  for (const char* command : {"init", "run", "status"}) {
    CommandResult r = RunSluice({command, "--config", config}, seconds(30));
    EXPECT_EQ(r.exit_code, 2) << command << ": " << r.Describe();
    EXPECT_TRUE(ContainsNoCase(r.err, config + " holds a secret"))
        << command << ": " << r.Describe();
    EXPECT_TRUE(ContainsNoCase(r.err, "chmod 600")) << r.Describe();
    EXPECT_FALSE(ContainsNoCase(r.err, "not-the-real-one-42")) << r.Describe();
  }

  // Owner-only: loaded (the bad password then makes status fail, which does
  // not matter here).
  ::chmod(config.c_str(), 0600);
  CommandResult r = RunSluice({"status", "--config", config}, seconds(30));
  EXPECT_FALSE(ContainsNoCase(r.err, "holds a secret")) << r.Describe();
}

// An agent newer than the sink's control plane (an upgrade without `sluice
// init`) would write what the old trigger functions do not handle: `run`
// refuses at its first contact with the sink, naming both versions and the fix.
TEST_F(OperatorHints, ControlPlaneOlderThanTheAgentStopsRunWithTheFix) {
  if (skipped_) return;
  std::string db_path = dir_->file("webui.db");
  CreateOpenWebUiDb(db_path);
  std::string config = WriteConfig(db_path);
  Init(config);
  int64_t version = pg_->ScalarInt(
      "SELECT version FROM sync_metadata.schema_version WHERE component = 'control-plane'");
  // The record says one version older, as a control plane installed by the
  // previous release would. This test runs alone (meson: is_parallel false),
  // and the record is put back however the test ends.
  struct Restore {
    Pg* pg;
    int64_t version;
    ~Restore() {
      pg->Query("UPDATE sync_metadata.schema_version SET version = " + std::to_string(version) +
                " WHERE component = 'control-plane'");
    }
  } restore{pg_.get(), version};
  pg_->Query(
      "UPDATE sync_metadata.schema_version SET version = version - 1 "
      "WHERE component = 'control-plane'");
  CommandResult r = RunSluice({"run", "--config", config}, seconds(20));
  EXPECT_FALSE(r.timed_out) << "sluice run went on with an older control plane\n" << r.Describe();
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_TRUE(ContainsNoCase(r.err, "control plane is version " + std::to_string(version - 1)))
      << r.Describe();
  EXPECT_TRUE(ContainsNoCase(r.err, "needs version " + std::to_string(version))) << r.Describe();
  EXPECT_TRUE(ContainsNoCase(r.err, "run `sluice init`")) << r.Describe();
}

}  // namespace
}  // namespace sluice::e2e
