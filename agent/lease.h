// Lease: the leader lease as this agent sees it, a pure state machine. Every
// reading of time is an argument (the agent's monotonic clock, in ms), so it
// is unit-tested without a database or a clock. The database decides who
// holds the lease (sync_metadata.sluice_lease); this decides when the agent
// itself must stop applying: a renewal sent at t for a lease of d lets it
// apply until t + d - margin, whatever happens to the reply.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sluice {

struct LeaseTimings {
  int64_t duration_ms = 5000;  // lease.duration_ms
  int64_t renew_ms = 1666;     // lease.renew_ms: the leader renews this often
  int64_t poll_ms = 200;       // lease.poll_ms: a standby asks this often
};

// The part of a lease the agent gives up for safety at the end of each
// lease: a tenth of it, at least 50 ms, at most 1 s.
int64_t LeaseSafetyMarginMs(int64_t duration_ms);

// What sync_metadata.sluice_lease answered.
struct LeaseReply {
  bool held = false;  // the caller holds the lease after the call
  int64_t epoch = 0;
  std::string holder;       // leader_id
  std::string holder_host;  // leader_host
  int64_t expires_in_ms = 0;
};

enum class LeaseEvent : uint8_t {
  kNone,      // nothing changed
  kAcquired,  // this agent leads now, under a new epoch
  kRenewed,   // still the leader, valid for longer
  kLost,      // this agent led and must stop applying now
};

const char* LeaseEventName(LeaseEvent e);

class Lease {
 public:
  explicit Lease(LeaseTimings timings);

  // The epoch to send with the next request: the held one, or none.
  std::optional<int64_t> RequestEpoch() const;
  // A request (acquire or renew) leaves now. One at a time.
  void Sent(int64_t now);
  LeaseEvent OnReply(const LeaseReply& reply, int64_t now);
  // The request failed (no connection, timeout, lock timeout): nothing is
  // known of the lease; it stays valid until its deadline by this clock.
  LeaseEvent OnFailure(int64_t now);
  // The clock moved: a leader whose deadline passed loses the lease.
  LeaseEvent OnTick(int64_t now);
  // The sink refused a commit made under `epoch` (SL002), or this agent
  // gives that epoch up (release): it does not lead under it, whatever the
  // clock says. A refusal of an older epoch's batch (the lease ran out and
  // was taken again while the batch was at the sink) leaves the newer lease.
  LeaseEvent OnFenced(int64_t epoch);

  bool leader() const { return leader_; }
  // Leader, and the deadline has not passed.
  bool MayApply(int64_t now) const { return leader_ && now < valid_until_; }
  int64_t epoch() const { return epoch_; }
  int64_t valid_until() const { return valid_until_; }  // meaningful while leader()
  // Milliseconds from `now` until the next request should leave.
  int64_t NextRequestIn(int64_t now) const;
  const std::string& holder() const { return holder_; }
  const std::string& holder_host() const { return holder_host_; }
  const LeaseTimings& timings() const { return timings_; }
  bool in_flight() const { return in_flight_; }

 private:
  LeaseEvent Lose();

  LeaseTimings timings_;
  int64_t margin_ms_;
  bool leader_ = false;
  bool in_flight_ = false;
  int64_t epoch_ = 0;
  int64_t sent_at_ = 0;
  int64_t valid_until_ = 0;
  int64_t last_ok_sent_at_ = 0;  // the request whose reply set valid_until_
  bool last_failed_ = false;
  std::string holder_;
  std::string holder_host_;
};

}  // namespace sluice
