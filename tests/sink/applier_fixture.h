// The fixture of the BatchApplier tests against a real PostgreSQL: a libuv
// loop, a connected PgConnection, an applier on a fresh deployment and
// schema, and small builders for shapes, changes and batches. Shared by
// batch_applier_test.cc and fence_test.cc.
#pragma once

#include <gtest/gtest.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sink/batch_applier.h"
#include "sink/sink_admin.h"
#include "tests/sink/sink_test_util.h"
#include "tests/test_support.h"

namespace sluice::testing {

inline constexpr const char* kSource = "33333333-3333-4333-8333-333333333333";
inline constexpr uint8_t kInt = Value::Bit(Value::Kind::kInteger);
inline constexpr uint8_t kText = Value::Bit(Value::Kind::kText);

inline TableShape ChatShape() {
  TableShape t;
  t.name = "chat";
  t.identity = TableShape::Identity::kUniqueIndex;
  t.columns = {Col("id", "VARCHAR(255)", 1, kText), Col("created_at", "DATETIME", 0, kInt),
               Col("chat", "JSON", 0, kText), Col("pinned", "BOOLEAN", 0, kInt)};
  return t;
}

inline TableShape TagShape() {
  TableShape t;
  t.name = "tag";
  t.columns = {Col("id", "VARCHAR(255)", 1, kText), Col("user_id", "VARCHAR(255)", 2, kText),
               Col("name", "TEXT", 0, kText)};
  return t;
}

inline Change Upsert(uint32_t table, int64_t seq, std::vector<Value> values) {
  Change c;
  c.kind = Change::Kind::kUpsert;
  c.table = table;
  c.seq = seq;
  c.values = std::move(values);
  return c;
}

// An upsert the journal read as an UPDATE of an existing row (Change::updates_existing).
inline Change Update(uint32_t table, int64_t seq, std::vector<Value> values) {
  Change c = Upsert(table, seq, std::move(values));
  c.updates_existing = true;
  return c;
}

inline Change Delete(uint32_t table, int64_t seq, std::vector<Value> key) {
  Change c = Upsert(table, seq, std::move(key));
  c.kind = Change::Kind::kDelete;
  return c;
}

inline Value T(const char* s) { return Value::Text(s); }
inline Value I(int64_t v) { return Value::Integer(v); }

// A libuv loop, a connected PgConnection and an applier; Close() asserts a clean loop.
class ApplierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = testing::PgConninfoOrSkip();
    if (pg_.empty()) return;
    name_ = testing::UniqueName("apply");
    options_.url = pg_;
    options_.schema = name_;
    options_.deployment = name_;
    Result<std::unique_ptr<SinkAdmin>> admin = SinkAdmin::Connect(options_);
    ASSERT_TRUE(admin.ok()) << admin.status().ToString();
    ASSERT_TRUE((*admin)->InstallControlPlane().ok());
    ASSERT_TRUE((*admin)->EnsurePosition(kSource).ok());
    admin_ = std::move(admin.value());

    ASSERT_EQ(uv_loop_init(&loop_), 0);
    loop_open_ = true;
    conn_ = std::make_unique<PgConnection>(&loop_, pg_);
    std::optional<Status> connected;
    conn_->Connect([&](Status st) { connected = st; });
    ASSERT_TRUE(RunUntil([&] { return connected.has_value(); }));
    ASSERT_TRUE(connected->ok()) << connected->ToString();
    applier_ = std::make_unique<BatchApplier>(options_);
  }

  void TearDown() override {
    if (!loop_open_) return;
    applier_.reset();
    bool closed = false;
    conn_->Close([&] { closed = true; });
    EXPECT_TRUE(RunUntil([&] { return closed; }));
    conn_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  // Runs the loop until pred() holds or 60 s pass.
  bool RunUntil(const std::function<bool()>& pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (!pred()) uv_sleep(1);
    }
    return true;
  }

  Status Apply(Batch* batch, ApplyStats* stats_out = nullptr) {
    return ApplyVia(applier_.get(), conn_.get(), batch, stats_out);
  }

  Status ApplyVia(BatchApplier* applier, PgConnection* conn, Batch* batch,
                  ApplyStats* stats_out = nullptr) {
    std::optional<Status> result;
    ApplyStats stats;
    applier->Apply(conn, batch, [&](Status st, ApplyStats s) {
      result = st;
      stats = s;
    });
    EXPECT_TRUE(RunUntil([&] { return result.has_value(); }));
    if (stats_out != nullptr) *stats_out = stats;
    return result.value_or(Status::Internal("timed out"));
  }

  Batch NewBatch(int64_t after, int64_t to, std::vector<TableShape> tables) {
    Batch b;
    b.source_id = kSource;
    b.after_seq = after;
    b.snapshot_seq = to;
    b.tables = std::move(tables);
    return b;
  }

  std::vector<std::string> Q(const std::string& sql) { return Query(pg_, sql); }
  std::string S() const { return "\"" + name_ + "\""; }
  int64_t Position() { return admin_->ReadPosition()->applied_seq; }

  std::string pg_;
  std::string name_;
  SinkOptions options_;
  std::unique_ptr<SinkAdmin> admin_;
  uv_loop_t loop_;
  bool loop_open_ = false;
  std::unique_ptr<PgConnection> conn_;
  std::unique_ptr<BatchApplier> applier_;
};

}  // namespace sluice::testing
