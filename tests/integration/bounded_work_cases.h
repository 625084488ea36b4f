// The bounded-work cases (issue #5 item 13), shared by e2e_bounded_work (sizes
// that run in seconds) and e2e_bounded_work_heavy (the sizes the issue names:
// 1,000,000 rows under statement_timeout = 2s, 2,000 tables at
// max_connections = 40; slow suite).
#pragma once

#include <string>
#include <vector>

#include "common/sql_quote.h"
#include "tests/integration/e2e_support.h"
#include "tests/integration/scratch_cluster.h"

namespace sluice::e2e {

class BoundedWork : public E2eTest {
 protected:
  // A table of `rows` rows whose mirror already holds them (plus 100 rows the
  // source does not have, and stale values): the first run reads it whole, so
  // the sink tombstones and rewrites every row in one transaction. With
  // statement_timeout = `timeout` on the agent's sessions, no statement may
  // take that long: every row must arrive, the 100 extra rows be tombstones.
  void FullReadOfFilledMirror(int64_t rows, const std::string& timeout, seconds limit) {
    std::string db_path = dir_->file("big.db");
    {
      Sqlite db(db_path);
      db.Exec("PRAGMA journal_mode=WAL");
      db.Exec("CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)");
      db.Exec("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < " +
              std::to_string(rows) +
              ") INSERT INTO big SELECT i, 'row ' || i || ' of the big table', i * 7 FROM c");
    }
    std::string url = pg_url_ + " options='-c statement_timeout=" + timeout + "'";
    std::string config = WriteConfig(db_path, url);
    ASSERT_EQ(Init(config).exit_code, 0);
    std::string big = PgTable(deployment_, "big");
    // What an earlier sync left there: written as sluice writes (not an
    // outside write, which would be a conflict to log).
    pg_->Query("BEGIN; SELECT set_config('sluice.writer', " + QuoteLiteral(deployment_) +
               ", true); INSERT INTO " + big +
               " (id, name, n, _sluice_seq, _sluice_outside_at) SELECT g, 'row ' || g || ' of "
               "the big table', CASE WHEN g % 10 = 0 THEN -1 ELSE g * 7 END, 0, NULL FROM "
               "generate_series(1, " +
               std::to_string(rows + 100) + ") g; COMMIT");
    pg_->Query("ANALYZE " + big);

    AgentProcess* agent = StartAgent(config);
    auto position = [&] {
      auto v =
          pg_->Scalar("SELECT applied_seq FROM sync_metadata.source_position WHERE deployment = $1",
                      {deployment_});
      return v ? std::stoll(*v) : -2;
    };
    bool timed_out = false;
    ASSERT_TRUE(WaitUntil(
        [&] {
          timed_out = agent->Log().find("statement timeout") != std::string::npos;
          return timed_out || position() >= 0 || !agent->Running();
        },
        limit));
    ASSERT_FALSE(timed_out) << "a statement hit statement_timeout = " << timeout << ":\n"
                            << agent->Log();
    ASSERT_TRUE(agent->Running()) << agent->Log();
    ASSERT_GE(position(), 0);
    EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + big +
                             " WHERE _sluice_deleted_at IS NULL AND n = id * 7 AND name = 'row ' "
                             "|| id || ' of the big table'"),
              rows);
    EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + big + " WHERE _sluice_deleted_at IS NULL"),
              rows);
    EXPECT_EQ(pg_->ScalarInt("SELECT count(*) FROM " + big +
                             " WHERE _sluice_deleted_at IS NOT NULL "
                             "AND id > " +
                             std::to_string(rows)),
              100);
    EXPECT_EQ(
        pg_->ScalarInt("SELECT count(*) FROM sync_metadata.conflict_log WHERE deployment = $1",
                       {deployment_}),
        0);
    agent->Signal(SIGTERM);
    EXPECT_EQ(agent->WaitExit(seconds(30)), 0);
  }

  // `tables` tables created at the sink by `sluice init`, then `added` more
  // that the app creates while the agent runs (created at the sink by the
  // agent), at a server with these settings (a small lock table). Every
  // mirror table must exist with its one row.
  void ManyTables(int tables, int added, const std::vector<std::string>& settings, seconds limit) {
    ScratchCluster cluster(settings);
    std::string db_path = dir_->file("many.db");
    auto create = [&](const std::string& prefix, int count) {
      Sqlite db(db_path);
      db.Exec("PRAGMA journal_mode=WAL");
      db.Exec("BEGIN");
      for (int i = 0; i < count; ++i) {
        std::string name = prefix + std::to_string(i);
        db.Exec("CREATE TABLE " + name + " (id INTEGER PRIMARY KEY, v TEXT)");
        db.Exec("INSERT INTO " + name + " VALUES (1, 'row of " + name + "')");
      }
      db.Exec("COMMIT");
    };
    create("a", tables);
    std::string config = WriteConfig(db_path, cluster.conninfo());
    CommandResult init = RunSluice({"init", "--config", config}, limit);
    ASSERT_EQ(init.exit_code, 0) << init.Describe();
    AgentProcess* agent = StartAgent(config);
    AgentStatus st = WaitCaughtUp(config, agent, limit);
    ASSERT_TRUE(st.CaughtUp()) << st.raw << "\n" << agent->Log();
    create("b", added);
    st = WaitCaughtUp(config, agent, limit);
    ASSERT_TRUE(st.CaughtUp()) << st.raw << "\n" << agent->Log();
    Pg sink(cluster.conninfo());
    auto live_rows = [&] {
      // One statement per table: one over all of them would need their locks at once.
      int64_t n = 0;
      for (auto [prefix, count] : {std::pair{"a", tables}, std::pair{"b", added}}) {
        for (int i = 0; i < count; ++i) {
          std::string name = prefix + std::to_string(i);
          PgRows r;
          std::string err;
          if (!sink.TryQuery("SELECT count(*) FROM " + PgTable(deployment_, name) +
                                 " WHERE _sluice_deleted_at IS NULL AND v = $1",
                             &r, &err, {"row of " + name})) {
            continue;  // not created yet
          }
          n += std::stoll(r.rows[0][0].value_or("0"));
        }
      }
      return n;
    };
    ASSERT_TRUE(WaitUntil([&] { return live_rows() == tables + added; }, seconds(30)))
        << live_rows() << " live rows\n"
        << agent->Log();
    EXPECT_EQ(sink.ScalarInt("SELECT count(*) FROM pg_tables WHERE schemaname = $1", {deployment_}),
              tables + added);
    agent->Signal(SIGTERM);
    EXPECT_EQ(agent->WaitExit(seconds(30)), 0);
  }
};

}  // namespace sluice::e2e
