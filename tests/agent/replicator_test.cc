// Replicator (agent/replicator.h) in-process against the real test server with
// a fake JournalReader, to drive the loop into states a real file reaches only
// by chance: here a fatal apply error while a journal prune is still running
// off the loop, which once left the agent alive and idle forever.
#include "agent/replicator.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "sink/sink_admin.h"
#include "tests/sink/sink_test_util.h"
#include "tests/support/sql_clients.h"
#include "tests/test_support.h"

namespace sluice {

// Hands the replicator a lease event of the test's choosing.
class ReplicatorTestPeer {
 public:
  static void Lease(Replicator* r, LeaseEvent e) { r->OnLease(e); }
};

namespace {

constexpr const char* kSourceId = "11111111-1111-4111-8111-111111111111";
constexpr const char* kOtherSource = "22222222-2222-4222-8222-222222222222";

// What every fake here shares: the sink's source, no tables, a file that
// always has news, nothing to check or count.
class StubReader : public JournalReader {
 public:
  const std::string& source_id() const override { return source_id_; }
  std::vector<std::string> TrackedTables() const override { return {}; }
  Status CheckFile() override { return Status::Ok(); }
  void ExpectMark(int64_t, std::string) override {}
  Result<bool> Changed() override { return true; }
  Result<std::vector<std::string>> CheckSchema() override { return std::vector<std::string>{}; }
  void NoteCommitted(const std::vector<FullReadMark>&) override {}
  Result<JournalStats> Stats(int64_t) override { return JournalStats{}; }

 protected:
  std::string source_id_ = kSourceId;
};

// Every batch moves one seq; Prune takes `prune_ms`; ReadBatch labels the
// first batch with the sink's source and every later one with `batch_source`
// (another source than the sink's makes the apply fail with SL003, a fatal
// error): the first commit gives the prune a target, the second apply fails
// while that prune runs.
class FakeReader final : public StubReader {
 public:
  FakeReader(std::string batch_source, int prune_ms, std::atomic<int>* prunes)
      : batch_source_(std::move(batch_source)), prune_ms_(prune_ms), prunes_(prunes) {}
  Status ReadBatch(int64_t after_seq, const std::vector<std::string>&, Batch* out) override {
    out->source_id = batches_++ == 0 ? source_id_ : batch_source_;
    out->after_seq = after_seq;
    out->snapshot_seq = after_seq + 1;
    return Status::Ok();
  }
  Status Prune(int64_t) override {
    prunes_->fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(prune_ms_));
    return Status::Ok();
  }

 private:
  std::string batch_source_;
  int batches_ = 0;
  int prune_ms_;
  std::atomic<int>* prunes_;
};

// A file restored from a backup while the sink is at `sink_at`: the journal
// ends at `restored_at`. The first read reports it (as the real reader does);
// after that every read is the full resync at the restored snapshot, then
// nothing new. Records the highest seq the agent asked to prune to.
class RestoredReader final : public StubReader {
 public:
  RestoredReader(int64_t sink_at, int64_t restored_at, std::atomic<int64_t>* max_prune)
      : sink_at_(sink_at), restored_at_(restored_at), max_prune_(max_prune) {}
  Status ReadBatch(int64_t after_seq, const std::vector<std::string>&, Batch* out) override {
    if (after_seq > restored_at_ && !reported_) {
      reported_ = true;
      return Status::Corruption("journal seq " + std::to_string(restored_at_) +
                                " is behind the sink position " + std::to_string(after_seq));
    }
    out->source_id = source_id_;
    out->after_seq = after_seq;
    out->snapshot_seq = restored_at_;  // the app's rows after it are not read yet
    return Status::Ok();
  }
  Status Prune(int64_t to) override {
    int64_t seen = max_prune_->load();
    while (to > seen && !max_prune_->compare_exchange_weak(seen, to)) {
    }
    return Status::Ok();
  }

 private:
  int64_t sink_at_;
  int64_t restored_at_;
  bool reported_ = false;
  std::atomic<int64_t>* max_prune_;
};

// Every batch commits and moves one seq; every Prune fails the way a full or
// read-only disk does (not the SQLITE_BUSY of an app that is writing).
class FailingPruneReader final : public StubReader {
 public:
  explicit FailingPruneReader(std::atomic<int>* prunes) : prunes_(prunes) {}
  Status ReadBatch(int64_t after_seq, const std::vector<std::string>&, Batch* out) override {
    out->source_id = source_id_;
    out->after_seq = after_seq;
    out->snapshot_seq = after_seq + 1;
    return Status::Ok();
  }
  Status Prune(int64_t) override {
    prunes_->fetch_add(1);
    return Status::Internal("prune journal: database or disk is full");
  }

 private:
  std::atomic<int>* prunes_;
};

// Every batch commits and moves one seq; prunes succeed: an agent that
// applies without pause while it leads.
class SteadyReader final : public StubReader {
 public:
  Status ReadBatch(int64_t after_seq, const std::vector<std::string>&, Batch* out) override {
    out->source_id = source_id_;
    out->after_seq = after_seq;
    out->snapshot_seq = after_seq + 1;
    return Status::Ok();
  }
  Status Prune(int64_t) override { return Status::Ok(); }
};

// Every batch moves one seq and upserts 30 rows of one table (a batch of
// several chunks when sink.chunk_rows is small): a cancel can reach the
// applier between two of its round trips, not only inside a statement.
class ChunkyReader final : public StubReader {
 public:
  Status ReadBatch(int64_t after_seq, const std::vector<std::string>&, Batch* out) override {
    TableShape tag;
    tag.name = "tag";
    tag.columns = {testing::Col("id", "TEXT", 1, Value::Bit(Value::Kind::kText)),
                   testing::Col("n", "INTEGER", 0, Value::Bit(Value::Kind::kInteger))};
    out->source_id = source_id_;
    out->after_seq = after_seq;
    out->snapshot_seq = after_seq + 1;
    out->tables = {tag};
    out->tracked_tables = {"tag"};
    for (int i = 0; i < 30; ++i) {
      Change c;
      c.kind = Change::Kind::kUpsert;
      c.table = 0;
      c.seq = out->snapshot_seq;
      c.values = {Value::Text("r" + std::to_string(i)), Value::Integer(out->snapshot_seq)};
      Status st = out->changes.Append(c);
      if (!st.ok()) return st;
    }
    return Status::Ok();
  }
  Status Prune(int64_t) override { return Status::Ok(); }
};

class ReplicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(getenv("TEST_LOG_INFO") ? spdlog::level::info : spdlog::level::warn);
    pg_ = testing::PgConninfoOrSkip();
    if (pg_.empty()) return;
    config_.deployment = testing::UniqueName("repl");
    config_.node = "test";
    config_.source.path = dir_.file("unused.db");
    config_.sink.url = pg_;
    config_.sink.schema = config_.deployment;
    config_.sink.deployment = config_.deployment;
    config_.agent.poll_interval_ms = 50;
    config_.agent.retry_min_ms = 20;
    config_.agent.retry_max_ms = 100;
    config_.http.listen = "127.0.0.1:0";
    Result<std::unique_ptr<SinkAdmin>> admin = SinkAdmin::Connect(config_.sink);
    ASSERT_TRUE(admin.ok()) << admin.status().ToString();
    ASSERT_TRUE((*admin)->InstallControlPlane().ok());
    ASSERT_TRUE((*admin)->EnsurePosition(kSourceId).ok());
  }

  // Runs the loop until the replicator stops; a loop still running after
  // `limit` is a hang: reported, and the process ends (handles are still open).
  void RunBounded(Replicator* r, std::chrono::seconds limit) {
    uv_timer_t watchdog;
    uv_timer_init(&loop_, &watchdog);
    watchdog.data = r;
    uv_timer_start(
        &watchdog,
        [](uv_timer_t* t) {
          auto* rep = static_cast<Replicator*>(t->data);
          std::fprintf(stderr, "FAIL: the agent is still running (state %s) after the limit\n",
                       Replicator::StateName(rep->state()));
          std::_Exit(1);
        },
        static_cast<uint64_t>(std::chrono::milliseconds(limit).count()), 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(&watchdog));  // does not keep the loop alive
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&watchdog), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
  }

  testing::TempDir dir_;
  std::string pg_;
  Config config_;
  uv_loop_t loop_{};
};

TEST_F(ReplicatorTest, FatalErrorDuringAPruneExitsNonZero) {
  if (pg_.empty()) return;
  // The position must be past -1 so that a prune starts beside the second apply.
  testing::Pg(pg_).Query(
      "UPDATE sync_metadata.source_position SET applied_seq = 5 WHERE deployment = $1",
      {config_.deployment});
  std::atomic<int> prunes{0};
  ASSERT_EQ(uv_loop_init(&loop_), 0);
  {
    Replicator r(&loop_, config_, [&prunes](const CaptureOptions&) {
      return Result<std::unique_ptr<JournalReader>>(
          std::unique_ptr<JournalReader>(new FakeReader(kOtherSource, 500, &prunes)));
    });
    r.Start();
    RunBounded(&r, std::chrono::seconds(20));
    EXPECT_EQ(r.exit_code(), 1);
    EXPECT_EQ(r.state(), Replicator::State::kStopped);
  }
  EXPECT_GE(prunes.load(), 1) << "no prune ran beside the failing apply: the test proves nothing";
  EXPECT_EQ(uv_loop_close(&loop_), 0) << "handles left open";
}

// The sink holds 500, the restored file's journal ends at 10: the resync moves
// the position back to 10. Rows the app writes after seq 10 are below 500 and
// not read yet: a prune to the sink's old position would delete them unseen.
TEST_F(ReplicatorTest, RestoredFileIsNeverPrunedPastWhatItsResyncCommitted) {
  if (pg_.empty()) return;
  testing::Pg(pg_).Query(
      "UPDATE sync_metadata.source_position SET applied_seq = 500 WHERE deployment = $1",
      {config_.deployment});
  std::atomic<int64_t> max_prune{-1};
  ASSERT_EQ(uv_loop_init(&loop_), 0);
  {
    Replicator r(&loop_, config_, [&max_prune](const CaptureOptions&) {
      return Result<std::unique_ptr<JournalReader>>(
          std::unique_ptr<JournalReader>(new RestoredReader(500, 10, &max_prune)));
    });
    uv_timer_t stop;
    uv_timer_init(&loop_, &stop);
    stop.data = &r;
    uv_timer_start(
        &stop, [](uv_timer_t* t) { static_cast<Replicator*>(t->data)->Stop("test"); }, 1500, 0);
    r.Start();
    RunBounded(&r, std::chrono::seconds(20));
    uv_close(reinterpret_cast<uv_handle_t*>(&stop), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  EXPECT_EQ(testing::Pg(pg_).ScalarInt(
                "SELECT applied_seq FROM sync_metadata.source_position WHERE deployment = $1",
                {config_.deployment}),
            10)
      << "the resync did not commit: the test proves nothing";
  EXPECT_LE(max_prune.load(), 10) << "the journal was pruned past the restored file's position";
  EXPECT_EQ(uv_loop_close(&loop_), 0) << "handles left open";
}

// A prune that keeps failing for another reason than a writing app is a stall
// of its own (the journal grows without end): it is reported at warn and then
// error like any other repeated failure, not at debug for ever.
TEST_F(ReplicatorTest, PruneThatKeepsFailingIsReportedAboveDebug) {
  if (pg_.empty()) return;
  testing::Pg(pg_).Query(
      "UPDATE sync_metadata.source_position SET applied_seq = 5 WHERE deployment = $1",
      {config_.deployment});
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  spdlog::default_logger()->sinks().push_back(ring);
  std::atomic<int> prunes{0};
  ASSERT_EQ(uv_loop_init(&loop_), 0);
  {
    Replicator r(&loop_, config_, [&prunes](const CaptureOptions&) {
      return Result<std::unique_ptr<JournalReader>>(
          std::unique_ptr<JournalReader>(new FailingPruneReader(&prunes)));
    });
    uv_timer_t stop;
    uv_timer_init(&loop_, &stop);
    stop.data = &r;
    uv_timer_start(
        &stop, [](uv_timer_t* t) { static_cast<Replicator*>(t->data)->Stop("test"); }, 1000, 0);
    r.Start();
    RunBounded(&r, std::chrono::seconds(20));
    uv_close(reinterpret_cast<uv_handle_t*>(&stop), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  spdlog::default_logger()->sinks().pop_back();
  ASSERT_GE(prunes.load(), 2) << "no prune was tried: the test proves nothing";
  std::string warned;
  for (const std::string& line : ring->last_formatted()) {
    if (line.find("disk is full") != std::string::npos) warned += line;
  }
  EXPECT_NE(warned.find("prune"), std::string::npos)
      << "a prune failing " << prunes.load() << " times was never reported at warn or error";
  EXPECT_EQ(uv_loop_close(&loop_), 0) << "handles left open";
}

// The lease deadline is the agent's own monotonic clock: when that clock
// says the lease may have expired, the agent stops applying at once, even
// though the sink still holds the lease for it (its renewals would be
// accepted). A fake clock jumps 10 s ahead while the agent applies: 200 ms
// later (the sink's lease of 3 s has not expired) it must stand by; later it
// takes a new lease, under a larger epoch, and applies again. (A lease of 1 s
// was lost to a late renewal before the jump on a loaded machine under ASan.)
TEST_F(ReplicatorTest, StopsApplyingWhenItsOwnClockSaysTheLeaseMayHaveExpired) {
  if (pg_.empty()) return;
  config_.lease.duration_ms = 3000;
  std::atomic<int64_t> jump_ms{0};
  Clocks clocks = Clocks::System();
  clocks.mono_ms = [base = clocks.mono_ms, &jump_ms] { return base() + jump_ms.load(); };
  ASSERT_EQ(uv_loop_init(&loop_), 0);
  struct Probe {
    Replicator* r = nullptr;
    std::atomic<int64_t>* jump = nullptr;
    int step = 0;
    bool led_before = false;
    Replicator::State after_jump = Replicator::State::kStarting;
    bool leader_after_jump = true;
  } probe;
  {
    Replicator r(
        &loop_, config_,
        [](const CaptureOptions&) {
          return Result<std::unique_ptr<JournalReader>>(
              std::unique_ptr<JournalReader>(new SteadyReader()));
        },
        clocks);
    probe.r = &r;
    probe.jump = &jump_ms;
    uv_timer_t t;
    uv_timer_init(&loop_, &t);
    t.data = &probe;
    // 700 ms: jump; 900 ms: sample; 5500 ms: stop (the sink's lease of the
    // last renewal before the jump has expired, a new one was taken).
    uv_timer_start(
        &t,
        [](uv_timer_t* h) {
          auto* p = static_cast<Probe*>(h->data);
          switch (p->step++) {
            case 0:
              p->led_before = p->r->lease().MayApply();
              p->jump->store(10000);
              uv_timer_start(h, h->timer_cb, 200, 0);
              break;
            case 1:
              p->after_jump = p->r->state();
              p->leader_after_jump = p->r->lease().MayApply();
              uv_timer_start(h, h->timer_cb, 4600, 0);
              break;
            default:
              p->r->Stop("test");
          }
        },
        700, 0);
    r.Start();
    RunBounded(&r, std::chrono::seconds(20));
    uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  EXPECT_TRUE(probe.led_before) << "the agent did not lead before the jump: proves nothing";
  EXPECT_EQ(probe.after_jump, Replicator::State::kStandby)
      << Replicator::StateName(probe.after_jump);
  EXPECT_FALSE(probe.leader_after_jump);
  testing::Pg pg(pg_);
  // Along the position, epochs never go down, and a later epoch applied.
  std::vector<std::string> epochs;
  for (const auto& row : pg.Query("SELECT coalesce(epoch::text, '-1') FROM "
                                  "sync_metadata.applied_batches WHERE deployment = $1 "
                                  "ORDER BY after_seq",
                                  {config_.deployment})
                             .rows) {
    epochs.push_back(row[0].value_or("-1"));
  }
  ASSERT_FALSE(epochs.empty());
  for (size_t i = 1; i < epochs.size(); ++i) {
    ASSERT_LE(std::stoll(epochs[i - 1]), std::stoll(epochs[i])) << "epoch went down at " << i;
  }
  EXPECT_EQ(epochs.front(), "1");
  EXPECT_EQ(epochs.back(), "2") << "no new lease after the jump";
  EXPECT_EQ(uv_loop_close(&loop_), 0) << "handles left open";
}

// The lease is lost while a batch is at the sink (the loop cancels it) and
// renewed before the cancelled batch comes back: a renewal sent before the
// deadline and answered after the agent's clock passed it does exactly this
// (seen in e2e_kill_loop under ASan: "lost (epoch 10)", then "acquired:
// epoch 10" 1 ms later). The connection is still up: the agent must go on
// applying, not reconnect on a live connection for ever ("Connect called
// while ready"). The test delivers the loss while the driver still leads,
// 40 times at random points of a batch: the cancel reaches PostgreSQL in
// the middle of a statement (an error) or between two round trips of a
// batch of six chunks (the applier's own cancel); both must end in more
// batches applied.
TEST_F(ReplicatorTest, BatchCancelledByALeaseLossThatHealedGoesOnApplying) {
  if (pg_.empty()) return;
  config_.sink.chunk_rows = 5;
  ASSERT_EQ(uv_loop_init(&loop_), 0);
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  spdlog::default_logger()->sinks().push_back(ring);
  struct Probe {
    Replicator* r = nullptr;
    testing::Pg* pg = nullptr;
    std::string deployment;
    int ticks = 0;
    int cancels = 0;
    int64_t seq_after = -1;
  } probe;
  testing::Pg pg(pg_);
  {
    Replicator r(&loop_, config_, [](const CaptureOptions&) {
      return Result<std::unique_ptr<JournalReader>>(
          std::unique_ptr<JournalReader>(new ChunkyReader()));
    });
    probe.r = &r;
    probe.pg = &pg;
    probe.deployment = config_.deployment;
    uv_timer_t t;
    uv_timer_init(&loop_, &t);
    t.data = &probe;
    // Every 3 ms: the loss, when a batch is at the sink and the last one was
    // at least 60 ms ago; after the 40th, 1.5 s for the agent to settle, then
    // the position, then 1 s more of applying, then stop.
    uv_timer_start(
        &t,
        [](uv_timer_t* h) {
          auto* p = static_cast<Probe*>(h->data);
          ++p->ticks;
          if (p->cancels < 40) {
            if (p->ticks >= 20 && p->r->state() == Replicator::State::kApplying &&
                p->r->lease().MayApply()) {
              ReplicatorTestPeer::Lease(p->r, LeaseEvent::kLost);
              ++p->cancels;
              p->ticks = 0;
            } else if (p->ticks > 5000) {
              uv_timer_stop(h);
              p->r->Stop("test");
            }
          } else if (p->ticks == 500) {
            p->seq_after = p->pg->ScalarInt(
                "SELECT applied_seq FROM sync_metadata.source_position WHERE deployment = $1",
                {p->deployment});
          } else if (p->ticks == 833) {
            uv_timer_stop(h);
            p->r->Stop("test");
          }
        },
        3, 3);
    r.Start();
    RunBounded(&r, std::chrono::seconds(60));
    uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  spdlog::default_logger()->sinks().pop_back();
  ASSERT_EQ(probe.cancels, 40) << "the agent was not applying often enough: proves nothing";
  int64_t seq_end =
      pg.ScalarInt("SELECT applied_seq FROM sync_metadata.source_position WHERE deployment = $1",
                   {config_.deployment});
  EXPECT_GT(seq_end, probe.seq_after) << "no batch committed in the second after the losses";
  for (const std::string& line : ring->last_formatted()) {
    EXPECT_EQ(line.find("Connect called while"), std::string::npos) << line;
  }
  EXPECT_EQ(uv_loop_close(&loop_), 0) << "handles left open";
}

}  // namespace
}  // namespace sluice
