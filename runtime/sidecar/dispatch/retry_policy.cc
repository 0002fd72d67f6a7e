#include "runtime/sidecar/dispatch/retry_policy.h"

#include <algorithm>

#include "absl/strings/strip.h"
#include "runtime/common/proto_time.h"
#include "runtime/common/status_code_names.h"

namespace callmesh::sidecar {

RetryPlan RetryPlan::FromProto(const v1::RetryPolicy& policy) {
  RetryPlan plan;
  plan.max_attempts = std::max<uint32_t>(1, policy.max_attempts());
  plan.initial_backoff = FromProtoDuration(policy.initial_backoff());
  plan.max_backoff = FromProtoDuration(policy.max_backoff());
  plan.multiplier = policy.backoff_multiplier() > 0 ? policy.backoff_multiplier() : 1.0;
  plan.jitter = std::clamp(policy.jitter(), 0.0, 1.0);
  for (const std::string& name : policy.retryable_codes()) {
    absl::StatusOr<int> code = ParseStatusCodeName(name);
    if (code.ok()) plan.retryable_codes.insert(*code);
  }
  return plan;
}

bool RetryPlan::IsRetryable(int code) const {
  return code != 0 && (retryable_codes.empty() || retryable_codes.count(code) > 0);
}

DispatchPolicies::DispatchPolicies(const v1::SidecarConfig& config)
    : default_retry_(RetryPlan::FromProto(config.default_retry())),
      callback_retry_(RetryPlan::FromProto(config.callback_retry())),
      default_attempt_timeout_(FromProtoDuration(config.default_attempt_timeout())),
      default_call_timeout_(FromProtoDuration(config.default_call_timeout())),
      default_max_in_flight_(std::max<uint32_t>(1, config.limits().max_in_flight_per_target())) {
  for (const v1::ServiceConfig& service : config.services()) {
    Target target;
    target.retry = service.has_retry() ? RetryPlan::FromProto(service.retry()) : default_retry_;
    for (const auto& [method, policy] : service.method_retry()) {
      target.method_retry.emplace(std::string(absl::StripPrefix(method, "/")),
                                  RetryPlan::FromProto(policy));
    }
    target.attempt_timeout = service.has_attempt_timeout()
                                 ? FromProtoDuration(service.attempt_timeout())
                                 : default_attempt_timeout_;
    target.max_in_flight =
        service.max_in_flight() > 0 ? service.max_in_flight() : default_max_in_flight_;
    targets_.emplace(service.name(), std::move(target));
  }
}

const RetryPlan& DispatchPolicies::Retry(absl::string_view service,
                                         absl::string_view method) const {
  auto target = targets_.find(service);
  if (target == targets_.end()) return default_retry_;
  auto per_method = target->second.method_retry.find(absl::StripPrefix(method, "/"));
  return per_method != target->second.method_retry.end() ? per_method->second
                                                         : target->second.retry;
}

absl::Duration DispatchPolicies::AttemptTimeout(absl::string_view service) const {
  auto target = targets_.find(service);
  return target != targets_.end() ? target->second.attempt_timeout : default_attempt_timeout_;
}

uint32_t DispatchPolicies::MaxInFlight(absl::string_view service) const {
  auto target = targets_.find(service);
  return target != targets_.end() ? target->second.max_in_flight : default_max_in_flight_;
}

}  // namespace callmesh::sidecar
