// LeaseDriver: keeps asking the sink for this deployment's lease on a
// connection of its own (so a renewal never waits behind a long apply) and a
// libuv timer, feeding the answers to the Lease state machine. A second timer
// fires at the lease's own deadline: a leader whose renewals get no answer
// stops by its own monotonic clock. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "agent/failure_log.h"
#include "agent/lease.h"
#include "agent/metrics.h"
#include "common/status.h"
#include "sink/pg_connection.h"

namespace sluice {

struct LeaseIdentity {
  std::string deployment;
  std::string node;
  std::string host;
};

class LeaseDriver {
 public:
  // Milliseconds of a monotonic clock (tests inject their own).
  using Clock = std::function<int64_t()>;
  // Every change of leadership (kAcquired, kLost), and kRenewed.
  using Listener = std::function<void(LeaseEvent)>;
  // A request that failed in a way no retry fixes (the control plane lacks
  // the lease functions, permission denied): the agent must stop.
  using FatalListener = std::function<void(Status)>;

  // `metrics` (outlives the driver) counts renewals, renewals failed while
  // leading, and acquisitions as they happen.
  LeaseDriver(uv_loop_t* loop, std::string conninfo, LeaseIdentity id, LeaseTimings timings,
              Clock clock, Metrics* metrics, Listener on_event, FatalListener on_fatal);
  ~LeaseDriver();
  LeaseDriver(const LeaseDriver&) = delete;
  LeaseDriver& operator=(const LeaseDriver&) = delete;

  void Start();
  // Gives the lease up (expires_at := now() at the sink) if this agent holds
  // it, stops asking, closes the connection, then calls done. At most one
  // lease request's time (the connection's deadline) when the sink is gone.
  void Release(std::function<void()> done);

  const Lease& lease() const { return lease_; }
  bool MayApply() const { return lease_.MayApply(clock_()); }
  // The sink refused a commit made under `epoch`: stop leading under it now.
  void Fenced(int64_t epoch);
  // Reads the clock now: a deadline that passed loses the lease at once
  // (the deadline timer may not have fired yet, e.g. after the clock jumped).
  void Check();
  int64_t Now() const { return clock_(); }
  // The lease connection answered its last request.
  bool sink_reachable() const { return reachable_; }

 private:
  void Schedule();
  void Ask();
  void OnAnswer(Status st, std::vector<PgResult> results);
  void Handle(LeaseEvent e);
  // A request or connect failed: counted, and logged at warn then error at
  // doubling intervals (a standby that cannot ask can never take over).
  void NoteFailure(const Status& st);
  void ArmDeadline();
  void CloseAll(std::function<void()> done);
  static void OnAskTimer(uv_timer_t* t) noexcept;
  static void OnDeadline(uv_timer_t* t) noexcept;

  uv_loop_t* loop_;
  LeaseIdentity id_;
  Lease lease_;
  Clock clock_;
  Metrics* metrics_;
  Listener on_event_;
  FatalListener on_fatal_;
  std::unique_ptr<PgConnection> conn_;
  uv_timer_t ask_timer_{};
  uv_timer_t deadline_timer_{};
  int open_timers_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  bool connecting_ = false;
  bool reachable_ = false;
  FailureLog request_failures_;
  std::function<void()> after_answer_;  // Release waits for the request in flight
  std::function<void()> after_close_;
};

}  // namespace sluice
