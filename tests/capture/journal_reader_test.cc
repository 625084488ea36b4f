// JournalReader on real WAL-mode SQLite files: what the app writes comes back
// as coalesced changes read in one snapshot, schema moves are detected, and
// the app never sees SQLITE_BUSY because of sluice.
#include "capture/journal_reader.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include "capture/installer.h"
#include "capture/key_codec.h"
#include "capture/resync_request.h"
#include "tests/capture/capture_test_util.h"
#include "tests/test_support.h"

namespace sluice {
namespace {

using testing::AppDb;
using testing::Drained;
using testing::OptionsFor;

Value T(const char* s) { return Value::Text(s); }
Value I(int64_t v) { return Value::Integer(v); }

class JournalReaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { spdlog::set_level(spdlog::level::warn); }

  // Creates the file with `schema` in WAL mode, installs capture, opens a reader.
  void Setup(const std::string& schema, CaptureOptions options = CaptureOptions{}) {
    {
      AppDb app(path_);
      app.Exec("PRAGMA journal_mode=WAL");
      app.Exec(schema);
    }
    options.path = path_;
    options_ = options;
    Result<InstallReport> r = InstallCapture(options_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto reader = JournalReader::Open(options_);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    reader_ = std::move(*reader);
    auto schema_changes = reader_->CheckSchema();
    ASSERT_TRUE(schema_changes.ok()) << schema_changes.status().ToString();
    // A first check returns the tables keyed by rowid (a VACUUM may have
    // renumbered them while nobody watched): VacuumMakesRowidTablesResync.
    app_ = std::make_unique<AppDb>(path_);
    // init marked every table for a full read: the initial sync reads them
    // (empty here) and, once "committed", the marks are done.
    Batch initial;
    Status s = reader_->ReadBatch(position_, {}, &initial);
    ASSERT_TRUE(s.ok()) << s.ToString();
    reader_->NoteCommitted(initial.full_read_marks);
    position_ = initial.snapshot_seq;
  }

  // Reads changes after position_ and advances it.
  std::vector<Drained> Next(const std::vector<std::string>& full = {}) {
    Batch batch;
    Status s = reader_->ReadBatch(position_, full, &batch);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(batch.after_seq, position_);
    EXPECT_EQ(batch.source_id, reader_->source_id());
    last_rows_ = batch.journal_rows;
    last_full_ = batch.full_tables.size();
    position_ = batch.snapshot_seq;
    reader_->NoteCommitted(batch.full_read_marks);
    return testing::Drain(&batch);
  }

  testing::TempDir dir_;
  std::string path_ = dir_.file("app.db");
  CaptureOptions options_;
  std::unique_ptr<JournalReader> reader_;
  std::unique_ptr<AppDb> app_;
  int64_t position_ = 0;
  int64_t last_rows_ = 0;
  size_t last_full_ = 0;
};

const char* kChatInsert =
    "INSERT INTO chat(id,user_id,title,archived,created_at,updated_at,chat,meta) VALUES ";

TEST_F(JournalReaderTest, InsertUpdateDeleteOnOpenWebui) {
  Setup(testing::OpenWebuiSchema());
  EXPECT_TRUE(Next().empty());

  app_->Exec(std::string(kChatInsert) + "('c1','u1','first',0,100,100,'{}','{}')");
  auto changes = Next();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, Change::Kind::kUpsert);
  EXPECT_EQ(changes[0].table, "chat");
  ASSERT_EQ(changes[0].values.size(), 11u);
  EXPECT_EQ(changes[0].values[0], T("c1"));
  EXPECT_EQ(changes[0].values[2], T("first"));
  EXPECT_EQ(changes[0].values[5], I(100));
  EXPECT_EQ(changes[0].values[8], Value::Null());
  EXPECT_EQ(changes[0].seq, position_);

  // Repeated updates coalesce into one upsert with the current values.
  app_->Exec("UPDATE chat SET title='second' WHERE id='c1'");
  app_->Exec("UPDATE chat SET title='third', pinned=1 WHERE id='c1'");
  changes = Next();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(last_rows_, 2);
  EXPECT_EQ(changes[0].values[2], T("third"));
  EXPECT_EQ(changes[0].values[8], I(1));

  // Insert then delete inside one batch: only the delete remains.
  app_->Exec(std::string(kChatInsert) + "('c2','u1','tmp',0,1,1,NULL,'{}')");
  app_->Exec("DELETE FROM chat WHERE id IN ('c1','c2')");
  changes = Next();
  ASSERT_EQ(changes.size(), 2u);
  for (const Drained& d : changes) {
    EXPECT_EQ(d.kind, Change::Kind::kDelete);
    ASSERT_EQ(d.values.size(), 1u);  // the key only
  }
  EXPECT_EQ(changes[0].values[0], T("c1"));  // ordered by last seq
  EXPECT_EQ(changes[1].values[0], T("c2"));
}

TEST_F(JournalReaderTest, KeyChangeIsDeleteOfOldAndUpsertOfNew) {
  Setup(testing::OpenWebuiSchema());
  app_->Exec("INSERT INTO tag(id,name,user_id,meta) VALUES ('work','Work','u1',NULL)");
  Next();
  app_->Exec("UPDATE tag SET user_id='u2' WHERE id='work'");
  EXPECT_EQ(app_->Scalar("SELECT group_concat(op||key, ' ') FROM (SELECT * FROM _sluice_journal "
                         "ORDER BY seq)"),
            "It776F726B|t7531 Dt776F726B|t7531 Ut776F726B|t7532");
  auto changes = Next();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].kind, Change::Kind::kDelete);
  EXPECT_EQ(changes[0].values, (std::vector<Value>{T("work"), T("u1")}));
  EXPECT_EQ(changes[1].kind, Change::Kind::kUpsert);
  EXPECT_EQ(changes[1].values, (std::vector<Value>{T("work"), T("Work"), T("u2"), Value::Null()}));
  // An update that keeps the key journals no delete.
  app_->Exec("UPDATE tag SET name='W' WHERE id='work'");
  EXPECT_EQ(app_->Scalar("SELECT count(*) FROM _sluice_journal WHERE op='D'"), "1");
}

// An upsert whose first journal entry in the read is an UPDATE of its key
// says the row existed before the read (the sink checks it has the row:
// update_missing). Not for a first INSERT, a delete-and-insert, the new key of
// a key change, or a full read.
TEST_F(JournalReaderTest, UpsertsOfRowsThatExistedBeforeTheReadSaySo) {
  Setup(testing::OpenWebuiSchema());
  auto flags = [](const std::vector<Drained>& changes) {
    std::string out;
    for (const Drained& d : changes) {
      out += (out.empty() ? "" : " ") + d.values[0].bytes + "=" +
             (d.kind == Change::Kind::kDelete ? "D"
              : d.updates_existing            ? "U"
                                              : "I");
    }
    return out;
  };
  app_->Exec(std::string(kChatInsert) + "('c1','u1','a',0,1,1,'{}','{}')");
  EXPECT_EQ(flags(Next()), "c1=I");
  app_->Exec("UPDATE chat SET title='b' WHERE id='c1'");
  app_->Exec(std::string(kChatInsert) + "('c2','u1','a',0,1,1,'{}','{}')");
  app_->Exec("UPDATE chat SET title='b' WHERE id='c2'");
  EXPECT_EQ(flags(Next()), "c1=U c2=I");
  app_->Exec("DELETE FROM chat WHERE id='c1'");
  app_->Exec(std::string(kChatInsert) + "('c1','u1','a',0,1,1,'{}','{}')");
  app_->Exec("UPDATE chat SET title='c' WHERE id='c1'");
  app_->Exec(
      "INSERT OR REPLACE INTO chat(id,user_id,title,archived,created_at,updated_at,chat,"
      "meta) VALUES ('c2','u1','r',0,1,1,'{}','{}')");
  EXPECT_EQ(flags(Next()), "c1=I c2=I");
  // Key changes, one row and two in one statement: the old keys are deleted,
  // the new ones are new rows at the sink.
  app_->Exec(
      "INSERT INTO tag(id,name,user_id,meta) VALUES ('t1','T','u1',NULL), "
      "('t2','T','u1',NULL), ('t3','T','u1',NULL)");
  Next();
  app_->Exec("UPDATE tag SET user_id='u2' WHERE id='t1'");
  app_->Exec("UPDATE tag SET user_id='u3' WHERE id IN ('t2','t3')");
  std::vector<Drained> changes = Next();
  std::string got;
  for (const Drained& d : changes) {
    if (d.kind == Change::Kind::kUpsert) got += d.updates_existing ? "U" : "I";
  }
  EXPECT_EQ(got, "III");
  app_->Exec("UPDATE tag SET name='W' WHERE id='t1'");
  changes = Next();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].updates_existing);
  // A full read carries no flag, even for rows the journal saw updated.
  app_->Exec("UPDATE chat SET title='d' WHERE id='c2'");
  EXPECT_EQ(flags(Next({"chat"})), "c1=I c2=I");
}

TEST_F(JournalReaderTest, MultiRowTransactionAndFullTableRead) {
  Setup(testing::OpenWebuiSchema());
  app_->Exec("BEGIN");
  for (int i = 0; i < 100; ++i) {
    app_->Exec("INSERT INTO message(id, content, created_at) VALUES ('m" + std::to_string(i) +
               "', 'hello', 1730000000000000000)");
  }
  app_->Exec("UPDATE message SET content='edited' WHERE id='m7'");
  app_->Exec("COMMIT");
  auto changes = Next();
  EXPECT_EQ(changes.size(), 100u);
  EXPECT_EQ(last_rows_, 101);
  int edited = 0;
  for (const Drained& d : changes) {
    if (d.values[3] == T("edited")) ++edited;
    EXPECT_EQ(d.values[6], I(1730000000000000000));
  }
  EXPECT_EQ(edited, 1);

  app_->Exec("INSERT INTO config(id, data, version, updated_at) VALUES (1, '{}', 0, NULL)");
  app_->Exec("UPDATE message SET content='again' WHERE id='m8'");
  int64_t before = position_;
  changes = Next({"message"});
  EXPECT_EQ(last_full_, 1u);
  ASSERT_EQ(changes.size(), 101u);  // config via journal + 100 message rows
  int config = 0;
  for (const Drained& d : changes) {
    if (d.table == "config") {
      ++config;
      EXPECT_EQ(d.values[4], Value::Null());  // updated_at: the nullable timestamp
      EXPECT_LE(d.seq, position_);
    } else {
      EXPECT_EQ(d.seq, position_);
    }
  }
  EXPECT_EQ(config, 1);
  EXPECT_GT(position_, before);
}

// A reader that has not checked the schema (a standby's) still names the tracked tables,
// for its metrics, without writing to the file.
TEST_F(JournalReaderTest, RecordedTablesAreKnownAtOpenWithoutWriting) {
  Setup("CREATE TABLE a(id INTEGER PRIMARY KEY, v); CREATE TABLE b(k TEXT PRIMARY KEY);");
  // data_version moves, for this connection, when another one commits.
  std::string version = app_->Scalar("PRAGMA main.data_version");
  auto fresh = JournalReader::Open(options_);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_EQ((*fresh)->TrackedTables(), std::vector<std::string>{});  // no CheckSchema yet
  EXPECT_EQ((*fresh)->RecordedTables(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(app_->Scalar("PRAGMA main.data_version"), version);
}

TEST_F(JournalReaderTest, InitialSyncReadsEveryTrackedTable) {
  Setup(
      "CREATE TABLE a(id INTEGER PRIMARY KEY, v); CREATE TABLE b(k TEXT PRIMARY KEY);"
      "INSERT INTO a(v) VALUES (1), (2); INSERT INTO b VALUES ('x');");
  app_->Exec("INSERT INTO a(v) VALUES (3)");
  position_ = -1;
  auto changes = Next(reader_->TrackedTables());
  EXPECT_EQ(reader_->TrackedTables(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(changes.size(), 4u);
  EXPECT_EQ(last_full_, 2u);
  EXPECT_EQ(position_, 1);
  EXPECT_TRUE(Next().empty());
}

TEST_F(JournalReaderTest, SeqBehindSinkIsCorruption) {
  Setup("CREATE TABLE a(id INTEGER PRIMARY KEY, v)");
  app_->Exec("INSERT INTO a(v) VALUES (1)");
  Batch batch;
  Status s = reader_->ReadBatch(5, {}, &batch);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("journal seq 1 is behind the sink position 5"), std::string::npos)
      << s.message();
  // A full resync is allowed.
  Batch full;
  ASSERT_TRUE(reader_->ReadBatch(5, {"a"}, &full).ok());
  EXPECT_EQ(full.snapshot_seq, 1);
  EXPECT_EQ(full.changes.size(), 1u);
}

TEST_F(JournalReaderTest, ChangedFollowsDataVersion) {
  Setup("CREATE TABLE a(id INTEGER PRIMARY KEY, v)");
  auto c = reader_->Changed();
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(*c);
  EXPECT_FALSE(*reader_->Changed());
  app_->Exec("INSERT INTO a(v) VALUES (1)");
  EXPECT_TRUE(*reader_->Changed());
  EXPECT_FALSE(*reader_->Changed());
  Next();
  ASSERT_TRUE(reader_->Prune(position_).ok());  // its own writes do not count
  EXPECT_FALSE(*reader_->Changed());
}

TEST_F(JournalReaderTest, SchemaChanges) {
  Setup(testing::OpenWebuiSchema());
  app_->Exec(std::string(kChatInsert) + "('c1','u1','t',0,1,1,NULL,'{}')");
  Next();

  // ADD COLUMN: triggers keep working, the table is flagged, the shape grows.
  app_->Exec("ALTER TABLE chat ADD COLUMN archived_at BIGINT");
  app_->Exec("UPDATE chat SET archived_at = 42");
  auto moved = reader_->CheckSchema();
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, (std::vector<std::string>{"chat"}));
  auto changes = Next();
  ASSERT_EQ(changes.size(), 1u);
  ASSERT_EQ(changes[0].values.size(), 12u);
  EXPECT_EQ(changes[0].values[11], I(42));
  EXPECT_TRUE(reader_->CheckSchema()->empty());

  // The 12-step rebuild (alembic batch op): triggers vanish with the old table.
  app_->Exec(
      "BEGIN; CREATE TABLE _alembic_tmp_tag (id VARCHAR(255) NOT NULL, name TEXT, "
      "user_id VARCHAR(255) NOT NULL, meta JSON, color TEXT, PRIMARY KEY (id, user_id));"
      "INSERT INTO _alembic_tmp_tag(id,name,user_id,meta) SELECT id,name,user_id,meta FROM "
      "tag; DROP TABLE tag; ALTER TABLE _alembic_tmp_tag RENAME TO tag; COMMIT;");
  EXPECT_EQ(app_->Scalar("SELECT count(*) FROM sqlite_master WHERE type='trigger' AND "
                         "tbl_name='tag'"),
            "0");
  moved = reader_->CheckSchema();
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, (std::vector<std::string>{"tag"}));
  EXPECT_EQ(app_->Scalar("SELECT count(*) FROM sqlite_master WHERE type='trigger' AND "
                         "tbl_name='tag'"),
            "3");
  app_->Exec("INSERT INTO tag(id,name,user_id,color) VALUES ('x','X','u','red')");
  changes = Next();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].values.size(), 5u);
  EXPECT_EQ(changes[0].values[4], T("red"));

  // A rebuild that the reader sees half-way (the temp table tracked first).
  app_->Exec("CREATE TABLE new_note (id TEXT PRIMARY KEY, title TEXT)");
  moved = reader_->CheckSchema();
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(*moved, (std::vector<std::string>{"new_note"}));
  app_->Exec(
      "BEGIN; INSERT INTO new_note SELECT id, title FROM note; DROP TABLE note;"
      "ALTER TABLE new_note RENAME TO note; COMMIT;");
  moved = reader_->CheckSchema();
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, (std::vector<std::string>{"note"}));
  EXPECT_EQ(app_->Scalar("SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE "
                         "type='trigger' AND tbl_name='note' ORDER BY name)"),
            "_sluice_note_ad,_sluice_note_ai,_sluice_note_au");
  app_->Exec("INSERT INTO note(id, title) VALUES ('n1', 'hi')");
  EXPECT_EQ(app_->Scalar("SELECT tbl FROM _sluice_journal ORDER BY seq DESC LIMIT 1"), "note");

  // CREATE TABLE: tracked. DROP TABLE: untracked, not flagged. (A batch
  // first: the full read of `note` marked above stays pending until one commits.)
  Next();
  app_->Exec("CREATE TABLE \"Späti \"\"24/7\"\"\"(id INTEGER PRIMARY KEY, v)");
  app_->Exec("DROP TABLE chatidtag");
  moved = reader_->CheckSchema();
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(*moved, (std::vector<std::string>{"Späti \"24/7\""}));
  auto tracked = reader_->TrackedTables();
  EXPECT_EQ(std::count(tracked.begin(), tracked.end(), "chatidtag"), 0);
  EXPECT_EQ(std::count(tracked.begin(), tracked.end(), "new_note"), 0);
  EXPECT_EQ(app_->Scalar("SELECT count(*) FROM _sluice_tables"), "25");
  EXPECT_EQ(app_->Scalar("SELECT count(*) FROM sqlite_master WHERE type='trigger'"), "75");
}

TEST_F(JournalReaderTest, IdentityChangeReinstallsTriggers) {
  Setup("CREATE TABLE r(v TEXT NOT NULL, w)");  // rowid identity
  app_->Exec("INSERT INTO r VALUES ('a', 1)");
  EXPECT_EQ(app_->Scalar("SELECT key FROM _sluice_journal"), "i1");
  Next();
  app_->Exec("CREATE UNIQUE INDEX r_v ON r(v)");  // now keyed by v
  auto moved = reader_->CheckSchema();
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, (std::vector<std::string>{"r"}));
  EXPECT_EQ(app_->Scalar("SELECT identity FROM _sluice_tables WHERE name='r'"),
            "unique index (\"v\")");
  app_->Exec("UPDATE r SET w = 2");
  EXPECT_EQ(app_->Scalar("SELECT key FROM _sluice_journal ORDER BY seq DESC LIMIT 1"), "t61");
  auto changes = Next({"r"});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].values, (std::vector<Value>{T("a"), I(2)}));  // no synthetic rowid now
}

TEST_F(JournalReaderTest, RenamedTableIsTrackedUnderItsNewName) {
  Setup("CREATE TABLE a(id INTEGER PRIMARY KEY, v)");
  app_->Exec("ALTER TABLE a RENAME TO b");
  auto moved = reader_->CheckSchema();
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(*moved, (std::vector<std::string>{"b"}));
  EXPECT_EQ(reader_->TrackedTables(), (std::vector<std::string>{"b"}));
  EXPECT_EQ(app_->Scalar("SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE "
                         "type='trigger' ORDER BY name)"),
            "_sluice_b_ad,_sluice_b_ai,_sluice_b_au");
  app_->Exec("INSERT INTO b(v) VALUES (1)");
  // The batch reads b whole, carries the rename (recorded with b's mark) and
  // a as gone.
  Batch batch;
  ASSERT_TRUE(reader_->ReadBatch(position_, {}, &batch).ok());
  ASSERT_EQ(batch.table_renames.size(), 1u);
  EXPECT_EQ(batch.table_renames[0].from, (std::vector<std::string>{"a"}));
  EXPECT_EQ(batch.table_renames[0].to, "b");
  EXPECT_EQ(batch.dropped_tables, (std::vector<std::string>{"a"}));
  ASSERT_EQ(batch.full_tables.size(), 1u);
  EXPECT_EQ(batch.tables[batch.full_tables[0]].name, "b");
  auto changes = testing::Drain(&batch);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].table, "b");
  reader_->NoteCommitted(batch.full_read_marks);
  position_ = batch.snapshot_seq;

  // Renamed again, and a column renamed: the new mark keeps nothing of the
  // committed one; a later column rename adds to a pending one, in order.
  app_->Exec("ALTER TABLE b RENAME TO c");
  ASSERT_TRUE(reader_->CheckSchema().ok());
  app_->Exec("ALTER TABLE c RENAME COLUMN v TO w");
  ASSERT_TRUE(reader_->CheckSchema().ok());
  app_->Exec("ALTER TABLE c RENAME COLUMN w TO x");
  ASSERT_TRUE(reader_->CheckSchema().ok());
  Batch again;
  ASSERT_TRUE(reader_->ReadBatch(position_, {}, &again).ok());
  ASSERT_EQ(again.table_renames.size(), 1u);
  EXPECT_EQ(again.table_renames[0].from, (std::vector<std::string>{"b"}));
  ASSERT_EQ(again.column_renames.size(), 2u);
  EXPECT_EQ(again.column_renames[0].from, "v");
  EXPECT_EQ(again.column_renames[0].to, "w");
  EXPECT_EQ(again.column_renames[1].from, "w");
  EXPECT_EQ(again.column_renames[1].to, "x");
  EXPECT_EQ(again.dropped_tables, (std::vector<std::string>{"b"}));
}

// The old name taken again by a new table in the same transaction: the
// triggers SQLite carried to t_old say it was t; the new t is a new table
// (no column "renamed" from the old t's), and nothing is read as gone.
TEST_F(JournalReaderTest, RenamedTableWhoseNameIsReusedIsTwoTables) {
  Setup("CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT)");
  app_->Exec(
      "BEGIN; ALTER TABLE t RENAME TO t_old; CREATE TABLE t(id INTEGER PRIMARY KEY, y TEXT);"
      "INSERT INTO t VALUES (1, 'n1'); COMMIT");
  auto moved = reader_->CheckSchema();
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  std::vector<std::string> names = *moved;
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"t", "t_old"}));
  EXPECT_EQ(app_->Scalar("SELECT group_concat(name) FROM (SELECT name || ' on ' || tbl_name AS "
                         "name FROM sqlite_master WHERE type='trigger' ORDER BY name)"),
            "_sluice_t_ad on t,_sluice_t_ai on t,_sluice_t_au on t,_sluice_t_old_ad on t_old,"
            "_sluice_t_old_ai on t_old,_sluice_t_old_au on t_old");
  Batch batch;
  ASSERT_TRUE(reader_->ReadBatch(position_, {}, &batch).ok());
  ASSERT_EQ(batch.table_renames.size(), 1u);
  EXPECT_EQ(batch.table_renames[0].from, (std::vector<std::string>{"t"}));
  EXPECT_EQ(batch.table_renames[0].to, "t_old");
  EXPECT_TRUE(batch.column_renames.empty());
  EXPECT_TRUE(batch.dropped_tables.empty());
  EXPECT_EQ(batch.full_tables.size(), 2u);
}

// A column rename is inferred only from one ALTER since the last check:
// DROP + ADD in place (same type) is not one, nor RENAME COLUMN together
// with another schema change.
TEST_F(JournalReaderTest, ColumnRenameOnlyFromASingleAlter) {
  Setup("CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT, a INTEGER)");
  auto renames_after = [&](const std::string& ddl) {
    app_->Exec(ddl);
    EXPECT_TRUE(reader_->CheckSchema().ok());
    Batch batch;
    EXPECT_TRUE(reader_->ReadBatch(position_, {}, &batch).ok());
    reader_->NoteCommitted(batch.full_read_marks);
    position_ = batch.snapshot_seq;
    std::string out;
    for (const ColumnRename& r : batch.column_renames) out += r.from + ">" + r.to + " ";
    return out;
  };
  EXPECT_EQ(renames_after("ALTER TABLE t DROP COLUMN a; ALTER TABLE t ADD COLUMN b INTEGER"), "");
  EXPECT_EQ(renames_after("ALTER TABLE t RENAME COLUMN b TO c"), "b>c ");
  EXPECT_EQ(renames_after("ALTER TABLE t RENAME COLUMN c TO d; CREATE INDEX t_x ON t(x)"), "");
}

TEST_F(JournalReaderTest, DroppedTableIsReadAsGoneAnExcludedOneIsNot) {
  Setup("CREATE TABLE a(id INTEGER PRIMARY KEY, v); CREATE TABLE b(id INTEGER PRIMARY KEY, v)");
  app_->Exec("DROP TABLE a");
  ASSERT_TRUE(reader_->CheckSchema().ok());
  EXPECT_EQ(reader_->TrackedTables(), (std::vector<std::string>{"b"}));
  Batch batch;
  ASSERT_TRUE(reader_->ReadBatch(position_, {}, &batch).ok());
  EXPECT_EQ(batch.dropped_tables, (std::vector<std::string>{"a"}));
  EXPECT_TRUE(batch.full_tables.empty());
  ASSERT_EQ(batch.full_read_marks.size(), 1u);
  reader_->NoteCommitted(batch.full_read_marks);
  position_ = batch.snapshot_seq;
  ASSERT_TRUE(reader_->Prune(position_).ok());
  EXPECT_EQ(app_->Scalar("SELECT count(*) FROM _sluice_full_reads"), "0");

  // Excluded by the filter: no longer tracked, but not gone: no mark.
  CaptureOptions options = options_;
  options.exclude = {"b"};
  auto reader = JournalReader::Open(options);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->CheckSchema().ok());
  EXPECT_TRUE((*reader)->TrackedTables().empty());
  EXPECT_EQ(app_->Scalar("SELECT count(*) FROM _sluice_full_reads"), "0");
  Batch excluded;
  ASSERT_TRUE((*reader)->ReadBatch(position_, {}, &excluded).ok());
  EXPECT_TRUE(excluded.dropped_tables.empty());
}

// A mark renewed (`sluice resync --table`) after a batch read the table but
// before that batch's sink commit is not cleared by the commit: the rows the
// renewal asked for may postdate the read, so the table is read whole again.
TEST_F(JournalReaderTest, RenewedMarkOutlivesTheCommitOfAnOlderRead) {
  Setup("CREATE TABLE a(id INTEGER PRIMARY KEY, v); CREATE TABLE b(id INTEGER PRIMARY KEY, v)");
  app_->Exec("INSERT INTO a(v) VALUES (1), (2); INSERT INTO b(v) VALUES (3)");
  Next();
  ASSERT_TRUE(RequestFullRead(options_, {"a"}).ok());
  Batch first;
  ASSERT_TRUE(reader_->ReadBatch(position_, {}, &first).ok());
  ASSERT_EQ(first.full_read_marks.size(), 1u);
  EXPECT_EQ(first.full_read_marks[0].table, "a");
  ASSERT_EQ(first.full_tables.size(), 1u);
  EXPECT_EQ(first.tables[first.full_tables[0]].name, "a");
  position_ = first.snapshot_seq;

  ASSERT_TRUE(RequestFullRead(options_, {"a"}).ok());  // renewed before the commit
  reader_->NoteCommitted(first.full_read_marks);
  ASSERT_TRUE(reader_->Prune(position_).ok());
  EXPECT_EQ(app_->Scalar("SELECT name || ':' || token FROM _sluice_full_reads"),
            "a:" + std::to_string(first.full_read_marks[0].token + 1));

  auto changes = Next();
  EXPECT_EQ(last_full_, 1u);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].table, "a");
  EXPECT_EQ(changes[0].values, (std::vector<Value>{I(1), I(1)}));
  EXPECT_EQ(changes[1].values, (std::vector<Value>{I(2), I(2)}));
  // That read's commit clears the renewed mark: nothing is read whole again.
  ASSERT_TRUE(reader_->Prune(position_).ok());
  EXPECT_EQ(app_->Scalar("SELECT count(*) FROM _sluice_full_reads"), "0");
  EXPECT_TRUE(Next().empty());
  EXPECT_EQ(last_full_, 0u);
}

TEST_F(JournalReaderTest, HostileNames) {
  Setup(
      "CREATE TABLE \"select\"(\"from\" TEXT PRIMARY KEY, \"where\");"
      "CREATE TABLE \"a \"\"quoted\"\" 'name'\"(\"Mixed Case\" INTEGER, \"ü\" TEXT NOT NULL "
      "UNIQUE);"
      "CREATE TABLE \"MiXeD\"(x);");
  app_->Exec("INSERT INTO \"select\" VALUES ('it''s', 1)");
  app_->Exec("INSERT INTO \"a \"\"quoted\"\" 'name'\" VALUES (5, 'ö')");
  app_->Exec("INSERT INTO mixed VALUES ('m')");
  auto changes = Next();
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].table, "select");
  EXPECT_EQ(changes[0].values, (std::vector<Value>{T("it's"), I(1)}));
  EXPECT_EQ(changes[1].table, "a \"quoted\" 'name'");
  EXPECT_EQ(changes[1].values, (std::vector<Value>{I(5), T("ö")}));
  EXPECT_EQ(changes[2].table, "MiXeD");
  EXPECT_EQ(changes[2].values, (std::vector<Value>{I(1), T("m")}));  // rowid first
  app_->Exec("DELETE FROM \"a \"\"quoted\"\" 'name'\"");
  changes = Next();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].values, (std::vector<Value>{T("ö")}));
}

TEST_F(JournalReaderTest, KeysOfEveryStorageClass) {
  Setup("CREATE TABLE k(k PRIMARY KEY, v)");  // no affinity: every class kept as given
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Value> keys = {I(0),
                             I(std::numeric_limits<int64_t>::min()),
                             I(std::numeric_limits<int64_t>::max()),
                             Value::Real(0.1),
                             Value::Real(-inf),
                             Value::Real(inf),
                             Value::Real(1.7976931348623157e308),  // SQLite prints it inexactly
                             Value::Real(2.5),
                             T(""),
                             T("it's|"),
                             Value::Text(std::string("a\0b", 3)),
                             T("\xff\xfe"),
                             Value::Blob(""),
                             Value::Blob(std::string("\0\x01", 2)),
                             Value::Null()};
  for (const Value& k : keys)
    ASSERT_EQ(app_->Run("INSERT INTO k VALUES (?1, 'v')", {k}), SQLITE_OK);
  // The trigger's SQL produced exactly what EncodeKey produces.
  auto journal = app_->Query("SELECT key FROM _sluice_journal ORDER BY seq");
  ASSERT_EQ(journal.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(journal[i][0], EncodeKey({keys[i]})) << i;
  }
  auto changes = Next();
  ASSERT_EQ(changes.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(changes[i].kind, Change::Kind::kUpsert) << i;
    EXPECT_TRUE(changes[i].values[0] == keys[i]) << i << " " << EncodeKey({changes[i].values[0]});
  }
  // Deletes carry the decoded key.
  app_->Exec("DELETE FROM k");
  changes = Next();
  ASSERT_EQ(changes.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(changes[i].kind, Change::Kind::kDelete);
    if (i != 6) {
      EXPECT_TRUE(changes[i].values[0] == keys[i]) << i;
    }
  }
}

TEST_F(JournalReaderTest, ValuesSurviveExactly) {
  Setup("CREATE TABLE v(id INTEGER PRIMARY KEY, x)");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::string big(10u << 20, 'z');
  big[12345] = '\0';
  std::vector<Value> values = {Value::Real(nan),  // SQLite stores NaN as NULL
                               Value::Real(std::numeric_limits<double>::infinity()),
                               I(std::numeric_limits<int64_t>::min()),
                               I(std::numeric_limits<int64_t>::max()),
                               Value::Text(std::string("nul\0\xff\xc3(", 7)),
                               Value::Blob(""),
                               Value::Text(big)};
  for (const Value& v : values)
    ASSERT_EQ(app_->Run("INSERT INTO v(x) VALUES (?1)", {v}), SQLITE_OK);
  auto changes = Next();
  ASSERT_EQ(changes.size(), values.size());
  EXPECT_EQ(changes[0].values[1], Value::Null());
  for (size_t i = 1; i < values.size(); ++i) {
    EXPECT_TRUE(changes[i].values[1] == values[i]) << i;
  }
  EXPECT_EQ(changes[6].values[1].bytes.size(), 10u << 20);
}

TEST_F(JournalReaderTest, WithoutRowidAndRowidTables) {
  Setup(
      "CREATE TABLE w(a TEXT, b INT, v, PRIMARY KEY (b, a)) WITHOUT ROWID;"
      "CREATE TABLE r(v TEXT, u TEXT UNIQUE);");  // nullable unique: not an identity
  app_->Exec("INSERT INTO w VALUES ('x', 1, 'one'); INSERT INTO r VALUES ('p', NULL), ('q', 'u');");
  app_->Exec("UPDATE w SET v='uno'; DELETE FROM r WHERE v='p';");
  auto changes = Next();  // ordered by the last seq of each key
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].table, "r");
  EXPECT_EQ(changes[0].kind, Change::Kind::kUpsert);
  EXPECT_EQ(changes[0].values, (std::vector<Value>{I(2), T("q"), T("u")}));
  EXPECT_EQ(changes[1].table, "w");
  EXPECT_EQ(changes[1].values, (std::vector<Value>{T("x"), I(1), T("uno")}));
  EXPECT_EQ(changes[2].table, "r");
  EXPECT_EQ(changes[2].kind, Change::Kind::kDelete);
  EXPECT_EQ(changes[2].values, (std::vector<Value>{I(1)}));
}

TEST_F(JournalReaderTest, GeneratedColumnsAreReadAndCanBeTheKey) {
  Setup(
      "CREATE TABLE g(b TEXT NOT NULL, v INT AS (length(b)) VIRTUAL,"
      " s TEXT AS ('k'||b) STORED UNIQUE NOT NULL, z);"
      "CREATE TABLE h(id INTEGER PRIMARY KEY, b TEXT, v TEXT AS (upper(b)));");
  app_->Exec("INSERT INTO g(b, z) VALUES ('abc', 1); INSERT INTO h(b) VALUES ('x');");
  auto changes = Next();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].table, "g");
  EXPECT_EQ(changes[0].values, (std::vector<Value>{T("abc"), I(3), T("kabc"), I(1)}));
  EXPECT_EQ(changes[1].values, (std::vector<Value>{I(1), T("x"), T("X")}));

  // The key is the STORED column: changing its base column moves the key.
  app_->Exec("UPDATE g SET b = 'de'; UPDATE h SET b = 'y';");
  changes = Next();
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].kind, Change::Kind::kDelete);
  EXPECT_EQ(changes[0].values, (std::vector<Value>{T("kabc")}));
  EXPECT_EQ(changes[1].kind, Change::Kind::kUpsert);
  EXPECT_EQ(changes[1].values, (std::vector<Value>{T("de"), I(2), T("kde"), I(1)}));
  EXPECT_EQ(changes[2].values, (std::vector<Value>{I(1), T("y"), T("Y")}));

  app_->Exec("DELETE FROM g");
  changes = Next();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, Change::Kind::kDelete);
  EXPECT_EQ(changes[0].values, (std::vector<Value>{T("kde")}));

  auto full = Next({"g", "h"});
  ASSERT_EQ(full.size(), 1u);
  EXPECT_EQ(full[0].values, (std::vector<Value>{I(1), T("y"), T("Y")}));
}

TEST_F(JournalReaderTest, VacuumMakesRowidTablesResync) {
  Setup(
      "CREATE TABLE r(v TEXT);"  // keyed by rowid: VACUUM may renumber it
      "CREATE TABLE k(id TEXT PRIMARY KEY, v TEXT);");
  app_->Exec("INSERT INTO r VALUES ('a'), ('b'), ('c'); INSERT INTO k VALUES ('x', 'y');");
  app_->Exec("DELETE FROM r WHERE v = 'a'");
  Next();
  auto quiet = reader_->CheckSchema();
  ASSERT_TRUE(quiet.ok());
  EXPECT_TRUE(quiet->empty());  // nothing moved: no resync
  app_->Exec("VACUUM");         // 'b' and 'c' now have rowids 1 and 2
  auto moved = reader_->CheckSchema();
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, std::vector<std::string>{"r"});
  auto changes = Next({"r"});
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].values, (std::vector<Value>{I(1), T("b")}));
  EXPECT_EQ(changes[1].values, (std::vector<Value>{I(2), T("c")}));
}

TEST_F(JournalReaderTest, InsertOrReplaceEvictionJournalsADelete) {
  Setup("CREATE TABLE u(id TEXT PRIMARY KEY, email TEXT UNIQUE)");
  app_->Exec("INSERT INTO u VALUES ('a', 'x@y'), ('b', 'z@y')");
  Next();
  // Evicts 'a' through the secondary UNIQUE(email) and 'b' through the key.
  app_->Exec("INSERT OR REPLACE INTO u VALUES ('b', 'x@y')");
  auto changes = Next();
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].kind, Change::Kind::kDelete);
  EXPECT_EQ(changes[0].values, (std::vector<Value>{T("a")}));
  EXPECT_EQ(changes[1].kind, Change::Kind::kUpsert);
  EXPECT_EQ(changes[1].values, (std::vector<Value>{T("b"), T("x@y")}));
}

TEST_F(JournalReaderTest, PruneAndStats) {
  Setup("CREATE TABLE a(id INTEGER PRIMARY KEY, v)");
  app_->Exec("BEGIN");
  for (int i = 0; i < 4500; ++i) app_->Exec("INSERT INTO a(v) VALUES (" + std::to_string(i) + ")");
  app_->Exec("COMMIT");
  auto stats = reader_->Stats(0);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->max_seq, 4500);
  EXPECT_EQ(stats->pending_rows, 4500);
  EXPECT_GT(stats->oldest_pending_at_ms, 1.6e12);
  ASSERT_TRUE(reader_->Prune(4100).ok());
  EXPECT_EQ(app_->Scalar("SELECT min(seq) || '-' || max(seq) || '/' || count(*) FROM "
                         "_sluice_journal"),
            "4100-4500/401");  // the row at the position stays: the restore fingerprint
  stats = reader_->Stats(4100);
  EXPECT_EQ(stats->pending_rows, 400);
  EXPECT_EQ(stats->max_seq, 4500);
  ASSERT_TRUE(reader_->Prune(4500).ok());
  stats = reader_->Stats(4500);
  EXPECT_EQ(stats->pending_rows, 0);
  EXPECT_EQ(stats->oldest_pending_at_ms, 0);
  EXPECT_EQ(stats->max_seq, 4500);
  // The empty journal still knows where it is.
  position_ = 4500;
  EXPECT_TRUE(Next().empty());
  EXPECT_EQ(position_, 4500);
}

TEST_F(JournalReaderTest, NoReadTransactionOutlivesACall) {
  Setup("CREATE TABLE a(id INTEGER PRIMARY KEY, v)");
  app_->Exec("INSERT INTO a(v) VALUES (1)");
  Next({"a"});
  ASSERT_TRUE(reader_->Stats(0).ok());
  ASSERT_TRUE(reader_->CheckSchema().ok());
  // A TRUNCATE checkpoint (by the app, never by sluice) completes only if no
  // reader pins the WAL.
  auto r = app_->Query("PRAGMA wal_checkpoint(TRUNCATE)");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0][0], "0") << "a reader still holds a snapshot";
}

TEST_F(JournalReaderTest, AppNeverSeesBusyWhileReaderWorks) {
  Setup("CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT)");
  std::atomic<bool> stop{false};
  std::atomic<int> app_errors{0};
  std::atomic<int> app_commits{0};
  std::thread writer([&] {
    AppDb app(path_);  // busy_timeout 5000, like the client apps
    int i = 0;
    while (!stop.load()) {
      ++i;
      int rc = app.Exec("BEGIN IMMEDIATE; INSERT INTO a(v) VALUES ('" + std::to_string(i) +
                            "'); UPDATE a SET v = v || 'x' WHERE id = " + std::to_string(i / 2) +
                            "; COMMIT;",
                        /*expect_ok=*/false);
      if (rc != SQLITE_OK) {
        ++app_errors;
        app.Exec("ROLLBACK", false);
      } else {
        ++app_commits;
      }
      // A busy app, but one that does something between transactions.
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  int reader_busy = 0;
  int prune_busy = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < deadline) {
    Batch batch;
    Status s = reader_->ReadBatch(position_, {}, &batch);
    if (s.code() == Status::Code::kBusy) {
      ++reader_busy;
      continue;
    }
    ASSERT_TRUE(s.ok()) << s.ToString();
    position_ = batch.snapshot_seq;
    s = reader_->Prune(position_);
    if (s.code() == Status::Code::kBusy) {
      ++prune_busy;  // allowed: the agent retries later
    } else {
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
  }
  stop = true;
  writer.join();
  EXPECT_EQ(app_errors.load(), 0);
  EXPECT_GT(app_commits.load(), 50);
  EXPECT_EQ(reader_busy, 0);
  // Pruning gives way to a busy app (kBusy after a 20 ms wait) and catches up
  // once the app pauses.
  RecordProperty("prune_deferred", prune_busy);
  ASSERT_TRUE(reader_->Prune(position_).ok());
  EXPECT_EQ(
      app_->Scalar("SELECT count(*) FROM _sluice_journal WHERE seq < " + std::to_string(position_)),
      "0");
  // Everything the app committed was seen.
  Batch last;
  ASSERT_TRUE(reader_->ReadBatch(position_, {}, &last).ok());
  position_ = last.snapshot_seq;
  EXPECT_EQ(std::to_string(position_), app_->Scalar("SELECT seq FROM sqlite_sequence WHERE "
                                                    "name='_sluice_journal'"));
}

}  // namespace
}  // namespace sluice
