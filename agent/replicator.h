// Replicator: the agent's main loop for one deployment. Owns the PostgreSQL
// connection, the journal reader and the wake-up sources (inotify on the -wal
// file, a data_version poll timer, SIGTERM/SIGINT/SIGHUP). One state machine, one
// transition function that logs every move. Loop thread only; the JournalReader
// is only used inside off-loop work, one item at a time.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "agent/agent_state_file.h"
#include "agent/clock.h"
#include "agent/config.h"
#include "agent/failure_log.h"
#include "agent/http_routes.h"
#include "agent/http_server.h"
#include "agent/lease_driver.h"
#include "agent/lifecycle.h"
#include "agent/metrics.h"
#include "capture/journal_reader.h"
#include "sink/batch_applier.h"
#include "sink/pg_connection.h"

namespace sluice {

class Replicator {
 public:
  using State = AgentState;

  // Opens the source; JournalReader::Open unless a test supplies a fake.
  using ReaderFactory =
      std::function<Result<std::unique_ptr<JournalReader>>(const CaptureOptions&)>;

  // `clocks`: the system's unless a test moves time by hand.
  Replicator(uv_loop_t* loop, Config config, ReaderFactory open_reader = nullptr,
             Clocks clocks = Clocks::System());
  ~Replicator();
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  void Start();
  // Graceful stop: the batch in flight may finish for agent.stop_timeout_ms;
  // then it is rolled back (Abort). A second Stop aborts at once. Then every
  // handle closes.
  void Stop(std::string_view why);
  // 0 after a requested stop, 1 after a fatal error.
  int exit_code() const { return exit_code_; }
  static const char* StateName(State s) { return AgentStateName(s); }
  State state() const { return state_; }
  const LeaseDriver& lease() const { return *lease_; }
  // What /health, /readyz and /leader report, and the /metrics text (the
  // gauges brought up to date first, from `view`, this moment's View()). Loop thread.
  AgentView View() const;
  std::string MetricsText(const AgentView& view);

 private:
  // tests/agent/replicator_test.cc hands the loop lease news in an order a real
  // driver produces only by chance (lost, then renewed, while a batch is at the sink).
  friend class ReplicatorTestPeer;
  // The one place the state changes; a move the table (agent/lifecycle.h)
  // does not allow is an internal error: logged, and the agent stops with exit 1.
  void Transition(State next, std::string_view why);
  void OpenReader();
  // Runs `work` off the loop (agent/off_loop.h) and `done` on it, counting
  // jobs in flight: Shutdown waits for the last, and a job that completes
  // after a stop began does not run `done`.
  void OffLoop(std::function<void()> work, std::function<void()> done);
  void WatchWal();
  void Reopen(const Status& why);  // the file was replaced or deleted
  void Connect();
  // Connected: read the position when this agent leads, else stand by.
  void Connected();
  void LoadPosition();
  // Another node leads, or this one lost the lease: wait for it, doing nothing.
  void Standby(std::string_view why);
  // The lease driver's news: lead (from standby), or stop leading now.
  void OnLease(LeaseEvent e);
  // False (and stands by) when this agent may not apply now.
  bool Leading(std::string_view what);
  void Wake();
  void StartRead(bool force);
  void Apply();
  void StartPrune();
  void Backoff(std::string_view why, void (Replicator::*retry)());
  // A failed sink call, sorted by pg::ActionOf: kStop is fatal (exit 1),
  // anything else backs off (reconnecting first if the connection went).
  void SinkFailure(const Status& st, std::string_view context, void (Replicator::*retry)());
  void Fatal(const Status& st);
  // Progress (a batch applied, or caught up): the failures in a row end.
  void Progress();
  // Log (escalating with FailureLog) and record what held a batch in memory.
  void NoteSpoolProblem(const std::string& why);
  void UpdateStoppedTables(const std::vector<TableRefusal>& refused);
  // Rewrites the state file (agent/agent_state_file.h); `force` = even if
  // the heartbeat interval has not passed.
  void WriteState(bool force);
  // The batch at the sink once it has been there for a second (nullopt otherwise).
  std::optional<SyncProgress> ProgressNow() const;
  void Shutdown();
  void CloseHandles();
  void HandleClosed();
  // http.listen: serves the endpoints on the loop; false after a Fatal.
  bool StartHttp();
  std::string Role() const;
  // The state as /health and the state file name it: reading, applying and
  // idle are all "streaming".
  const char* ReportedState() const;
  void CountSinkError(const Status& st);
  void NoteApplied(const Batch& batch, const ApplyStats& stats, int64_t started_mono);
  bool StopIfRequested();
  // --- signals and the stop path (issue #5 item 14) ---
  // Stop without waiting for the work in flight: the batch is cancelled (its
  // transaction rolls back; the position moves only with a commit, so nothing
  // is lost), a running SQLite read or prune is interrupted; if the sink does
  // not answer within kAbortGraceMs, the connection is closed. Exit code stays.
  void Abort(std::string_view why);
  // SIGHUP: reads the config file again and takes over what PlanReload allows.
  void Reload();
  static void OnStopTimer(uv_timer_t* h) noexcept;

  static void OnSignal(uv_signal_t* h, int signum) noexcept;
  static void OnPollTimer(uv_timer_t* h) noexcept;
  static void OnRetryTimer(uv_timer_t* h) noexcept;
  static void OnWalEvent(uv_fs_event_t* h, const char* name, int events, int status) noexcept;

  int64_t NowMs() const { return clocks_.wall_ms(); }

  uv_loop_t* loop_;
  Config config_;
  ReaderFactory open_reader_;
  Clocks clocks_;
  std::string host_;  // HostName(), looked up once: the lease row and the state file name it
  std::unique_ptr<Metrics> metrics_;  // before lease_: the driver counts into it
  std::unique_ptr<LeaseDriver> lease_;
  State state_ = State::kStarting;
  int64_t apply_started_ms_ = 0;   // unix ms: the batch at the sink was handed to the applier
  bool progress_written_ = false;  // the state file shows a batch's progress
  int exit_code_ = 0;
  bool stop_requested_ = false;
  bool wake_pending_ = false;

  std::unique_ptr<JournalReader> reader_;
  std::unique_ptr<PgConnection> conn_;
  std::unique_ptr<BatchApplier> applier_;
  std::unique_ptr<Batch> batch_;

  int64_t position_ = -1;         // the sink's applied seq, as last read or written
  std::string position_mark_;     // the sink's fingerprint of the journal row at position_
  bool reopening_ = false;        // the source file is being reopened after a replacement
  int64_t prune_to_ = -1;         // journal rows <= this may be deleted
  int64_t pruned_to_ = -1;        // journal rows <= this are deleted
  bool prune_in_flight_ = false;  // the reader is pruning off the loop
  int jobs_in_flight_ = 0;        // off-loop jobs (open, read, prune) not completed
  bool read_after_prune_ = false;
  bool read_after_prune_force_ = false;
  bool handles_closing_ = false;
  bool resync_all_ = false;
  std::set<std::string> resync_tables_;
  // Full-read marks covered by a sink commit, to hand to the reader's next job.
  std::vector<FullReadMark> committed_marks_;
  bool marks_to_clear_ = false;  // the reader holds committed marks not yet cleared in the file
  int retries_ = 0;
  // What `sluice status` reads from the state file (agent/agent_state_file.h).
  FailureLog failures_;        // retries in a row, for the escalating backoff log
  FailureLog spool_log_;       // batches held in memory for want of spool space
  FailureLog prune_failures_;  // prunes failing for another reason than a writing app
  std::string state_path_;
  int64_t state_since_ms_ = 0;
  std::string last_error_;
  int64_t last_error_at_ms_ = 0;
  int64_t state_written_mono_ms_ = 0;  // monotonic: when the state file was last written
  bool state_write_warned_ = false;
  std::map<std::string, StoppedTable> stopped_tables_;
  std::map<std::string, FailureLog> stopped_logs_;
  void (Replicator::*retry_)() = nullptr;
  int open_handles_ = 0;

  std::unique_ptr<HttpServer> http_;
  std::string http_address_;  // as bound ("" = off)
  bool connected_once_ = false;
  // The journal after position_, as of the last read that asked (JournalStats).
  int64_t backlog_ = -1;                   // rows; -1 unknown
  int64_t oldest_pending_at_ms_ = 0;       // unix ms of the oldest of them; 0 none
  int64_t journal_stats_mono_ = -1000000;  // when they were read

  uv_signal_t sigterm_{};
  uv_signal_t sigint_{};
  uv_signal_t sighup_{};
  uv_timer_t stop_timer_{};  // the stop deadline, then the abort's grace
  bool aborting_ = false;
  uv_timer_t poll_timer_{};
  uv_timer_t retry_timer_{};
  uv_fs_event_t wal_event_{};
  bool wal_event_inited_ = false;
  bool wal_paused_ = false;  // not watched while standing by
};

}  // namespace sluice
