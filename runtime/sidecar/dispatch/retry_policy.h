// Retry policies and per-target settings of async calls, resolved from SidecarConfig: the policy
// of a method is its `method_retry` entry, else its service's `retry`, else `default_retry`.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "callmesh/v1/config.pb.h"

namespace callmesh::sidecar {

struct RetryPlan {
  uint32_t max_attempts = 5;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(30);
  double multiplier = 2.0;
  // Fraction of the delay randomized: the delay is drawn from [d·(1−jitter), d·(1+jitter)].
  double jitter = 0.2;
  // gRPC codes worth another attempt; empty = every non-OK code.
  std::set<int> retryable_codes;

  // From a policy whose defaults are filled (ApplyConfigDefaults); code names are mapped with
  // ParseStatusCodeName (unknown names were rejected by ValidateConfig).
  static RetryPlan FromProto(const v1::RetryPolicy& policy);

  // What to do after an attempt (back-off included) is decided by calls::DecideAfterAttempt.
  bool IsRetryable(int code) const;
};

// Everything the dispatcher needs to know per target, looked up by name (and method path).
class DispatchPolicies {
 public:
  explicit DispatchPolicies(const v1::SidecarConfig& config);

  // `method` may be "pkg.Service/Method" or "/pkg.Service/Method".
  const RetryPlan& Retry(absl::string_view service, absl::string_view method) const;
  absl::Duration AttemptTimeout(absl::string_view service) const;
  uint32_t MaxInFlight(absl::string_view service) const;
  const RetryPlan& CallbackRetry() const { return callback_retry_; }
  absl::Duration DefaultCallTimeout() const { return default_call_timeout_; }

 private:
  struct Target {
    RetryPlan retry;
    std::map<std::string, RetryPlan, std::less<>> method_retry;
    absl::Duration attempt_timeout;
    uint32_t max_in_flight;
  };
  RetryPlan default_retry_;
  RetryPlan callback_retry_;
  absl::Duration default_attempt_timeout_;
  absl::Duration default_call_timeout_;
  uint32_t default_max_in_flight_;
  std::map<std::string, Target, std::less<>> targets_;
};

}  // namespace callmesh::sidecar
