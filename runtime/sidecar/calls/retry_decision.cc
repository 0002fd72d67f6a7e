#include "runtime/sidecar/calls/retry_decision.h"

#include <algorithm>
#include <cmath>

namespace callmesh::calls {

absl::Duration BackoffDelay(const sidecar::RetryPlan& plan, uint32_t failed_attempts,
                            double random01) {
  const double exponent = failed_attempts > 0 ? failed_attempts - 1 : 0;
  absl::Duration delay = plan.initial_backoff * std::pow(plan.multiplier, std::min(exponent, 64.0));
  delay = std::min(delay, plan.max_backoff);
  if (plan.jitter > 0) delay *= 1.0 - plan.jitter + 2.0 * plan.jitter * random01;
  return std::max(delay, absl::ZeroDuration());
}

Decision DecideAfterAttempt(const AttemptState& state, int code, absl::Time now,
                            const sidecar::RetryPlan& plan, double random01) {
  Decision decision;
  if (code == 0) {
    decision.step = Step::kSucceed;
    return decision;
  }
  if (now >= state.deadline) {
    decision.step = Step::kExpire;
    return decision;
  }
  decision.step = Step::kFail;
  if (!plan.IsRetryable(code) || state.attempt >= plan.max_attempts) return decision;
  decision.delay = BackoffDelay(plan, state.attempt, random01);
  decision.retry_at = now + decision.delay;
  if (decision.retry_at < state.deadline) decision.step = Step::kRetry;
  return decision;
}

}  // namespace callmesh::calls
