// Helpers for capture/ tests: an "app" connection that writes the SQLite file
// the way a client application would (raw sqlite3, its own settings), fixture
// loading, and draining a Batch into a vector for assertions. Test thread only.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "capture/capture_options.h"
#include "common/change.h"
#include "common/status.h"
#include "common/value.h"

namespace sluice {

// Readable gtest output for values.
inline void PrintTo(const Value& v, std::ostream* os) {
  *os << KindName(v.kind) << ":";
  switch (v.kind) {
    case Value::Kind::kNull:
      break;
    case Value::Kind::kInteger:
      *os << v.integer;
      break;
    case Value::Kind::kReal:
      *os << v.real;
      break;
    case Value::Kind::kText:
    case Value::Kind::kBlob:
      *os << '"' << (v.bytes.size() > 40 ? v.bytes.substr(0, 40) + "..." : v.bytes) << '"';
      break;
  }
}

}  // namespace sluice

namespace sluice::testing {

// An application connection: no sluice settings, default autocheckpoint.
class AppDb {
 public:
  explicit AppDb(const std::string& path, bool recursive_triggers = true) {
    int rc =
        sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    EXPECT_EQ(rc, SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
    if (recursive_triggers) Exec("PRAGMA recursive_triggers=ON");
  }
  ~AppDb() { sqlite3_close_v2(db_); }
  AppDb(const AppDb&) = delete;
  AppDb& operator=(const AppDb&) = delete;

  sqlite3* handle() const { return db_; }

  // Runs SQL; returns the SQLite result code (and records a failure if not OK
  // unless `expect_ok` is false).
  int Exec(const std::string& sql, bool expect_ok = true) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (expect_ok) {
      EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "") << " in: " << sql.substr(0, 200);
    }
    sqlite3_free(err);
    return rc;
  }

  // Executes one statement with bound values.
  int Run(const std::string& sql, const std::vector<Value>& params) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr);
    EXPECT_EQ(rc, SQLITE_OK) << sqlite3_errmsg(db_);
    if (rc != SQLITE_OK) return rc;
    for (size_t i = 0; i < params.size(); ++i) {
      const Value& v = params[i];
      int idx = static_cast<int>(i + 1);
      switch (v.kind) {
        case Value::Kind::kNull:
          sqlite3_bind_null(s, idx);
          break;
        case Value::Kind::kInteger:
          sqlite3_bind_int64(s, idx, v.integer);
          break;
        case Value::Kind::kReal:
          sqlite3_bind_double(s, idx, v.real);
          break;
        case Value::Kind::kText:
          sqlite3_bind_text64(s, idx, v.bytes.data(), v.bytes.size(), SQLITE_TRANSIENT,
                              SQLITE_UTF8);
          break;
        case Value::Kind::kBlob:
          sqlite3_bind_blob64(s, idx, v.bytes.empty() ? "" : v.bytes.data(), v.bytes.size(),
                              SQLITE_TRANSIENT);
          break;
      }
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
  }

  // All rows of a query, every column as text (NULL as "<null>").
  std::vector<std::vector<std::string>> Query(const std::string& sql) {
    std::vector<std::vector<std::string>> rows;
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db_);
    while (s != nullptr && sqlite3_step(s) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(s); ++i) {
        const unsigned char* t = sqlite3_column_text(s, i);
        row.push_back(t == nullptr ? "<null>"
                                   : std::string(reinterpret_cast<const char*>(t),
                                                 static_cast<size_t>(sqlite3_column_bytes(s, i))));
      }
      rows.push_back(std::move(row));
    }
    sqlite3_finalize(s);
    return rows;
  }

  std::string Scalar(const std::string& sql) {
    auto rows = Query(sql);
    return rows.empty() || rows[0].empty() ? "" : rows[0][0];
  }

 private:
  sqlite3* db_ = nullptr;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  EXPECT_TRUE(out.good()) << "cannot write " << path;
}

// The Open WebUI schema fixture's text (SLUICE_SCHEMA_FIXTURE).
inline std::string OpenWebuiSchema() {
  const char* p = std::getenv("SLUICE_SCHEMA_FIXTURE");
  std::string path = p != nullptr ? p : "/work/shared/fixtures/openwebui/schema.sql";
  std::string text = ReadFile(path);
  EXPECT_FALSE(text.empty()) << "cannot read schema fixture " << path;
  return text;
}

struct Drained {
  Change::Kind kind;
  std::string table;
  int64_t seq;
  std::vector<Value> values;
  bool updates_existing = false;
};

inline std::vector<Drained> Drain(Batch* batch) {
  std::vector<Drained> out;
  EXPECT_TRUE(batch->changes.Rewind().ok());
  Change c;
  for (;;) {
    Result<bool> more = batch->changes.Next(&c);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    out.push_back({c.kind, batch->tables.at(c.table).name, c.seq, c.values, c.updates_existing});
  }
  return out;
}

inline CaptureOptions OptionsFor(const std::string& path) {
  CaptureOptions o;
  o.path = path;
  o.busy_timeout_ms = 5000;
  return o;
}

}  // namespace sluice::testing
