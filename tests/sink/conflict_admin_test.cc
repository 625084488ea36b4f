// ConflictAdmin against a real PostgreSQL: list with filters and images, resolve
// each way (source, target, merged computed, merged with --row), twice, an
// unknown id, a parked row, a bad --row, a delete kind, a batch in flight
// (waits, or times out with "the agent is applying a batch"), and through
// pgbouncer with a pool of one connection. The mirror is made by hand as
// tests/sql/conflict_functions.sql part B makes it (the trigger functions of
// sql/01 version 5), and the apply transaction is the agent's UpsertSql /
// DeleteSql shape with its transaction-local settings; the pure helpers get
// unit tests at the end.
#include "sink/conflict_admin.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/sink/conflict_mirror.h"
#include "tests/sink/sink_test_util.h"
#include "tests/test_support.h"

namespace sluice {
namespace {

using testing::Pg;
using testing::Query;

class ConflictAdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = testing::PgConninfoOrSkip();
    if (pg_.empty()) return;
    name_ = testing::UniqueName("cadm");
    options_.url = pg_;
    options_.schema = name_;
    options_.deployment = name_;
    admin_ = Connect(options_);
    ASSERT_NE(admin_, nullptr);
    ASSERT_TRUE(admin_->InstallControlPlane().ok());
    mirror_ = std::make_unique<testing::HandMadeConflictMirror>(pg_, name_);
    mirror_->Create("chat");
    mirror_->Create("note");
  }

  // The hand-made mirror's helpers (tests/sink/conflict_mirror.h).
  void Exec(const std::string& sql) { mirror_->Exec(sql); }
  std::string One(const std::string& sql) { return mirror_->One(sql); }
  void Apply(const std::string& table, const std::string& policy,
             const std::vector<std::string>& upserts, const std::string& deletes = "[]",
             int64_t batch = 1) {
    mirror_->Apply(table, policy, upserts, deletes, batch);
  }
  template <typename... A>
  static std::string Row(A&&... a) {
    return testing::HandMadeConflictMirror::Row(std::forward<A>(a)...);
  }
  template <typename... A>
  std::string Cell(A&&... a) {
    return mirror_->Cell(std::forward<A>(a)...);
  }
  template <typename... A>
  int64_t Pending(A&&... a) {
    return mirror_->Pending(std::forward<A>(a)...);
  }

  static std::unique_ptr<SinkAdmin> Connect(const SinkOptions& o) {
    Result<std::unique_ptr<SinkAdmin>> a = SinkAdmin::Connect(o);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? std::move(a.value()) : nullptr;
  }

  Result<ResolveOutcome> Resolve(int64_t id, ConflictTake take,
                                 std::optional<std::string> row = std::nullopt,
                                 const std::string& by = "alice") {
    ResolveRequest r;
    r.id = id;
    r.take = take;
    r.row = std::move(row);
    r.by = by;
    return ResolveConflict(*admin_, options_, r);
  }

  std::string Log(int64_t id) {
    return One(
        "SELECT status || '/' || coalesce(resolved_by, '-') || '/' || (resolved_at IS "
        "NOT NULL)::text FROM sync_metadata.conflict_log WHERE id = " +
        std::to_string(id));
  }

  void TearDown() override {
    if (!pg_.empty() && !HasFailure()) {
      Exec("DROP SCHEMA IF EXISTS \"" + name_ + "\" CASCADE");
    }
  }

  std::string pg_;
  std::string name_;
  SinkOptions options_;
  std::unique_ptr<SinkAdmin> admin_;
  std::unique_ptr<testing::HandMadeConflictMirror> mirror_;
};

TEST_F(ConflictAdminTest, ListFiltersStatusesAndImages) {
  if (pg_.empty()) return;
  int64_t a = Pending("a");
  int64_t n = Pending("n", 11, "note");
  // An automatic one: source_wins.
  Apply("chat", "{}", {Row("c", "base", "1", "x", 1000, 1)});
  Exec("UPDATE \"" + name_ + "\".chat SET title = 'outside c' WHERE id = 'c'");
  Apply("chat", "{}", {Row("c", "source c", "1", "x", 2000, 12)}, "[]", 12);
  // A parked row, and another deployment's pending entry.
  Exec(
      "INSERT INTO sync_metadata.conflict_log (deployment, table_name, row_key, seq, kind, "
      "reason, source_data, status) VALUES ('" +
      name_ +
      "', 'chat', '[\"p\"]', 13, 'rejected', 'value too long', '{\"id\": \"p\"}', "
      "'parked'), ('" +
      name_ +
      "_other', 'chat', '[\"a\"]', 1, 'update_origin_differs', 'x', "
      "'{}', 'pending')");

  Result<std::vector<ConflictEntry>> all = ListConflicts(*admin_, options_, {}, false);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<std::string> got;
  for (const ConflictEntry& e : *all) {
    got.push_back(e.table + e.key + ":" + e.kind + ":" + e.strategy + ":" + e.status + ":" +
                  e.resolved_by);
  }
  EXPECT_EQ(got, (std::vector<std::string>{
                     "chat[\"a\"]:update_origin_differs:manual:pending:",
                     "note[\"n\"]:update_origin_differs:manual:pending:",
                     "chat[\"c\"]:update_origin_differs:source_wins:resolved:automatic",
                     "chat[\"p\"]:rejected::parked:"}));
  const ConflictEntry& first = all->front();
  EXPECT_EQ(first.id, a);
  EXPECT_EQ(first.seq, 10);
  EXPECT_EQ(first.epoch, 3);
  EXPECT_EQ(first.batch, 10);
  EXPECT_EQ(first.created_at.size(), 24u) << first.created_at;  // 2026-12-01T19:00:00.123Z
  EXPECT_EQ(first.created_at.back(), 'Z');
  EXPECT_TRUE(first.source_image.empty());  // only with images

  Result<std::vector<ConflictEntry>> pending =
      ListConflicts(*admin_, options_, {"", "pending"}, true);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[1].id, n);
  EXPECT_NE(pending->front().source_image.find("\"title\": \"source\""), std::string::npos)
      << pending->front().source_image;
  EXPECT_NE(pending->front().target_image.find("\"title\": \"outside\""), std::string::npos);
  EXPECT_NE(pending->front().base_image.find("\"title\": \"base\""), std::string::npos);
  EXPECT_TRUE(pending->front().resolved_image.empty());

  Result<std::vector<ConflictEntry>> notes = ListConflicts(*admin_, options_, {"note", ""}, false);
  ASSERT_TRUE(notes.ok());
  ASSERT_EQ(notes->size(), 1u);
  EXPECT_EQ(notes->front().id, n);
  Result<std::vector<ConflictEntry>> none =
      ListConflicts(*admin_, options_, {"note", "parked"}, false);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(ConflictAdminTest, TakeSourceWritesTheSourceImageClean) {
  if (pg_.empty()) return;
  int64_t id = Pending("a");
  Result<ResolveOutcome> r = Resolve(id, ConflictTake::kSource);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->row_state, "live");
  EXPECT_EQ(r->entry.status, "resolved");
  EXPECT_EQ(r->entry.resolved_by, "alice");
  EXPECT_EQ(Cell("chat", "a",
                 "title || '/' || (meta -> 'tags')::text || '/' || _sluice_seq || '/' || "
                 "(_sluice_outside_at IS NULL)::text || '/' || (_sluice_base IS NULL)::text"),
            "source/[\"tx\", \"ts\"]/10/true/true");
  EXPECT_EQ(Log(id), "resolved/alice/true");
  EXPECT_EQ(One("SELECT resolved_data ->> 'title' FROM sync_metadata.conflict_log WHERE id = " +
                std::to_string(id)),
            "source");
  // Clean again: the next source change applies without a conflict.
  Apply("chat", R"({"default": {"strategy": "manual"}})",
        {Row("a", "source 2", "1245", "xs", 4000, 20)}, "[]", 20);
  EXPECT_EQ(Cell("chat", "a", "title"), "source 2");
  EXPECT_EQ(
      One("SELECT count(*) FROM sync_metadata.conflict_log WHERE deployment = '" + name_ + "'"),
      "1");
}

TEST_F(ConflictAdminTest, TakeTargetKeepsTheRowAndTheNextSourceChangeConflictsAgain) {
  if (pg_.empty()) return;
  int64_t id = Pending("a");
  Result<ResolveOutcome> r = Resolve(id, ConflictTake::kTarget, std::nullopt, "bob");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->target_changed_since);
  EXPECT_EQ(Cell("chat", "a",
                 "title || '/' || _sluice_seq || '/' || (_sluice_outside_at IS NOT NULL)::text "
                 "|| '/' || (_sluice_base ->> 'title')"),
            "outside/10/true/source");
  EXPECT_EQ(One("SELECT resolved_data ->> 'title' || '/' || resolved_by FROM "
                "sync_metadata.conflict_log WHERE id = " +
                std::to_string(id)),
            "outside/bob");
  // The source changes the row again: a new conflict (merged against the
  // source image it had), not a blind overwrite.
  Apply("chat", R"({"default": {"strategy": "manual"}})",
        {Row("a", "source 2", "1245", "xs", 4000, 21)}, "[]", 21);
  EXPECT_EQ(Cell("chat", "a", "title"), "outside");
  EXPECT_EQ(One("SELECT count(*) || '/' || max(base_data ->> 'title') FROM "
                "sync_metadata.conflict_log WHERE deployment = '" +
                name_ + "' AND status = 'pending'"),
            "1/source");
}

TEST_F(ConflictAdminTest, TakeTargetKeepsWhatTheTargetHoldsNow) {
  if (pg_.empty()) return;
  int64_t id = Pending("a");
  Exec("UPDATE \"" + name_ + "\".chat SET title = 'outside again' WHERE id = 'a'");
  Result<ResolveOutcome> r = Resolve(id, ConflictTake::kTarget);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->target_changed_since);
  EXPECT_EQ(Cell("chat", "a", "title"), "outside again");
}

TEST_F(ConflictAdminTest, TakeMergedComputesTheThreeWayMergeByTheTablePolicy) {
  if (pg_.empty()) return;
  int64_t id = Pending("a");
  TableConflictPolicy p;
  p.strategy = "manual";
  p.compare_field = "updated_at";
  p.rules = {{"chat", "union"},
             {"meta", "union"},
             {"title", "newest_wins"},
             {"updated_at", "newest_wins"}};
  options_.conflicts.tables["chat"] = p;
  Result<ResolveOutcome> r = Resolve(id, ConflictTake::kMerged);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Messages and tags from both sides; title and updated_at from the newer
  // side (the outside's 3000 against the source's 2000).
  EXPECT_EQ(Cell("chat", "a",
                 "(SELECT string_agg(m ->> 'id', ',') FROM jsonb_array_elements(chat -> "
                 "'messages') m) || '/' || (meta -> 'tags')::text || '/' || title || '/' || "
                 "updated_at || '/' || (_sluice_outside_at IS NOT NULL)::text || '/' || "
                 "(_sluice_base ->> 'title')"),
            "m1,m2,m3,m4/[\"tx\", \"to\", \"ts\"]/outside/3000/true/source");
  EXPECT_EQ(One("SELECT resolved_data -> 'meta' ->> 'tags' FROM sync_metadata.conflict_log "
                "WHERE id = " +
                std::to_string(id)),
            "[\"tx\", \"to\", \"ts\"]");
}

TEST_F(ConflictAdminTest, TakeMergedWithRowWritesItOverTheTarget) {
  if (pg_.empty()) return;
  int64_t id = Pending("a");
  // Refused, and nothing changes: unknown column, sluice column, key change,
  // a value the column type refuses, not an object.
  for (const auto& [row, message] : std::vector<std::pair<std::string, std::string>>{
           {R"({"nope": 1})", "mirror \"chat\" has no column \"nope\""},
           {R"({"_sluice_seq": 1})", "\"_sluice_seq\" is a sluice column"},
           {R"({"id": "b", "title": "x"})", "--row changes the key"},
           {R"({"archived": "many"})", "--row: "},
           {R"(["title"])", "--row: not a JSON object"},
           {R"({"title": )", "--row: not valid JSON"}}) {
    Result<ResolveOutcome> bad = Resolve(id, ConflictTake::kMerged, row);
    ASSERT_FALSE(bad.ok()) << row;
    EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument) << bad.status().ToString();
    EXPECT_NE(bad.status().message().find(message), std::string::npos) << bad.status().ToString();
  }
  EXPECT_EQ(Log(id), "pending/-/false");
  EXPECT_EQ(Cell("chat", "a", "title"), "outside");

  Result<ResolveOutcome> r =
      Resolve(id, ConflictTake::kMerged, R"({"id": "a", "title": "by hand", "archived": 1})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Cell("chat", "a",
                 "title || '/' || archived || '/' || (meta -> 'tags')::text || '/' || "
                 "(_sluice_base ->> 'title')"),
            "by hand/1/[\"tx\", \"to\"]/source");
  EXPECT_EQ(Log(id), "resolved/alice/true");
}

TEST_F(ConflictAdminTest, ResolveTwiceUnknownAndParkedAreClearErrors) {
  if (pg_.empty()) return;
  int64_t id = Pending("a");
  ASSERT_TRUE(Resolve(id, ConflictTake::kSource).ok());
  Result<ResolveOutcome> again = Resolve(id, ConflictTake::kTarget, std::nullopt, "bob");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Status::Code::kConflict);
  EXPECT_NE(again.status().message().find("conflict " + std::to_string(id) +
                                          " is resolved (by alice, at 20"),
            std::string::npos)
      << again.status().message();
  EXPECT_NE(again.status().message().find("not pending"), std::string::npos);
  EXPECT_EQ(Cell("chat", "a", "title"), "source");  // the second did nothing

  Result<ResolveOutcome> unknown = Resolve(id + 1000000, ConflictTake::kSource);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Status::Code::kNotFound);
  EXPECT_NE(unknown.status().message().find("does not exist in deployment " + name_),
            std::string::npos)
      << unknown.status().message();

  // Another deployment's entry is unknown here too.
  SinkOptions other = options_;
  other.deployment = name_ + "_x";
  ResolveRequest req;
  req.id = id;
  req.by = "eve";
  Result<ResolveOutcome> foreign = ResolveConflict(*admin_, other, req);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.status().code(), Status::Code::kNotFound);

  int64_t parked = std::stoll(
      One("INSERT INTO sync_metadata.conflict_log (deployment, table_name, row_key, seq, kind, "
          "reason, source_data, status) VALUES ('" +
          name_ +
          "', 'chat', '[\"p\"]', 13, 'rejected', 'value too long', '{}', 'parked') "
          "RETURNING id"));
  Result<ResolveOutcome> p = Resolve(parked, ConflictTake::kSource);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Status::Code::kConflict);
  EXPECT_NE(p.status().message().find("is a parked row (the sink rejected it: value too long)"),
            std::string::npos)
      << p.status().message();
}

// A pending entry goes stale when later source changes reach its row without
// updating it: an outside writer put the row back to its base, so later
// source writes were clean. (When the policy changes from manual, the next
// conflict on the row closes the pending entry in SQL: a and b below.) The
// row's _sluice_seq is then past the entry's seq: --take source (or merged)
// would write an older source image over a newer one, so it is refused;
// --take target closes the entry and leaves the row exactly as it is.
TEST_F(ConflictAdminTest, StaleEntryRefusesSourceAndTargetLeavesTheRowAlone) {
  if (pg_.empty()) return;
  auto state = [&](const std::string& id) {
    return Cell("chat", id,
                "title || '/' || _sluice_seq || '/' || (_sluice_outside_at IS NULL)::text || '/' "
                "|| coalesce(_sluice_base ->> 'title', '-')");
  };
  // a: manual -> source_wins (the row is clean at seq 20, the source's image).
  int64_t a = Pending("a");
  Apply("chat", R"({"default": {"strategy": "source_wins"}})",
        {Row("a", "source 2", "1245", "xs", 4000, 20)}, "[]", 20);
  // b: manual -> target_wins (the row still diverged, base the seq 21 image).
  int64_t b = Pending("b");
  Apply("chat", R"({"default": {"strategy": "target_wins"}})",
        {Row("b", "source 2", "1245", "xs", 4000, 21)}, "[]", 21);
  // c: the outside writer puts the row back to its base; the source writes it clean.
  int64_t c = Pending("c");
  Exec("UPDATE \"" + name_ +
       "\".chat SET title = 'base', chat = '{\"messages\": [{\"id\": \"m1\", \"content\": "
       "\"text\"}, {\"id\": \"m2\", \"content\": \"text\"}]}', meta = '{\"tags\": [\"tx\"]}', "
       "updated_at = 1000 WHERE id = 'c'");
  ASSERT_EQ(state("c"), "base/10/true/-");
  Apply("chat", R"({"default": {"strategy": "manual"}})",
        {Row("c", "source 2", "1245", "xs", 4000, 22)}, "[]", 22);
  ASSERT_EQ(state("a") + " " + state("b") + " " + state("c"),
            "source 2/20/true/- outside/21/false/source 2 source 2/22/true/-");
  EXPECT_EQ(Log(a).rfind("resolved/automatic/", 0), 0u) << Log(a);
  EXPECT_EQ(Log(b).rfind("resolved/automatic/", 0), 0u) << Log(b);

  for (auto [id, seq] : std::vector<std::pair<int64_t, int>>{{c, 22}}) {
    for (ConflictTake take : {ConflictTake::kSource, ConflictTake::kMerged}) {
      Result<ResolveOutcome> r = Resolve(id, take);
      ASSERT_FALSE(r.ok()) << id << " " << ConflictTakeName(take);
      EXPECT_EQ(r.status().code(), Status::Code::kConflict) << r.status().ToString();
      EXPECT_NE(r.status().message().find("conflict " + std::to_string(id) +
                                          " is stale: the source moved on (row now at seq " +
                                          std::to_string(seq) + ", the entry holds seq 10)"),
                std::string::npos)
          << r.status().message();
      EXPECT_EQ(Log(id), "pending/-/false");
    }
  }
  EXPECT_EQ(state("a") + " " + state("b") + " " + state("c"),
            "source 2/20/true/- outside/21/false/source 2 source 2/22/true/-");

  for (int64_t id : {c}) {
    Result<ResolveOutcome> r = Resolve(id, ConflictTake::kTarget);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->stale);
    EXPECT_FALSE(r->target_changed_since);  // the source changed it, not an outside writer
    EXPECT_EQ(Log(id), "resolved/alice/true");
  }
  // Untouched: the clean rows stay clean, b keeps the newer base.
  EXPECT_EQ(state("a") + " " + state("b") + " " + state("c"),
            "source 2/20/true/- outside/21/false/source 2 source 2/22/true/-");
  EXPECT_EQ(One("SELECT string_agg(resolved_data ->> 'title', ',' ORDER BY id) FROM "
                "sync_metadata.conflict_log WHERE id IN (" +
                std::to_string(c) + ")"),
            "source 2");
  // a and c are clean: the next source change applies without a conflict.
  // This deployment's entries only: the tests of other binaries share the cluster.
  const std::string count =
      "SELECT count(*) FROM sync_metadata.conflict_log WHERE deployment = '" + name_ + "'";
  int before = std::stoi(One(count));
  Apply("chat", R"({"default": {"strategy": "manual"}})",
        {Row("a", "source 3", "1", "x", 5000, 30), Row("c", "source 3", "1", "x", 5000, 30)}, "[]",
        30);
  EXPECT_EQ(Cell("chat", "a", "title") + "/" + Cell("chat", "c", "title"), "source 3/source 3");
  EXPECT_EQ(std::stoi(One(count)), before);
}

// Not stale: the outside writer put the row back to its base and no source
// change came since (the row is clean, at the entry's seq, but holds the
// older base): --take source writes the entry's image, the newest source
// version.
TEST_F(ConflictAdminTest, RevertedRowAtTheEntrysSeqTakesTheSource) {
  if (pg_.empty()) return;
  int64_t id = Pending("a");
  Exec("UPDATE \"" + name_ +
       "\".chat SET title = 'base', chat = '{\"messages\": [{\"id\": \"m1\", \"content\": "
       "\"text\"}, {\"id\": \"m2\", \"content\": \"text\"}]}', meta = '{\"tags\": [\"tx\"]}', "
       "updated_at = 1000 WHERE id = 'a'");
  Result<ResolveOutcome> r = Resolve(id, ConflictTake::kSource);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->stale);
  EXPECT_EQ(
      Cell("chat", "a", "title || '/' || _sluice_seq || '/' || (_sluice_outside_at IS NULL)::text"),
      "source/10/true");
}

// Column names that are the aliases of resolve's statements (t: the mirror
// row, r: the image record, and the others sql/01 uses): `to_jsonb(t)` would
// be the column t, not the row.
TEST_F(ConflictAdminTest, ColumnsNamedLikeTheStatementsAliases) {
  if (pg_.empty()) return;
  mirror_->Create("odd", {"id text, t text, r text, n bigint, e jsonb, d text, g text",
                          {"id", "t", "r", "n", "e", "d", "g"},
                          {"id"}});
  auto row = [](const std::string& id, const std::string& v, int seq) {
    return "{\"id\": \"" + id + "\", \"t\": \"" + v + "\", \"r\": \"r " + v +
           "\", \"n\": " + std::to_string(seq) + ", \"e\": {\"v\": \"" + v + "\"}, \"d\": \"d " +
           v + "\", \"g\": \"g\", \"_sluice_seq\": " + std::to_string(seq) + "}";
  };
  std::vector<int64_t> ids;
  for (const char* id : {"k1", "k2", "k3", "k4"}) {
    Apply("odd", "{}", {row(id, "base", 1)});
    Exec("UPDATE \"" + name_ + "\".odd SET t = 'outside', g = 'g outside' WHERE id = '" + id + "'");
    Apply("odd", R"({"default": {"strategy": "manual"}})", {row(id, "source", 10)}, "[]", 10);
    ids.push_back(mirror_->PendingId("odd", std::string("[\"") + id + "\"]"));
  }
  const std::string cells =
      "t || '/' || r || '/' || n || '/' || (e ->> 'v') || '/' || d || '/' || g || '/' || "
      "(_sluice_outside_at IS NULL)::text";
  Result<ResolveOutcome> s = Resolve(ids[0], ConflictTake::kSource);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(Cell("odd", "k1", cells), "source/r source/10/source/d source/g/true");
  Result<ResolveOutcome> t = Resolve(ids[1], ConflictTake::kTarget);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_FALSE(t->target_changed_since);
  EXPECT_EQ(Cell("odd", "k2", cells + " || '/' || (_sluice_base ->> 't')"),
            "outside/r base/1/base/d base/g outside/false/source");
  // Merged: t changed on both sides (no rule: the source), g outside only.
  Result<ResolveOutcome> m = Resolve(ids[2], ConflictTake::kMerged);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(Cell("odd", "k3", cells), "source/r source/10/source/d source/g outside/false");
  Result<ResolveOutcome> w = Resolve(ids[3], ConflictTake::kMerged, R"({"t": "by hand"})");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(Cell("odd", "k4", "t || '/' || g"), "by hand/g outside");
  EXPECT_EQ(One("SELECT string_agg(resolved_data ->> 't', ',' ORDER BY id) FROM "
                "sync_metadata.conflict_log WHERE table_name = 'odd' AND deployment = '" +
                name_ + "'"),
            "source,outside,source,by hand");
}

// A table without a key in SQLite is mirrored keyed by its rowid
// (_sluice_rowid, a sluice column that is the key): resolve writes it too.
TEST_F(ConflictAdminTest, RowidKeyedMirror) {
  if (pg_.empty()) return;
  mirror_->Create("log", {"_sluice_rowid bigint, msg text, n bigint",
                          {"_sluice_rowid", "msg", "n"},
                          {"_sluice_rowid"}});
  std::vector<int64_t> ids;
  for (int k = 1; k <= 3; ++k) {
    auto row = [&](const std::string& msg, int seq) {
      return "{\"_sluice_rowid\": " + std::to_string(k) + ", \"msg\": \"" + msg +
             "\", \"n\": 0, \"_sluice_seq\": " + std::to_string(seq) + "}";
    };
    Apply("log", "{}", {row("base", 1)});
    Exec("UPDATE \"" + name_ + "\".log SET n = 5 WHERE _sluice_rowid = " + std::to_string(k));
    Apply("log", R"({"default": {"strategy": "manual"}})", {row("source", 10)}, "[]", 10);
    ids.push_back(mirror_->PendingId("log", "[" + std::to_string(k) + "]"));
  }
  const std::string cells = "msg || '/' || n || '/' || (_sluice_outside_at IS NULL)::text";
  Result<ResolveOutcome> s = Resolve(ids[0], ConflictTake::kSource);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(Cell("log", "1", cells), "source/0/true");
  Result<ResolveOutcome> m = Resolve(ids[1], ConflictTake::kMerged);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(Cell("log", "2", cells), "source/5/false");  // msg from the source, n from outside
  // --row names user columns only; the key stays the entry's.
  Result<ResolveOutcome> bad = Resolve(ids[2], ConflictTake::kMerged, R"({"_sluice_rowid": 9})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"_sluice_rowid\" is a sluice column"), std::string::npos)
      << bad.status().message();
  Result<ResolveOutcome> w = Resolve(ids[2], ConflictTake::kMerged, R"({"msg": "by hand"})");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(Cell("log", "3", cells), "by hand/5/false");
  EXPECT_EQ(One("SELECT count(*) FROM \"" + name_ + "\".log"), "3");
}

TEST_F(ConflictAdminTest, OutsideDeleteUnderManual) {
  if (pg_.empty()) return;
  // Sluice wrote d and e; an outside writer deletes both for real; the source
  // updates both: update_deleted, pending, the rows kept as marked tombstones.
  Apply("chat", "{}", {Row("d", "base", "1", "x", 1000, 1), Row("e", "base", "1", "x", 1000, 2)});
  Exec("DELETE FROM \"" + name_ + "\".chat WHERE id IN ('d', 'e')");
  Apply("chat", R"({"default": {"strategy": "manual"}})",
        {Row("d", "source", "1", "x", 2000, 5), Row("e", "source", "1", "x", 2000, 6)}, "[]", 6);
  auto entry = [&](const std::string& key) {
    return std::stoll(One("SELECT id FROM sync_metadata.conflict_log WHERE deployment = '" + name_ +
                          "' AND row_key = '[\"" + key +
                          "\"]' AND status = 'pending' AND kind = 'update_deleted'"));
  };
  int64_t d = entry("d");
  int64_t e = entry("e");

  Result<ResolveOutcome> merged = Resolve(d, ConflictTake::kMerged);
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(merged.status().message().find("there is nothing to merge"), std::string::npos)
      << merged.status().message();

  Result<ResolveOutcome> target = Resolve(d, ConflictTake::kTarget);
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  EXPECT_EQ(target->row_state, "deleted");
  EXPECT_EQ(Cell("chat", "d",
                 "(_sluice_deleted_at IS NOT NULL)::text || '/' || "
                 "(_sluice_base ->> 'title')"),
            "true/source");

  Result<ResolveOutcome> source = Resolve(e, ConflictTake::kSource);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ(source->row_state, "live");
  EXPECT_EQ(Cell("chat", "e",
                 "title || '/' || (_sluice_deleted_at IS NULL)::text || '/' || "
                 "(_sluice_outside_at IS NULL)::text"),
            "source/true/true");

  // A row gone for good (hard-deleted outside after the entry): target keeps
  // it gone, source brings it back.
  int64_t f = Pending("f");
  int64_t g = Pending("g");
  Exec("DELETE FROM \"" + name_ + "\".chat WHERE id IN ('f', 'g')");
  Result<ResolveOutcome> gone = Resolve(f, ConflictTake::kTarget);
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_EQ(gone->row_state, "missing");
  EXPECT_EQ(Cell("chat", "f", "id"), "(no row)");
  Result<ResolveOutcome> back = Resolve(g, ConflictTake::kSource);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(Cell("chat", "g", "title || '/' || _sluice_seq"), "source/10");
  EXPECT_EQ(One("SELECT (consumed_at IS NOT NULL)::text FROM sync_metadata.outside_deletes "
                "WHERE deployment = '" +
                name_ + "' AND row_key = '[\"g\"]'"),
            "true");
}

TEST_F(ConflictAdminTest, WaitsForABatchInFlightOrSaysTheAgentIsApplying) {
  if (pg_.empty()) return;
  int64_t id = Pending("a");
  // A batch in flight: sluice_advance holds the position row until COMMIT.
  Pg batch(pg_);
  batch.Query("BEGIN");
  batch.Query("SELECT 1 FROM sync_metadata.source_position WHERE deployment = '" + name_ +
              "' FOR UPDATE");
  ResolveRequest req;
  req.id = id;
  req.take = ConflictTake::kSource;
  req.by = "alice";
  req.lock_timeout_ms = 300;
  Result<ResolveOutcome> busy = ResolveConflict(*admin_, options_, req);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().code(), Status::Code::kBusy);
  EXPECT_NE(busy.status().message().find("the agent is applying a batch; try again"),
            std::string::npos)
      << busy.status().message();
  EXPECT_EQ(Log(id), "pending/-/false");

  // Now the batch changes the row (the source's newest image for the pending
  // entry) and commits while the resolve waits: the resolve sees that image.
  std::thread finisher([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    batch.Query("SELECT \"" + name_ +
                "\".apply_chat('{\"default\": {\"strategy\": \"manual\"}}', '[" +
                Row("a", "source late", "1245", "xs", 2500, 30) + "]', '[]', 30)");
    batch.Query("COMMIT");
  });
  req.lock_timeout_ms = 30000;
  auto t0 = std::chrono::steady_clock::now();
  Result<ResolveOutcome> r = ResolveConflict(*admin_, options_, req);
  auto waited = std::chrono::steady_clock::now() - t0;
  finisher.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GE(waited, std::chrono::milliseconds(400));
  EXPECT_EQ(Cell("chat", "a", "title || '/' || _sluice_seq"), "source late/30");
  EXPECT_EQ(Log(id), "resolved/alice/true");
}

// A stand-in agent applies batch after batch to the conflicted rows (each a
// transaction that takes the position row first, as sluice_advance does)
// while two resolves run: each lands between two batches, takes the newest
// source image the entry holds then, and the batches after it behave as the
// design says: after source the row is clean (applied, no new entry), after
// target it is still diverged (a new pending entry, the row kept).
TEST_F(ConflictAdminTest, ResolvesBetweenTheBatchesOfARunningAgent) {
  if (pg_.empty()) return;
  int64_t a = Pending("a");
  int64_t b = Pending("b");
  constexpr int kBatches = 30;
  std::atomic<int> applied{0};
  std::thread agent([&] {
    Pg conn(pg_);
    for (int i = 1; i <= kBatches; ++i) {
      int64_t seq = 100 + i;
      conn.Query("BEGIN");
      conn.Query("SELECT 1 FROM sync_metadata.source_position WHERE deployment = '" + name_ +
                 "' FOR UPDATE");
      conn.Query("SELECT \"" + name_ +
                 "\".apply_chat('{\"default\": {\"strategy\": \"manual\"}}', '[" +
                 Row("a", "a v" + std::to_string(i), "12", "x", 5000 + i, seq) + ", " +
                 Row("b", "b v" + std::to_string(i), "12", "x", 5000 + i, seq) + "]', '[]', " +
                 std::to_string(seq) + ")");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the batch is in flight
      conn.Query("COMMIT");
      applied = i;
    }
  });
  while (applied < 5) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Result<ResolveOutcome> ra = Resolve(a, ConflictTake::kSource);
  Result<ResolveOutcome> rb = Resolve(b, ConflictTake::kTarget);
  int during = applied;
  agent.join();
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_LT(during, kBatches) << "the resolves did not run while batches were applied";
  // a: the source image it took was the newest then; every later batch applied.
  EXPECT_NE(ra->entry.resolved_image.find("\"title\": \"a v"), std::string::npos);
  EXPECT_EQ(
      Cell("chat", "a", "title || '/' || _sluice_seq || '/' || (_sluice_outside_at IS NULL)::text"),
      "a v30/130/true");
  EXPECT_EQ(One("SELECT string_agg(status, ',' ORDER BY id) FROM sync_metadata.conflict_log "
                "WHERE deployment = '" +
                name_ + "' AND row_key = '[\"a\"]'"),
            "resolved");
  // b: kept as the outside wrote it; the batches after the resolve are a new
  // pending entry holding the newest source image.
  EXPECT_EQ(Cell("chat", "b", "title"), "outside");
  EXPECT_EQ(One("SELECT string_agg(status || ':' || coalesce(resolved_by, '-') || ':' || "
                "(source_data ->> 'title'), ',' ORDER BY id) FROM sync_metadata.conflict_log "
                "WHERE deployment = '" +
                name_ + "' AND row_key = '[\"b\"]'"),
            "resolved:alice:" +
                One("SELECT source_data ->> 'title' FROM sync_metadata.conflict_log WHERE id = " +
                    std::to_string(b)) +
                ",pending:-:b v30");
  EXPECT_NE(One("SELECT source_data ->> 'title' FROM sync_metadata.conflict_log WHERE id = " +
                std::to_string(b)),
            "b v30");
}

TEST_F(ConflictAdminTest, ThroughPgbouncerPoolOfOneLeavesNoSessionState) {
  if (pg_.empty()) return;
  const char* pool1 = std::getenv("SLUICE_TEST_PGBOUNCER_POOL1");
  if (pool1 == nullptr || *pool1 == '\0') GTEST_SKIP() << "SLUICE_TEST_PGBOUNCER_POOL1 not set";
  int64_t id = Pending("a");
  SinkOptions via = options_;
  via.url = pool1;
  std::unique_ptr<SinkAdmin> admin = Connect(via);
  ASSERT_NE(admin, nullptr);
  Result<std::vector<ConflictEntry>> list = ListConflicts(*admin, via, {"", "pending"}, false);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 1u);
  ResolveRequest req;
  req.id = id;
  req.take = ConflictTake::kTarget;
  req.by = "alice";
  Result<ResolveOutcome> r = ResolveConflict(*admin, via, req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // The next client of the same server connection sees none of its settings.
  Pg next(pool1);
  testing::PgRows rows = next.Query(
      "SELECT current_setting('lock_timeout'), coalesce(current_setting('sluice.writer', true), "
      "'')");
  ASSERT_EQ(rows.rows.size(), 1u);
  EXPECT_EQ(rows.rows[0][0].value_or(""), "0");
  EXPECT_EQ(rows.rows[0][1].value_or(""), "");
  EXPECT_EQ(Log(id), "resolved/alice/true");
}

// ---------------------------------------------------------------- pure helpers

TEST(ConflictAdminPure, ParseTriggerArgs) {
  EXPECT_EQ(ParseTriggerArgs("\\x"), std::vector<std::string>{});
  EXPECT_EQ(ParseTriggerArgs("\\x6431006964006b3200"),
            (std::vector<std::string>{"d1", "id", "k2"}));
  EXPECT_EQ(ParseTriggerArgs("\\x00"), std::vector<std::string>{""});
  EXPECT_EQ(ParseTriggerArgs("\\x6431"), std::nullopt);  // no terminating NUL
  EXPECT_EQ(ParseTriggerArgs("\\x6g00"), std::nullopt);
  EXPECT_EQ(ParseTriggerArgs("6431"), std::nullopt);
  EXPECT_EQ(ParseTriggerArgs("\\x643"), std::nullopt);
}

TEST(ConflictAdminPure, JsonObjectKeysAndRowColumns) {
  Result<std::vector<std::string>> k = JsonObjectKeys(R"({"b": 1, "a": {"x": 2}})", "--row");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(*k, (std::vector<std::string>{"b", "a"}));
  EXPECT_FALSE(JsonObjectKeys("[1]", "--row").ok());
  EXPECT_FALSE(JsonObjectKeys("{", "--row").ok());
  EXPECT_FALSE(JsonObjectKeys("{} {}", "--row").ok());
  Result<std::vector<std::string>> dup = JsonObjectKeys(R"({"a": 1, "a": 2})", "--row");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message(), "--row: column \"a\" appears twice");

  std::vector<std::string> cols = {"id", "title"};
  EXPECT_TRUE(CheckRowColumns({"title", "id"}, cols, "chat").ok());
  EXPECT_EQ(CheckRowColumns({"titel"}, cols, "chat").message(),
            "--row: mirror \"chat\" has no column \"titel\"");
  EXPECT_EQ(CheckRowColumns({"_sluice_deleted_at"}, cols, "chat").code(),
            Status::Code::kInvalidArgument);
}

TEST(ConflictAdminPure, ResolveWriteSqlKeepsTheKeyOutOfTheUpdate) {
  std::string sql = ResolveWriteSql("\"s\".\"t\"", {"id", "v"}, {"id"});
  EXPECT_NE(sql.find("ON CONFLICT (\"id\") DO UPDATE SET \"v\" = EXCLUDED.\"v\", "),
            std::string::npos)
      << sql;
  EXPECT_EQ(sql.find("\"id\" = EXCLUDED"), std::string::npos) << sql;
}

}  // namespace
}  // namespace sluice
