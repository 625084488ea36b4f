// LedgerWriter and LedgerAudit (see ledger_audit.h).
#include "tests/integration/ledger_audit.h"

#include <chrono>
#include <map>
#include <random>
#include <set>

namespace sluice::e2e {

using testing::PgRows;
using testing::PgTable;
using testing::QuoteIdent;

void LedgerWriter::Write(Sqlite& db, int rows) {
  db.Exec("BEGIN");
  for (int i = 0; i < rows; ++i) {
    int64_t id = ++next_id_;
    db.Query(
        "INSERT INTO ledger (id, note) VALUES (?, ?)",
        {SqlValue::Int(id), SqlValue::Text(Bad(id) ? std::string("bad \xff ") + std::to_string(id)
                                                   : "entry " + std::to_string(id))});
  }
  db.Exec("COMMIT");
}

void LedgerWriter::Start(int pause_ms) {
  stop_ = false;
  thread_ = std::thread([this, pause_ms] {
    try {
      Sqlite db(db_path_);
      std::mt19937 rng(5);
      while (!stop_) {
        Write(db, 1 + static_cast<int>(rng() % 20));
        std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));  // pacing only
      }
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  });
}

void LedgerWriter::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

CompareOptions LedgerWriter::ParkedBadRows() {
  CompareOptions compare;
  compare.is_parked = [](const std::string& table, const SourceRowRef& row) {
    const SqlValue* id = row.Get("id");  // LedgerAudit::Check checks conflict_log
    return table == "ledger" && id != nullptr && Bad(id->i);
  };
  return compare;
}

LedgerAudit::LedgerAudit(Pg& pg, std::string deployment)
    : pg_(pg), deployment_(std::move(deployment)), schema_(deployment_ + "_audit") {}

void LedgerAudit::Install() {
  const std::string applied = PgTable(schema_, "applied");
  pg_.Query("CREATE SCHEMA " + QuoteIdent(schema_));
  pg_.Query("CREATE TABLE " + applied +
            " (id bigint, seq bigint, n int NOT NULL, PRIMARY KEY (id, seq))");
  pg_.Query("CREATE FUNCTION " + PgTable(schema_, "count_applied") +
            "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO " + applied +
            " AS a VALUES (NEW.id, NEW._sluice_seq, 1) ON CONFLICT (id, seq) DO UPDATE SET n = "
            "a.n + 1; RETURN NULL; END $$");
  pg_.Query("CREATE TRIGGER count_applied AFTER INSERT OR UPDATE ON " +
            PgTable(deployment_, "ledger") + " FOR EACH ROW EXECUTE FUNCTION " +
            PgTable(schema_, "count_applied") + "()");
}

LedgerAudit::Result LedgerAudit::Check(Sqlite& app, int64_t ledger_rows) {
  Result out;
  auto problem = [&out](std::string p) { out.problems.push_back(std::move(p)); };
  const std::string applied = PgTable(schema_, "applied");
  std::set<int64_t> good, bad;
  for (auto& r : app.Query("SELECT id FROM ledger")) {
    (LedgerWriter::Bad(r[0].i) ? bad : good).insert(r[0].i);
  }
  if (static_cast<int64_t>(good.size() + bad.size()) != ledger_rows) {
    problem("the app's ledger holds " + std::to_string(good.size() + bad.size()) +
            " rows, the writer wrote " + std::to_string(ledger_rows));
  }
  PgRows twice = pg_.Query("SELECT id, string_agg(seq || ' x' || n, ', ') FROM " + applied +
                           " GROUP BY id HAVING sum(n) <> 1 ORDER BY id LIMIT 10");
  for (auto& r : twice.rows) {
    problem("ledger row " + r[0].value_or("?") +
            " was applied more than once (seq x times): " + r[1].value_or("?"));
  }
  std::set<int64_t> counted;
  for (auto& r : pg_.Query("SELECT id FROM " + applied).rows) counted.insert(std::stoll(*r[0]));
  if (counted != good) {
    std::vector<int64_t> missing, extra;
    for (int64_t id : good) {
      if (counted.count(id) == 0) missing.push_back(id);
    }
    for (int64_t id : counted) {
      if (good.count(id) == 0) extra.push_back(id);
    }
    problem("the rows written at the sink are not the good ledger rows: " +
            std::to_string(missing.size()) + " never written (first " +
            (missing.empty() ? "-" : std::to_string(missing[0])) + "), " +
            std::to_string(extra.size()) + " written but not good (first " +
            (extra.empty() ? "-" : std::to_string(extra[0])) + ")");
  }
  PgRows dup = pg_.Query(
      "SELECT table_name, row_key::text, seq, count(*) FROM sync_metadata.conflict_log WHERE "
      "deployment = $1 GROUP BY 1, 2, 3 HAVING count(*) > 1 LIMIT 10",
      {deployment_});
  for (auto& r : dup.rows) {
    problem("conflict_log holds " + r[3].value_or("?") + " copies of " + r[0].value_or("?") + " " +
            r[1].value_or("") + " seq " + r[2].value_or(""));
  }
  std::multiset<int64_t> parked;
  for (auto& r : pg_.Query("SELECT table_name, source_data->>'id' FROM "
                           "sync_metadata.conflict_log WHERE deployment = $1",
                           {deployment_})
                     .rows) {
    if (r[0] != std::optional<std::string>("ledger")) {
      problem("an unexpected parked row in " + r[0].value_or("?"));
    }
    if (r[1]) parked.insert(std::stoll(*r[1]));
  }
  if (parked != std::multiset<int64_t>(bad.begin(), bad.end())) {
    problem("each invalid ledger row must be parked exactly once: " +
            std::to_string(parked.size()) + " parked, " + std::to_string(bad.size()) + " invalid");
  }
  out.good = static_cast<int64_t>(good.size());
  out.bad = static_cast<int64_t>(bad.size());
  return out;
}

void LedgerAudit::Drop() {
  PgRows ignored;
  std::string err;
  pg_.TryQuery("DROP SCHEMA " + QuoteIdent(schema_) + " CASCADE", &ignored, &err);
}

}  // namespace sluice::e2e
