// The lease state machine (agent/lease.h): deadlines by the agent's monotonic
// clock, measured from when each request left, never from when it came back.
#include "agent/lease.h"

#include <algorithm>

namespace sluice {

int64_t LeaseSafetyMarginMs(int64_t duration_ms) {
  return std::clamp<int64_t>(duration_ms / 10, 50, 1000);
}

const char* LeaseEventName(LeaseEvent e) {
  switch (e) {
    case LeaseEvent::kNone:
      return "none";
    case LeaseEvent::kAcquired:
      return "acquired";
    case LeaseEvent::kRenewed:
      return "renewed";
    case LeaseEvent::kLost:
      return "lost";
  }
  return "?";
}

Lease::Lease(LeaseTimings timings)
    : timings_(timings), margin_ms_(LeaseSafetyMarginMs(timings.duration_ms)) {}

std::optional<int64_t> Lease::RequestEpoch() const {
  if (!leader_) return std::nullopt;
  return epoch_;
}

void Lease::Sent(int64_t now) {
  sent_at_ = now;
  in_flight_ = true;
}

LeaseEvent Lease::Lose() {
  if (!leader_) return LeaseEvent::kNone;
  leader_ = false;
  return LeaseEvent::kLost;
}

LeaseEvent Lease::OnReply(const LeaseReply& reply, int64_t now) {
  in_flight_ = false;
  last_failed_ = false;
  holder_ = reply.holder;
  holder_host_ = reply.holder_host;
  if (!reply.held) {
    epoch_ = std::max(epoch_, reply.epoch);
    return Lose();
  }
  // The database's expiry is at least this far from when the request left
  // (its clock read the duration after the request arrived).
  int64_t until = sent_at_ + std::min(timings_.duration_ms, reply.expires_in_ms) - margin_ms_;
  if (now >= until) {  // the reply came too late to be of use
    epoch_ = std::max(epoch_, reply.epoch);
    return Lose();
  }
  bool fresh = !leader_ || reply.epoch != epoch_;
  leader_ = true;
  epoch_ = reply.epoch;
  valid_until_ = until;
  last_ok_sent_at_ = sent_at_;
  return fresh ? LeaseEvent::kAcquired : LeaseEvent::kRenewed;
}

LeaseEvent Lease::OnFailure(int64_t now) {
  in_flight_ = false;
  last_failed_ = true;
  return OnTick(now);
}

LeaseEvent Lease::OnTick(int64_t now) {
  if (leader_ && now >= valid_until_) return Lose();
  return LeaseEvent::kNone;
}

LeaseEvent Lease::OnFenced(int64_t epoch) {
  if (epoch != epoch_) return LeaseEvent::kNone;
  return Lose();
}

int64_t Lease::NextRequestIn(int64_t now) const {
  if (!leader_) return timings_.poll_ms;
  // After a failed renewal, try again soon (a few times before the deadline).
  int64_t due = last_failed_ ? now + std::min(timings_.renew_ms, timings_.poll_ms)
                             : last_ok_sent_at_ + timings_.renew_ms;
  return std::max<int64_t>(0, due - now);
}

}  // namespace sluice
