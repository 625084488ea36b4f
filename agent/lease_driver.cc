// LeaseDriver: one lease request at a time on its own connection; the answer
// goes to Lease, the agent hears of acquisitions and losses.
#include "agent/lease_driver.h"

#include <spdlog/spdlog.h>

#include "sink/pg_error.h"
#include "sink/pg_sql.h"

namespace sluice {
namespace {

// A lease request waits this long at most for the lease row's lock (a
// frozen old leader between its fence and its COMMIT holds it until the
// sink's idle_in_transaction_session_timeout ends its session).
int64_t LockTimeoutMs(const LeaseTimings& t) { return std::max<int64_t>(50, t.poll_ms); }

// No answer to a lease request for this long: the connection is given up
// and made again. A leader must hear back well before its deadline.
int QueryTimeoutMs(const LeaseTimings& t) {
  return static_cast<int>(std::max<int64_t>(500, std::min(t.renew_ms, t.duration_ms / 2)));
}

}  // namespace

LeaseDriver::LeaseDriver(uv_loop_t* loop, std::string conninfo, LeaseIdentity id,
                         LeaseTimings timings, Clock clock, Metrics* metrics, Listener on_event,
                         FatalListener on_fatal)
    : loop_(loop),
      id_(std::move(id)),
      lease_(timings),
      clock_(std::move(clock)),
      metrics_(metrics),
      on_event_(std::move(on_event)),
      on_fatal_(std::move(on_fatal)),
      // Repeats reported after a lease duration, then twice that, up to an hour.
      request_failures_(timings.duration_ms, int64_t{3600} * 1000) {
  conn_ = std::make_unique<PgConnection>(loop_, std::move(conninfo), QueryTimeoutMs(timings));
}

LeaseDriver::~LeaseDriver() = default;

void LeaseDriver::Start() {
  if (started_) return;
  started_ = true;
  uv_timer_init(loop_, &ask_timer_);
  uv_timer_init(loop_, &deadline_timer_);
  ask_timer_.data = deadline_timer_.data = this;
  open_timers_ = 2;
  Ask();
}

void LeaseDriver::Schedule() {
  if (stopping_) return;
  uv_timer_start(&ask_timer_, OnAskTimer, static_cast<uint64_t>(lease_.NextRequestIn(clock_())), 0);
}

void LeaseDriver::Ask() {
  if (stopping_ || lease_.in_flight()) return;
  if (!conn_->connected()) {
    if (connecting_) return;
    connecting_ = true;
    conn_->Connect([this](Status st) {
      connecting_ = false;
      if (!st.ok()) {
        reachable_ = false;
        NoteFailure(st);
        Handle(lease_.OnFailure(clock_()));
        if (after_answer_) return std::exchange(after_answer_, nullptr)();
        if (pg::ActionOf(st) == pg::PgAction::kStop) return on_fatal_(st.Wrap("lease connection"));
        return Schedule();
      }
      if (after_answer_) return std::exchange(after_answer_, nullptr)();
      Ask();
    });
    return;
  }
  std::optional<int64_t> epoch = lease_.RequestEpoch();
  lease_.Sent(clock_());
  conn_->Submit(
      {{"SELECT set_config('lock_timeout', $1, true)",
        {std::to_string(LockTimeoutMs(lease_.timings())) + "ms"}},
       {"SELECT held, epoch, coalesce(leader_id, ''), coalesce(leader_host, ''), expires_in_ms, "
        "(SELECT version FROM sync_metadata.schema_version WHERE component = 'control-plane') "
        "FROM sync_metadata.sluice_lease($1, $2, $3, $4::bigint, $5::bigint)",
        {id_.deployment, id_.node, id_.host,
         epoch ? std::optional<std::string>(std::to_string(*epoch)) : std::nullopt,
         std::to_string(lease_.timings().duration_ms)}}},
      [this](Status st, std::vector<PgResult> results) { OnAnswer(st, std::move(results)); });
}

void LeaseDriver::OnAnswer(Status st, std::vector<PgResult> results) {
  int64_t now = clock_();
  if (st.ok() && (results.size() < 2 || results[1].rows.empty() || results[1].rows[0].size() < 6)) {
    st = Status::Internal("sluice_lease returned no row");
  }
  if (!st.ok()) {
    reachable_ = st.code() != Status::Code::kUnavailable;
    NoteFailure(st);
    Handle(lease_.OnFailure(now));
    if (after_answer_) return std::exchange(after_answer_, nullptr)();
    // An older control plane has no sluice_lease: no retry fixes that.
    if (st.message().find("SQLSTATE 42883") != std::string::npos) {
      return on_fatal_(Status::InvalidArgument(
          "the sink's control plane has no leader lease (sync_metadata.sluice_lease): it is "
          "older than this agent; run `sluice init` to upgrade it"));
    }
    if (pg::ActionOf(st) == pg::PgAction::kStop) return on_fatal_(st.Wrap("leader lease"));
    return Schedule();
  }
  reachable_ = true;
  // An upgrade without `sluice init`: the trigger functions at the sink do
  // not handle what this binary writes (no retry fixes that).
  int64_t version = std::stoll(results[1].rows[0][5].value_or("0"));
  if (version < kControlPlaneVersion) {
    Handle(lease_.OnFailure(now));  // the request is answered: a Release need not wait for it
    if (after_answer_) return std::exchange(after_answer_, nullptr)();
    return on_fatal_(Status::InvalidArgument(
        "the sink's control plane is version " + std::to_string(version) +
        "; this sluice needs version " + std::to_string(kControlPlaneVersion) +
        ": run `sluice init` to upgrade it (it applies sql/01-control-plane.sql)"));
  }
  int64_t ended = request_failures_.Reset();
  if (ended > 0) spdlog::info("leader lease requests answered again after {} failure(s)", ended);
  const auto& row = results[1].rows[0];
  LeaseReply reply;
  reply.held = row[0].value_or("f") == "t";
  reply.epoch = std::stoll(row[1].value_or("0"));
  reply.holder = row[2].value_or("");
  reply.holder_host = row[3].value_or("");
  reply.expires_in_ms = std::stoll(row[4].value_or("0"));
  LeaseEvent e = lease_.OnReply(reply, now);
  if (e == LeaseEvent::kRenewed) metrics_->LeaseRenewed();
  Handle(e);
  if (after_answer_) return std::exchange(after_answer_, nullptr)();
  Schedule();
}

void LeaseDriver::NoteFailure(const Status& st) {
  if (lease_.leader()) metrics_->LeaseRenewalFailed();
  int64_t now = clock_();
  LogFailure(request_failures_.Note(st.message(), now),
             std::string(lease_.leader() ? "lease renewal" : "leader lease request") +
                 " failed: " + st.message(),
             now);
}

void LeaseDriver::Handle(LeaseEvent e) {
  switch (e) {
    case LeaseEvent::kNone:
      break;
    case LeaseEvent::kAcquired:
      metrics_->LeaseAcquired();
      spdlog::info("leader lease acquired: epoch {} for {} ms", lease_.epoch(),
                   lease_.timings().duration_ms);
      break;
    case LeaseEvent::kRenewed:
      break;
    case LeaseEvent::kLost:
      spdlog::warn("leader lease lost (epoch {}; holder now {}): standing by", lease_.epoch(),
                   lease_.holder().empty() ? "unknown" : lease_.holder());
      break;
  }
  ArmDeadline();
  if (e != LeaseEvent::kNone && on_event_) on_event_(e);
}

void LeaseDriver::ArmDeadline() {
  if (stopping_ || !started_) return;
  if (!lease_.leader()) {
    uv_timer_stop(&deadline_timer_);
    return;
  }
  int64_t left = lease_.valid_until() - clock_();
  uv_timer_start(&deadline_timer_, OnDeadline, static_cast<uint64_t>(std::max<int64_t>(0, left)),
                 0);
}

void LeaseDriver::Fenced(int64_t epoch) { Handle(lease_.OnFenced(epoch)); }

void LeaseDriver::Check() { Handle(lease_.OnTick(clock_())); }

void LeaseDriver::Release(std::function<void()> done) {
  if (!started_) return done();
  if (stopping_) return done();
  stopping_ = true;
  uv_timer_stop(&ask_timer_);
  uv_timer_stop(&deadline_timer_);
  auto finish = [this, done = std::move(done)]() mutable { CloseAll(std::move(done)); };
  auto release = [this, finish]() mutable {
    if (!lease_.leader() || !conn_->connected()) return finish();
    int64_t epoch = lease_.epoch();
    lease_.OnFenced(epoch);  // no more applies from here on (not "lost": given up)
    if (on_event_) on_event_(LeaseEvent::kLost);
    conn_->Submit({{"SELECT sync_metadata.sluice_lease_release($1, $2::bigint)",
                    {id_.deployment, std::to_string(epoch)}}},
                  [epoch, finish](Status st, std::vector<PgResult>) mutable {
                    if (st.ok()) {
                      spdlog::info("leader lease released (epoch {})", epoch);
                    } else {
                      spdlog::warn("leader lease not released ({}); it expires by itself",
                                   st.message());
                    }
                    finish();
                  });
  };
  if (lease_.in_flight() || connecting_) {
    after_answer_ = std::move(release);  // one request at a time
    return;
  }
  release();
}

void LeaseDriver::CloseAll(std::function<void()> done) {
  auto shared = std::make_shared<std::function<void()>>(std::move(done));
  conn_->Close([this, shared] {
    auto closed = [](uv_handle_t* h) {
      auto* self = static_cast<LeaseDriver*>(h->data);
      if (--self->open_timers_ == 0 && self->after_close_) {
        std::exchange(self->after_close_, nullptr)();
      }
    };
    after_close_ = [shared] { (*shared)(); };
    uv_close(reinterpret_cast<uv_handle_t*>(&ask_timer_), closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&deadline_timer_), closed);
  });
}

void LeaseDriver::OnAskTimer(uv_timer_t* t) noexcept { static_cast<LeaseDriver*>(t->data)->Ask(); }

void LeaseDriver::OnDeadline(uv_timer_t* t) noexcept {
  auto* self = static_cast<LeaseDriver*>(t->data);
  self->Handle(self->lease_.OnTick(self->clock_()));
}

}  // namespace sluice
