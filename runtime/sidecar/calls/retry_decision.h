// What happens after an attempt: the one retry rule of callmesh, used both by the dispatcher
// (attempts at a target) and by callback delivery (attempts at a callback service). A pure
// function of the attempt, its outcome, the time and the policy, so it is tested with tables.
//
//   calls::Decision next = calls::DecideAfterAttempt(
//       {.attempt = 2, .deadline = deadline}, status_code, clock.Now(), plan, draw(random));
//   switch (next.step) { case calls::Step::kRetry: timer at next.retry_at; ... }
#pragma once

#include <cstdint>

#include "absl/time/time.h"
#include "runtime/sidecar/dispatch/retry_policy.h"

namespace callmesh::calls {

enum class Step {
  kSucceed,  // the attempt succeeded: done
  kRetry,    // try again at Decision::retry_at
  kFail,     // give up: FAILED (a call) or dead-lettered (a callback)
  kExpire,   // the overall deadline has passed: EXPIRED
};

struct AttemptState {
  // 1-based number of the attempt that just ended.
  uint32_t attempt = 1;
  // Overall deadline; InfiniteFuture = none (callback delivery).
  absl::Time deadline = absl::InfiniteFuture();
};

struct Decision {
  Step step = Step::kFail;
  // For kRetry: the delay drawn and when the next attempt starts (= now + delay < deadline).
  absl::Duration delay;
  absl::Time retry_at;
};

// After attempt `state.attempt` ended with gRPC code `code` at `now`: success; else EXPIRED if the
// deadline has passed; else a retry if the code is retryable by `plan`, attempts are left and the
// next attempt would start before the deadline; else failure. `random01` in [0, 1) picks the
// jitter (see BackoffDelay).
Decision DecideAfterAttempt(const AttemptState& state, int code, absl::Time now,
                            const sidecar::RetryPlan& plan, double random01);

// Delay before attempt `failed_attempts + 1`: initial·multiplier^(failed_attempts−1), capped at
// max_backoff, then jittered: scaled by a factor in [1−jitter, 1+jitter) chosen by `random01`.
absl::Duration BackoffDelay(const sidecar::RetryPlan& plan, uint32_t failed_attempts,
                            double random01);

}  // namespace callmesh::calls
