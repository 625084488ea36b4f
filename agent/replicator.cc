// Replicator: read a snapshot off the loop, apply it in one sink transaction,
// prune the journal, repeat until caught up; then wait for the next wake-up.
#include "agent/replicator.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <random>

#include "agent/config_reload.h"
#include "agent/off_loop.h"
#include "agent/policy_check.h"
#include "sink/pg_error.h"
#include "sluice_version.h"

namespace sluice {

namespace {
// After an abort's cancel, how long the sink may take to confirm the rollback
// before the connection is dropped (the server then rolls back by itself).
constexpr uint64_t kAbortGraceMs = 1000;
}  // namespace

Replicator::Replicator(uv_loop_t* loop, Config config, ReaderFactory open_reader, Clocks clocks)
    : loop_(loop),
      config_(std::move(config)),
      open_reader_(std::move(open_reader)),
      clocks_(std::move(clocks)),
      // Repeats of one failure are reported after retry_max_ms, then twice
      // that, and so on up to an hour.
      failures_(config_.agent.retry_max_ms, 3600 * 1000),
      spool_log_(config_.agent.retry_max_ms, 3600 * 1000),
      prune_failures_(config_.agent.retry_max_ms, 3600 * 1000) {
  if (!open_reader_) open_reader_ = &JournalReader::Open;
  host_ = HostName();
  state_path_ = StateFilePath(config_.source.path, config_.deployment, config_.node);
  conn_ = std::make_unique<PgConnection>(loop_, config_.sink.url, config_.sink.query_timeout_ms);
  applier_ = std::make_unique<BatchApplier>(config_.sink);
  metrics_ = std::make_unique<Metrics>(SLUICE_VERSION, config_.node, config_.deployment);
  metrics_->SetConflictPolicy(config_.sink.conflicts);
  Status lease_ok = ResolveLease(&config_.lease);  // a Config built in code (tests)
  if (!lease_ok.ok()) spdlog::warn("{}", lease_ok.message());
  LeaseTimings timings{config_.lease.duration_ms, config_.lease.renew_ms, config_.lease.poll_ms};
  lease_ = std::make_unique<LeaseDriver>(
      loop_, config_.sink.url, LeaseIdentity{config_.deployment, config_.node, host_}, timings,
      clocks_.mono_ms, metrics_.get(), [this](LeaseEvent e) { OnLease(e); },
      [this](Status st) {
        if (!stop_requested_ && !handles_closing_) Fatal(st);
      });
}

Replicator::~Replicator() = default;

void Replicator::Transition(State next, std::string_view why) {
  if (!TransitionAllowed(state_, next)) {
    // A bug in the loop. Refuse the move, and stop: every completion checks
    // stop_requested_, and the retry timer fires Shutdown if nothing is in flight.
    spdlog::error("internal: impossible state move {} -> {} ({}); stopping", StateName(state_),
                  StateName(next), why);
    exit_code_ = 1;
    stop_requested_ = true;
    if (!handles_closing_) {
      retry_ = nullptr;  // OnRetryTimer sees stop_requested_ and shuts down
      uv_timer_start(&retry_timer_, OnRetryTimer, 0, 0);
    }
    return;
  }
  // Reading/applying/idle alternate once per batch: those moves go to debug so
  // that the info log has one line per real state change, not per batch.
  bool routine =
      (next == State::kReading || next == State::kApplying || next == State::kIdle) &&
      (state_ == State::kReading || state_ == State::kApplying || state_ == State::kIdle);
  // Backoff logs its own move, at warn/error as FailureLog says, and the
  // retry that follows is part of it.
  if (routine || next == State::kBackoff ||
      (state_ == State::kBackoff && next != State::kStopping)) {
    spdlog::debug("state {} -> {}: {}", StateName(state_), StateName(next), why);
  } else {
    spdlog::info("state {} -> {}: {}", StateName(state_), StateName(next), why);
  }
  state_ = next;
  if (!routine) {
    state_since_ms_ = NowMs();
    WriteState(true);
  } else if (progress_written_) {
    WriteState(true);  // the batch whose progress the file shows is over
  }
}

void Replicator::Start() {
  uv_signal_init(loop_, &sigterm_);
  uv_signal_init(loop_, &sigint_);
  uv_signal_init(loop_, &sighup_);
  uv_timer_init(loop_, &poll_timer_);
  uv_timer_init(loop_, &retry_timer_);
  uv_timer_init(loop_, &stop_timer_);
  open_handles_ = 6;
  sigterm_.data = sigint_.data = sighup_.data = this;
  poll_timer_.data = retry_timer_.data = stop_timer_.data = this;
  state_since_ms_ = NowMs();
  WriteState(true);
  uv_signal_start(&sigterm_, OnSignal, SIGTERM);
  uv_signal_start(&sigint_, OnSignal, SIGINT);
  uv_signal_start(&sighup_, OnSignal, SIGHUP);
  spdlog::info("sluice agent node {} deployment {}: {} -> schema {}", config_.node,
               config_.deployment, config_.source.path, config_.sink.schema);
  if (!StartHttp()) return;
  lease_->Start();
  OpenReader();
}

bool Replicator::StartHttp() {
  if (config_.http.listen == "off") return true;
  HttpLimits limits;
  limits.max_connections = config_.http.max_connections;
  http_ = std::make_unique<HttpServer>(loop_, limits, [this](const HttpRequest& req) {
    AgentView view = View();
    return Route(req, view, [this, &view] { return MetricsText(view); });
  });
  Status st = http_->Listen(config_.http.listen);
  if (!st.ok()) {
    http_.reset();
    Fatal(Status::InvalidArgument("http.listen " + config_.http.listen + ": " + st.message() +
                                  " (set http.listen, or SLUICE_HTTP_LISTEN, to a free "
                                  "address, or to off)"));
    return false;
  }
  // The port as bound: with port 0 the kernel picked it.
  std::string host = config_.http.listen.substr(0, config_.http.listen.rfind(':'));
  http_address_ = host + ":" + std::to_string(http_->port());
  spdlog::info("HTTP endpoints on http://{} (/health /livez /readyz /leader /metrics)",
               http_address_);
  return true;
}

std::string Replicator::Role() const {
  if (lease_->MayApply()) return "leader";
  if (state_ == State::kStandby || lease_->sink_reachable()) return "standby";
  return "starting";
}

const char* Replicator::ReportedState() const {
  bool streaming =
      state_ == State::kReading || state_ == State::kApplying || state_ == State::kIdle;
  return streaming ? "streaming" : StateName(state_);
}

AgentView Replicator::View() const {
  AgentView v;
  v.node = config_.node;
  v.deployment = config_.deployment;
  v.role = Role();
  v.leader = v.role == "leader";
  v.state = ReportedState();
  v.epoch = lease_->lease().epoch();
  v.position = position_;
  v.backlog = v.leader ? backlog_ : -1;
  if (v.leader && backlog_ > 0 && oldest_pending_at_ms_ > 0) {
    v.lag_seconds =
        std::max<double>(0, static_cast<double>(NowMs() - oldest_pending_at_ms_) / 1000);
  }
  // The trouble now, not a failure the agent has recovered from.
  if (failures_.count() > 0) v.last_error = last_error_;
  v.sink_reachable = conn_->connected() || lease_->sink_reachable();
  v.lease_held_or_watched = lease_->sink_reachable() || v.leader;
  v.progress = ProgressNow();
  if (!v.sink_reachable) {
    v.not_ready_reason = last_error_.empty() ? "connecting to the sink" : last_error_;
  } else if (!v.lease_held_or_watched) {
    v.not_ready_reason = "waiting for the first answer about the leader lease";
  }
  return v;
}

std::string Replicator::MetricsText(const AgentView& v) {
  const LeaseDriver& lease = *lease_;
  bool leader = lease.MayApply();
  metrics_->SetLeader(leader);
  metrics_->SetEpoch(lease.lease().epoch());
  if (leader) {
    metrics_->SetLeaseExpirySeconds(static_cast<double>(lease.lease().valid_until() - lease.Now()) /
                                    1000);
  }
  metrics_->SetPosition(position_);
  metrics_->SetBacklog(std::max<int64_t>(0, v.backlog));
  metrics_->SetLag(v.lag_seconds);
  metrics_->SetSyncProgress(v.progress);
  return metrics_->Serialize();
}

void Replicator::CountSinkError(const Status& st) {
  SinkErrorKind kind = SinkErrorKind::kOther;
  const std::string& m = st.message();
  switch (st.code()) {
    case Status::Code::kUnavailable:
      kind = SinkErrorKind::kConnection;
      break;
    case Status::Code::kConflict:
      kind = SinkErrorKind::kPositionConflict;
      break;
    case Status::Code::kFenced:
      kind = SinkErrorKind::kFenced;
      break;
    case Status::Code::kDataError:
      kind = SinkErrorKind::kRejectedRow;
      break;
    default:
      if (m.find("SQLSTATE 57014") != std::string::npos) {
        kind = SinkErrorKind::kTimeout;
      } else if (m.find("SQLSTATE 42501") != std::string::npos) {
        kind = SinkErrorKind::kPermission;
      } else if (m.find("SQLSTATE 42P01") != std::string::npos ||
                 m.find("SQLSTATE 42703") != std::string::npos) {
        kind = SinkErrorKind::kSchema;
      }
  }
  metrics_->SinkError(kind);
}

void Replicator::NoteApplied(const Batch& batch, const ApplyStats& stats, int64_t started_mono) {
  for (const auto& [table, c] : stats.tables) {
    metrics_->RowsApplied(table, c.upserts, c.deletes);
    if (c.parked > 0) metrics_->RowsParked(table, c.parked);
  }
  for (const ConflictCount& c : stats.conflicts) {
    metrics_->ConflictsSeen(c.table, c.kind, c.strategy, c.count);
    // Rare by nature (someone wrote to the mirror): each group gets a line.
    spdlog::info("sink: {} conflict(s) with outside writes in table {}: {}, {} -> {}", c.count,
                 c.table, c.kind, c.strategy, c.status);
  }
  if (stats.conflicts_pending > 0 && !stats.conflicts.empty()) {
    spdlog::warn(
        "sink: {} conflict(s) wait for an operator (manual strategy): see `sluice conflicts "
        "list --status pending`",
        stats.conflicts_pending);
  }
  if (stats.conflicts_pending >= 0) metrics_->SetConflictsPending(stats.conflicts_pending);
  metrics_->BatchApplied(stats.upserts + stats.deletes + stats.parked,
                         static_cast<double>(clocks_.mono_ms() - started_mono) / 1000);
  if (backlog_ >= 0) {
    backlog_ = std::max<int64_t>(0, backlog_ - batch.journal_rows);
    if (backlog_ == 0) oldest_pending_at_ms_ = 0;
  }
}

void Replicator::OpenReader() {
  if (state_ != State::kStarting) Transition(State::kStarting, "opening " + config_.source.path);
  auto result =
      std::make_shared<Result<std::unique_ptr<JournalReader>>>(Status::Internal("not run"));
  CaptureOptions opts = config_.source;
  OffLoop([result, opts, open = open_reader_] { *result = open(opts); },
          [this, result] {
            if (!result->ok()) {
              // A file being replaced may be missing for a moment: wait for it.
              if (result->status().code() == Status::Code::kBusy || reopening_) {
                // Waiting for a replaced file to reappear: say so at warn on every try.
                if (reopening_)
                  spdlog::warn("cannot reopen the source: {}", result->status().message());
                Backoff(result->status().message(), &Replicator::OpenReader);
              } else {
                Fatal(result->status());
              }
              return;
            }
            reader_ = std::move(result->value());
            // The tables' zero series from the first scrape on, a standby's too (it never
            // reads, and a counter series born at 1 is invisible to increase()).
            metrics_->SetTables(reader_->RecordedTables());
            if (reopening_) spdlog::info("reopened {}", config_.source.path);
            reopening_ = false;
            if (StopIfRequested()) return;
            if (lease_->MayApply()) {
              WatchWal();
            } else {
              wal_paused_ = true;  // Leading() starts the watch once this agent leads
            }
            uint64_t every = static_cast<uint64_t>(config_.agent.poll_interval_ms);
            uv_timer_start(&poll_timer_, OnPollTimer, every, every);
            // The position and source id are checked again against the new file.
            if (conn_->connected()) return LoadPosition();
            Connect();
          });
}

void Replicator::OffLoop(std::function<void()> work, std::function<void()> done) {
  ++jobs_in_flight_;
  auto finish = [this, done = std::move(done)] {
    --jobs_in_flight_;
    // A fatal error (or a stop) while the job ran: Shutdown waited for it,
    // and nothing the job would do next may start.
    if (state_ == State::kStopping || state_ == State::kStopped) return Shutdown();
    done();
  };
  if (!RunOffLoop(loop_, std::move(work), finish)) {
    // libuv refused the request (it only does for invalid arguments): say so
    // and stop, rather than wait for a completion that never comes.
    --jobs_in_flight_;
    Fatal(Status::Internal("cannot queue work on libuv's thread pool"));
  }
}

void Replicator::WatchWal() {
  // uv_fs_event follows the inode it started on: after a replacement, watch anew.
  std::string wal = config_.source.path + "-wal";
  if (!wal_event_inited_) {
    uv_fs_event_init(loop_, &wal_event_);
    wal_event_.data = this;
    ++open_handles_;
    wal_event_inited_ = true;
  } else {
    uv_fs_event_stop(&wal_event_);
  }
  if (uv_fs_event_start(&wal_event_, OnWalEvent, wal.c_str(), 0) != 0) {
    spdlog::warn("cannot watch {}; relying on the {} ms poll", wal, config_.agent.poll_interval_ms);
  }
}

void Replicator::Reopen(const Status& why) {
  spdlog::warn("{}; reopening it", why.message());
  reader_.reset();
  committed_marks_.clear();  // the new reader re-reads marks it cannot know were covered
  marks_to_clear_ = false;
  prune_to_ = pruned_to_ = -1;  // nothing is known of the new file's journal yet
  reopening_ = true;
  OpenReader();
}

void Replicator::Connect() {
  // A batch cancelled on a live connection (the lease lost and renewed while
  // it was at the sink) retries through here too: nothing to connect.
  if (conn_->connected()) return Connected();
  Transition(State::kConnecting, "connecting to the sink");
  conn_->Connect([this](Status st) {
    if (StopIfRequested()) return;
    if (!st.ok()) return SinkFailure(st, "connect", &Replicator::Connect);
    if (connected_once_) metrics_->Reconnected();
    connected_once_ = true;
    applier_->InvalidateCatalog();
    Connected();
  });
}

void Replicator::Connected() {
  if (!Leading("connected")) return;
  LoadPosition();
}

bool Replicator::Leading(std::string_view what) {
  // A deadline passed by this clock is a lost lease, also for the driver:
  // its next request asks for a new epoch instead of renewing this one.
  lease_->Check();
  if (lease_->MayApply()) {
    if (wal_paused_) {  // leading again: the app's writes wake the agent
      wal_paused_ = false;
      WatchWal();
    }
    return true;
  }
  const Lease& l = lease_->lease();
  if (l.holder().empty() || l.holder() == config_.node) {
    Standby(std::string(what) + "; waiting for the leader lease");
  } else {
    Standby(std::string(what) + "; node " + l.holder() + " leads (epoch " +
            std::to_string(l.epoch()) + ")");
  }
  return false;
}

void Replicator::Standby(std::string_view why) {
  if (state_ == State::kStandby) return;
  uv_timer_stop(&retry_timer_);
  retry_ = nullptr;
  wake_pending_ = false;
  // A standby reads nothing: the app's every write would wake it for nothing
  // (thousands of times a second at 1,000 tx/s). Leading() watches again.
  if (wal_event_inited_ && !wal_paused_) uv_fs_event_stop(&wal_event_);
  wal_paused_ = true;
  Transition(State::kStandby, why);
}

void Replicator::OnLease(LeaseEvent e) {
  if (stop_requested_ || handles_closing_) return;
  if (e == LeaseEvent::kAcquired) {
    if (state_ == State::kBackoff && retry_ != nullptr) {
      // The lease connection just reached the sink: retry now, rather than
      // hold the lease through the rest of the backoff with nobody applying.
      uv_timer_start(&retry_timer_, OnRetryTimer, 0, 0);
      return;
    }
    if (state_ != State::kStandby) return;  // the step in flight checks the lease itself
    if (!conn_->connected()) return Connect();
    return LoadPosition();
  }
  if (e != LeaseEvent::kLost) return;
  switch (state_) {
    case State::kApplying:
      // The transaction must not commit: stop it now (its completion stands by).
      applier_->Cancel();
      conn_->CancelRunning();
      return;
    case State::kIdle:
    case State::kBackoff:
      return Standby("the leader lease was lost");
    default:
      return;  // reading, connecting, loading: the completion checks the lease
  }
}

void Replicator::LoadPosition() {
  if (!Leading("before reading the position")) return;
  Transition(State::kLoadingPosition, "reading the applied position");
  PgQuery q{
      "SELECT source_id::text, applied_seq, position_mark FROM sync_metadata.source_position "
      "WHERE deployment = $1",
      {config_.deployment}};
  conn_->Submit({q}, [this](Status st, std::vector<PgResult> results) {
    if (StopIfRequested()) return;
    if (!st.ok()) {
      return SinkFailure(st, "read position (did `sluice init` run?)", &Replicator::LoadPosition);
    }
    if (results.empty() || results[0].rows.empty()) {
      return Fatal(Status::InvalidArgument("deployment '" + config_.deployment +
                                           "' has no position at the sink: run `sluice init`"));
    }
    const auto& row = results[0].rows[0];
    std::string source = row[0].value_or("");
    if (source != reader_->source_id()) {
      return Fatal(Status::Corruption("deployment '" + config_.deployment + "' follows source " +
                                      source + " at the sink, but " + config_.source.path +
                                      " is source " + reader_->source_id() +
                                      "; to make the deployment follow this file and "
                                      "resynchronise every table, run `sluice resync --config "
                                      "FILE`"));
    }
    position_ = std::stoll(row[1].value_or("-1"));
    position_mark_ = row[2].value_or("");
    // No prune target from the sink alone: a restored file's journal below
    // this position holds rows not read yet. Pruning starts once a read at
    // the position found the file agrees with it, or a batch committed.
    spdlog::info("sink position for {} is {}", config_.deployment, position_);
    // retries_ is reset only by progress (a batch applied, or caught up): a
    // batch that keeps failing after a good connect must still back off.
    // Mirrors lost while no agent ran are read whole, even if the app is quiet.
    applier_->FindLostMirrors(conn_.get(), reader_->TrackedTables(),
                              [this](Status lost_st, std::vector<std::string> lost) {
                                if (StopIfRequested()) return;
                                // The connection is up (a lost one is kUnavailable: SinkFailure
                                // reconnects).
                                if (!lost_st.ok()) {
                                  return SinkFailure(lost_st, "find lost mirrors",
                                                     &Replicator::LoadPosition);
                                }
                                resync_tables_.insert(lost.begin(), lost.end());
                                StartRead(true);
                              });
  });
}

void Replicator::Wake() {
  if (state_ == State::kIdle) {
    StartRead(false);
  } else {
    wake_pending_ = true;
  }
}

void Replicator::StartRead(bool force) {
  if (StopIfRequested()) return;
  if (!Leading("before reading")) return;
  if (prune_in_flight_) {  // the reader is busy pruning: read when it is done
    read_after_prune_ = true;
    read_after_prune_force_ = read_after_prune_force_ || force;
    return;
  }
  Transition(State::kReading, force ? "reading after a batch" : "woken up");
  wake_pending_ = false;
  struct Work {
    int64_t position;
    std::string mark;
    bool force;
    bool resync_all;
    std::set<std::string> resync;
    std::vector<FullReadMark> committed;
    std::vector<TableRefusal> refused;
    std::unique_ptr<Batch> batch;
    Status status;
    bool empty = true;
    bool want_stats = false;
    std::optional<JournalStats> stats;  // of the journal after `position`
  };
  auto w = std::make_shared<Work>();
  w->position = position_;
  w->mark = position_mark_;
  w->force = force;
  w->resync_all = resync_all_;
  w->resync = resync_tables_;
  w->committed = std::move(committed_marks_);
  committed_marks_.clear();
  // Backlog and lag for /health and /metrics, at most twice a second.
  w->want_stats = clocks_.mono_ms() - journal_stats_mono_ >= 500;
  if (w->want_stats) journal_stats_mono_ = clocks_.mono_ms();
  JournalReader* reader = reader_.get();
  OffLoop(
      [w, reader, spool_dir = config_.source.spool_dir,
       spool_limit = config_.source.spool_memory_limit] {
        w->status = reader->CheckFile();
        if (!w->status.ok()) return;
        reader->NoteCommitted(w->committed);
        reader->ExpectMark(w->position, w->mark);
        Result<bool> changed = reader->Changed();
        if (!changed.ok()) {
          w->status = changed.status();
          return;
        }
        if (w->want_stats) {
          Result<JournalStats> stats = reader->Stats(w->position);
          if (stats.ok()) w->stats = *stats;  // advisory: a failure only leaves them old
        }
        Result<std::vector<std::string>> schema = reader->CheckSchema();
        if (!schema.ok()) {
          w->status = schema.status();
          return;
        }
        w->refused = reader->RefusedTables();
        // Tables the schema check (re)tracked are marked for a full read in
        // the file itself (durable across a kill); ReadBatch reads the marks.
        std::vector<std::string> tracked = reader->TrackedTables();  // nothing to read of others
        std::erase_if(w->resync, [&](const std::string& t) {
          return std::find(tracked.begin(), tracked.end(), t) == tracked.end();
        });
        std::vector<std::string> full;
        if (w->position < 0 || w->resync_all) {
          full = reader->TrackedTables();
        } else {
          full.assign(w->resync.begin(), w->resync.end());
        }
        if (!w->force && !*changed && full.empty() && schema->empty()) return;
        w->batch = std::make_unique<Batch>();
        w->batch->changes = ChangeSpool(spool_limit, spool_dir);
        w->status = reader->ReadBatch(w->position, full, w->batch.get());
        if (!w->status.ok()) return;
        w->empty = w->batch->changes.empty() && w->batch->full_tables.empty() &&
                   w->batch->full_read_marks.empty() &&
                   w->batch->snapshot_seq == w->batch->after_seq;
      },
      [this, w] {
        resync_tables_ = w->resync;
        if (w->stats) {
          backlog_ = w->stats->pending_rows;
          oldest_pending_at_ms_ = static_cast<int64_t>(w->stats->oldest_pending_at_ms);
        }
        if (w->batch != nullptr) metrics_->ChangesCaptured(w->batch->journal_rows);
        if (w->status.ok()) {
          UpdateStoppedTables(w->refused);
          if (reader_ != nullptr) metrics_->SetTables(reader_->TrackedTables());
        }
        if (w->batch != nullptr && !w->batch->changes.spill_error().empty()) {
          NoteSpoolProblem(w->batch->changes.spill_error());
        }
        if (StopIfRequested()) return;
        if (!w->status.ok()) {
          if (w->status.code() == Status::Code::kNotFound) return Reopen(w->status);
          if (w->status.code() == Status::Code::kCorruption) {
            spdlog::error("{}; resynchronising every table", w->status.message());
            resync_all_ = true;
            prune_to_ = pruned_to_ = -1;  // the file does not agree with the sink's position
            return Backoff("full resync", &Replicator::LoadPosition);
          }
          return Backoff(w->status.ToString(), &Replicator::LoadPosition);
        }
        if (w->empty) {
          // Nothing after the position, and the file agrees with it (seq and
          // fingerprint checked by the read): what is before it may go.
          prune_to_ = std::max(prune_to_, position_);
          Progress();
          if (!Leading("caught up")) return;
          Transition(State::kIdle, "caught up at " + std::to_string(position_));
          StartPrune();
          if (wake_pending_) StartRead(false);
          return;
        }
        if (!Leading("batch read")) return;  // another node applies it
        batch_ = std::move(w->batch);
        Apply();
        StartPrune();  // the reader is idle while the batch is at the sink
      });
}

void Replicator::StartPrune() {
  if (prune_in_flight_ || reader_ == nullptr) return;
  if (prune_to_ <= pruned_to_ && !marks_to_clear_) return;
  prune_in_flight_ = true;
  marks_to_clear_ = false;
  auto st = std::make_shared<Status>();
  int64_t to = prune_to_;
  JournalReader* reader = reader_.get();
  OffLoop(
      [reader, to, st, committed = std::move(committed_marks_)] {
        reader->NoteCommitted(committed);
        *st = reader->Prune(to);
      },
      [this, to, st] {
        prune_in_flight_ = false;
        if (st->ok()) {
          pruned_to_ = to;
          prune_failures_.Reset();
        } else if (st->code() == Status::Code::kBusy || stop_requested_) {
          // The app is writing, or the stop interrupted it: a later prune does it.
          spdlog::debug("journal prune deferred: {}", st->ToString());
        } else {
          // The journal grows until this heals: a stall of its own.
          int64_t now = NowMs();
          FailureReport report = prune_failures_.Note(st->ToString(), now);
          LogFailure(report,
                     "journal prune failed: " + st->ToString() +
                         "; the journal keeps growing until it succeeds",
                     now);
        }
        if (stop_requested_ && (state_ == State::kStopping || state_ == State::kIdle ||
                                state_ == State::kBackoff || state_ == State::kStandby)) {
          return Shutdown();
        }
        if (read_after_prune_) {
          read_after_prune_ = false;
          bool force = read_after_prune_force_;
          read_after_prune_force_ = false;
          StartRead(force);
        }
      });
}

void Replicator::Apply() {
  Transition(State::kApplying, "batch after " + std::to_string(batch_->after_seq) + " to " +
                                   std::to_string(batch_->snapshot_seq));
  // The epoch this agent holds, none if it holds none: a commit by an agent
  // that does not lead is refused by the fence (SL002), never made under
  // the epoch it last saw another node hold.
  std::optional<int64_t> epoch = lease_->lease().RequestEpoch();
  applier_->SetLease(epoch, config_.lease.duration_ms);
  int64_t started = clocks_.mono_ms();
  apply_started_ms_ = NowMs();
  applier_->Apply(conn_.get(), batch_.get(), [this, started, epoch](Status st, ApplyStats stats) {
    std::unique_ptr<Batch> batch = std::move(batch_);
    if (!st.ok()) {
      applier_->InvalidateCatalog();
      if (st.code() == Status::Code::kConflict || st.code() == Status::Code::kFenced ||
          st.code() == Status::Code::kUnavailable || st.code() == Status::Code::kCorruption) {
        CountSinkError(st);  // the others go through SinkFailure, which counts them
      }
      if (StopIfRequested()) return;
      if (st.code() == Status::Code::kFenced) {
        spdlog::warn("{}; the batch rolled back", st.message());
        if (epoch) lease_->Fenced(*epoch);
        // The lease may have been taken again under a newer epoch while the
        // batch was at the sink: then lead on from the position.
        if (!Leading("fenced by the sink")) return;
        return LoadPosition();
      }
      if (!lease_->MayApply()) return Standby("the leader lease was lost during a batch");
      switch (st.code()) {
        case Status::Code::kConflict:
          spdlog::warn("{}; re-reading the position", st.message());
          return LoadPosition();
        case Status::Code::kUnavailable:
          return Backoff(st.message(), &Replicator::Connect);
        case Status::Code::kCorruption:
          return Fatal(st);
        default:
          return SinkFailure(st, "", &Replicator::LoadPosition);
      }
    }
    if (!batch->full_tables.empty()) {
      spdlog::info("resynchronised {} table(s) at seq {}", batch->full_tables.size(),
                   batch->snapshot_seq);
      for (uint32_t i : batch->full_tables) resync_tables_.erase(batch->tables[i].name);
      resync_all_ = false;
    }
    resync_tables_.insert(stats.resync_tables.begin(), stats.resync_tables.end());
    if (stats.parked > 0) {
      spdlog::warn("batch to {}: {} row(s) parked in sync_metadata.conflict_log",
                   batch->snapshot_seq, stats.parked);
    }
    spdlog::debug("applied {} upserts ({} by COPY), {} deletes, {} journal rows, to seq {}",
                  stats.upserts, stats.copied, stats.deletes, batch->journal_rows,
                  batch->snapshot_seq);
    NoteApplied(*batch, stats, started);
    position_ = batch->snapshot_seq;
    position_mark_ = batch->snapshot_mark;
    prune_to_ = position_;
    pruned_to_ = std::min(pruned_to_, position_);  // a resync may move the position back
    committed_marks_.insert(committed_marks_.end(), batch->full_read_marks.begin(),
                            batch->full_read_marks.end());
    marks_to_clear_ = marks_to_clear_ || !batch->full_read_marks.empty();
    Progress();
    StartRead(true);
  });
}

void Replicator::Backoff(std::string_view why, void (Replicator::*retry)()) {
  int shift = std::min(retries_, 16);
  int64_t delay = std::min<int64_t>(static_cast<int64_t>(config_.agent.retry_min_ms) << shift,
                                    config_.agent.retry_max_ms);
  static thread_local std::minstd_rand jitter(std::random_device{}());
  delay = delay / 2 + static_cast<int64_t>(jitter() % static_cast<uint64_t>(delay / 2 + 1));
  ++retries_;
  State from = state_;
  int64_t now = NowMs();
  last_error_ = std::string(why);
  last_error_at_ms_ = now;
  FailureReport report = failures_.Note(why, now);
  LogFailure(report,
             fmt::format("state {} -> backoff: {}; retry in {} ms", StateName(from), why, delay),
             now);
  Transition(State::kBackoff, std::string(why) + "; retry in " + std::to_string(delay) + " ms");
  WriteState(true);  // the failure count moved even when the state did not
  retry_ = retry;
  uv_timer_start(&retry_timer_, OnRetryTimer, static_cast<uint64_t>(delay), 0);
}

void Replicator::SinkFailure(const Status& st, std::string_view context,
                             void (Replicator::*retry)()) {
  CountSinkError(st);
  if (pg::ActionOf(st) == pg::PgAction::kStop) {
    return Fatal(context.empty() ? st : st.Wrap(context));
  }
  if (st.code() == Status::Code::kUnavailable) {
    return Backoff(st.message(), &Replicator::Connect);
  }
  Backoff(context.empty() ? st.ToString() : st.Wrap(context).ToString(), retry);
}

void Replicator::Fatal(const Status& st) {
  spdlog::error("{}", st.ToString());
  // Every completion of work in flight (a connect, a query, an off-loop job)
  // now sees the stop and goes no further.
  stop_requested_ = true;
  last_error_ = st.ToString();
  last_error_at_ms_ = NowMs();
  // As for every command: 2 when the config must change (what the sink says
  // of it included: no such database, an invalid option), else 1.
  exit_code_ = st.code() == Status::Code::kInvalidArgument ? 2 : 1;
  Shutdown();
}

void Replicator::Progress() {
  retries_ = 0;
  int64_t ended = failures_.Reset();
  if (ended > 0) {
    spdlog::info("making progress again after {} failure(s) in a row", ended);
    WriteState(true);
  }
}

void Replicator::NoteSpoolProblem(const std::string& why) {
  int64_t now = NowMs();
  last_error_ = "spool: " + why;
  last_error_at_ms_ = now;
  FailureReport report = spool_log_.Note(why, now);
  if (report.level != FailureReport::Level::kQuiet) {
    spdlog::error(
        "source.spool_dir: {} (batch {} of this kind; set source.spool_dir to a directory with "
        "room for the largest batch)",
        why, report.count);
  }
  WriteState(true);
}

void Replicator::UpdateStoppedTables(const std::vector<TableRefusal>& refused) {
  int64_t now = NowMs();
  std::map<std::string, StoppedTable> next;
  bool changed = false;
  for (const TableRefusal& r : refused) {
    auto old = stopped_tables_.find(r.table);
    bool same = old != stopped_tables_.end() && old->second.error == r.reason;
    next[r.table] = {r.table, r.reason, same ? old->second.since_ms : now};
    changed = changed || !same;
    auto [log, inserted] =
        stopped_logs_.try_emplace(r.table, config_.agent.retry_max_ms * 10, int64_t{3600} * 1000);
    if (!same) log->second.Reset();
    FailureReport report = log->second.Note(r.reason, now);
    if (report.level != FailureReport::Level::kQuiet) {
      spdlog::error("table \"{}\" is not replicated until this is fixed (other tables go on): {}",
                    r.table, r.reason);
    }
  }
  for (const auto& [name, t] : stopped_tables_) {
    if (next.count(name) == 0) {
      spdlog::info("table \"{}\" is replicated again; it is read whole", name);
      stopped_logs_.erase(name);
      changed = true;
    }
  }
  stopped_tables_ = std::move(next);
  if (changed) WriteState(true);
}

void Replicator::WriteState(bool force) {
  int64_t now = NowMs();
  // Paced by the monotonic clock: after the wall clock went back, a pace by
  // it would stop the heartbeat for as long as the jump, and `sluice status`
  // would call a running agent stale.
  int64_t mono = clocks_.mono_ms();
  if (!force && mono - state_written_mono_ms_ < kStateHeartbeatMs) return;
  AgentStateRecord r;
  r.state = ReportedState();
  // While failures repeat, the state flips between backoff and a retry: the
  // trouble is as old as its first failure.
  r.since_ms = failures_.count() > 0 ? failures_.first_at_ms() : state_since_ms_;
  r.position = position_;
  r.last_error = last_error_;
  r.last_error_at_ms = last_error_at_ms_;
  r.failures = failures_.count();
  r.exit_code = state_ == State::kStopped ? exit_code_ : -1;
  r.pid = ::getpid();
  r.host = host_;
  r.node = config_.node;
  r.role = Role();
  r.epoch = lease_->lease().epoch();
  r.http = http_address_;
  r.updated_at_ms = now;
  for (const auto& [name, t] : stopped_tables_) r.stopped_tables.push_back(t);
  r.progress = ProgressNow();
  progress_written_ = r.progress.has_value();
  state_written_mono_ms_ = mono;
  // Blocking, on the loop thread: a few hundred bytes, on state changes,
  // failures and every kStateHeartbeatMs; the file is advisory.
  Status st = WriteAgentState(state_path_, r);
  if (!st.ok() && !state_write_warned_) {
    spdlog::warn("cannot write the agent state file (sluice status will not see this agent): {}",
                 st.message());
    state_write_warned_ = true;
  }
}

bool Replicator::StopIfRequested() {
  if (!stop_requested_) return false;
  Shutdown();
  return true;
}

void Replicator::Stop(std::string_view why) {
  if (stop_requested_) return Abort(std::string(why) + " again");
  stop_requested_ = true;
  // Work in flight (reading off loop, a batch at the sink, a connect, a prune)
  // may finish first; its completion sees stop_requested_ and shuts down.
  if (state_ == State::kIdle || state_ == State::kBackoff || state_ == State::kStandby) {
    Shutdown();
  }
  if (handles_closing_ || state_ == State::kStopped) {
    spdlog::info("stop requested ({})", why);
    return;
  }
  int limit = config_.agent.stop_timeout_ms;
  spdlog::info(
      "stop requested ({}): finishing the work in flight, for at most {} ms "
      "(agent.stop_timeout_ms); a second signal stops at once",
      why, limit);
  if (limit == 0) return Abort("agent.stop_timeout_ms is 0");
  uv_timer_start(&stop_timer_, OnStopTimer, static_cast<uint64_t>(limit), 0);
}

void Replicator::Abort(std::string_view why) {
  if (handles_closing_ || state_ == State::kStopped) return;
  stop_requested_ = true;
  if (aborting_) {
    spdlog::warn("stopping now ({}): closing the sink connection; the server rolls back", why);
    conn_->Close([] {});  // callbacks in flight get kUnavailable, see the stop, shut down
    return;
  }
  aborting_ = true;
  spdlog::warn(
      "stopping now ({}): the batch in flight, if any, is rolled back at the sink (nothing is "
      "lost: the position moves only with a commit) and read again at the next start",
      why);
  applier_->Cancel();
  conn_->CancelRunning();
  if (reader_ != nullptr) reader_->Interrupt();
  uv_timer_start(&stop_timer_, OnStopTimer, kAbortGraceMs, 0);
}

void Replicator::Reload() {
  if (config_.file.empty()) {
    spdlog::warn("SIGHUP: no config file to read again; ignored");
    return;
  }
  spdlog::info("SIGHUP: reloading the config from {}", config_.file);
  Result<Config> file = LoadConfig(config_.file);
  if (!file.ok()) {
    spdlog::error("config reload failed: {}; the running config stays", file.status().message());
    return;
  }
  // A changed conflict policy is checked against the tables as the file holds
  // them now; on the loop, so a locked schema is waited for briefly only.
  Result<std::vector<TableShape>> shapes = std::vector<TableShape>{};
  if (file->sink.conflicts != config_.sink.conflicts) {
    shapes = DescribeSourceTables(config_.source, std::min(config_.source.busy_timeout_ms, 250));
  }
  ReloadPlan plan = PlanReload(config_, *file, shapes);
  for (const std::string& r : plan.refused) spdlog::error("config reload: {}", r);
  if (plan.conflicts_changed) {
    applier_->SetConflictPolicy(plan.next.sink.conflicts);
    metrics_->SetConflictPolicy(plan.next.sink.conflicts);  // the zero series of new strategies
  }
  int old_poll = config_.agent.poll_interval_ms;
  config_ = std::move(plan.next);
  spdlog::set_level(spdlog::level::from_str(config_.agent.log_level));
  if (config_.agent.poll_interval_ms != old_poll &&
      uv_is_active(reinterpret_cast<uv_handle_t*>(&poll_timer_))) {
    uint64_t every = static_cast<uint64_t>(config_.agent.poll_interval_ms);
    uv_timer_start(&poll_timer_, OnPollTimer, every, every);
  }
  std::string applied, restart;
  for (const std::string& a : plan.applied) applied += (applied.empty() ? "" : "; ") + a;
  for (const std::string& k : plan.need_restart) restart += (restart.empty() ? "" : ", ") + k;
  spdlog::info("config reloaded: {}", applied.empty() ? "nothing to take over" : applied);
  if (!restart.empty()) {
    spdlog::warn(
        "config reload: {} changed in the file; that needs a restart (the agent runs on "
        "with the old value)",
        restart);
  }
}

void Replicator::Shutdown() {
  if (state_ == State::kStopped || handles_closing_) return;
  if (state_ != State::kStopping) {
    Transition(State::kStopping, exit_code_ == 0 ? "stop" : "fatal error");
  }
  if (jobs_in_flight_ > 0) return;  // the last one's completion calls Shutdown again
  if (marks_to_clear_ && reader_ != nullptr && !aborting_) {
    // A batch that read tables whole committed, but the prune that clears
    // their full-read marks in the file has not run: clear them now, or the
    // next start (this node's or the standby's) reads those tables whole again.
    marks_to_clear_ = false;
    JournalReader* reader = reader_.get();
    int64_t to = prune_to_;
    OffLoop(
        [reader, to, committed = std::move(committed_marks_)] {
          reader->NoteCommitted(committed);
          Status st = reader->Prune(to);
          if (!st.ok()) spdlog::debug("full-read marks not cleared at stop: {}", st.ToString());
        },
        [] {});  // OffLoop calls Shutdown again: the state is stopping
    return;
  }
  handles_closing_ = true;
  // The batch in flight is done (committed or rolled back): a standby may
  // take over at once.
  lease_->Release([this] { CloseHandles(); });
}

void Replicator::CloseHandles() {
  auto closed = [](uv_handle_t* h) { static_cast<Replicator*>(h->data)->HandleClosed(); };
  if (http_ != nullptr) {
    ++open_handles_;
    http_->Close([this] { HandleClosed(); });
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&sighup_), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&stop_timer_), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_timer_), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&retry_timer_), closed);
  if (wal_event_inited_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&wal_event_), closed);
  }
}

void Replicator::HandleClosed() {
  if (--open_handles_ > 0) return;
  conn_->Close([this] {
    reader_.reset();
    Transition(State::kStopped, "all handles closed");
  });
}

void Replicator::OnSignal(uv_signal_t* h, int signum) noexcept {
  auto* self = static_cast<Replicator*>(h->data);
  if (signum == SIGHUP) return self->Reload();
  self->Stop(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void Replicator::OnStopTimer(uv_timer_t* h) noexcept {
  auto* self = static_cast<Replicator*>(h->data);
  if (self->aborting_) {
    return self->Abort("no answer from the sink " + std::to_string(kAbortGraceMs) +
                       " ms after the cancel");
  }
  self->Abort("agent.stop_timeout_ms (" + std::to_string(self->config_.agent.stop_timeout_ms) +
              " ms) passed");
}

std::optional<SyncProgress> Replicator::ProgressNow() const {
  if (state_ != State::kApplying) return std::nullopt;
  // A batch of the stream is at the sink for a few ms: only one at it for a
  // second or more (an initial sync, a resync, a large catch-up) is shown.
  if (NowMs() - apply_started_ms_ < 1000) return std::nullopt;
  std::optional<ApplyProgress> p = applier_->Progress();
  if (!p || p->rows_total == 0) return std::nullopt;
  return MakeSyncProgress(*p, position_ < 0, apply_started_ms_, NowMs());
}

void Replicator::OnPollTimer(uv_timer_t* h) noexcept {
  auto* self = static_cast<Replicator*>(h->data);
  // Heartbeat: status tells a live agent from a stale file; a batch at the
  // sink shows its progress every second.
  bool applying = self->state_ == State::kApplying;
  self->WriteState(applying && self->clocks_.mono_ms() - self->state_written_mono_ms_ >= 1000);
  self->Wake();
}

void Replicator::OnRetryTimer(uv_timer_t* h) noexcept {
  auto* self = static_cast<Replicator*>(h->data);
  auto retry = self->retry_;
  self->retry_ = nullptr;
  if (self->StopIfRequested() || retry == nullptr) return;
  (self->*retry)();
}

void Replicator::OnWalEvent(uv_fs_event_t* h, const char* /*name*/, int /*events*/,
                            int status) noexcept {
  if (status < 0) return;
  static_cast<Replicator*>(h->data)->Wake();
}

}  // namespace sluice
