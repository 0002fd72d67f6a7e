#include "runtime/sidecar/dispatch/retry_policy.h"

#include "gtest/gtest.h"
#include "runtime/sidecar/config/config_loader.h"

namespace callmesh::sidecar {
namespace {

v1::SidecarConfig Config(const std::string& yaml) {
  absl::StatusOr<v1::SidecarConfig> config = ParseConfig(yaml, "test.yaml");
  EXPECT_TRUE(config.ok()) << config.status();
  ApplyConfigDefaults(&*config);
  return *config;
}

TEST(RetryPolicy, MethodThenServiceThenDefault) {
  DispatchPolicies policies(Config(R"(
default_retry: {max_attempts: 2}
services:
  - name: billing
    addresses: [127.0.0.1:1]
    retry: {max_attempts: 3}
    method_retry:
      /billing.v1.Billing/Charge: {max_attempts: 7}
    attempt_timeout: 2s
    max_in_flight: 5
)"));
  EXPECT_EQ(policies.Retry("billing", "billing.v1.Billing/Charge").max_attempts, 7u);
  EXPECT_EQ(policies.Retry("billing", "/billing.v1.Billing/Charge").max_attempts, 7u);
  EXPECT_EQ(policies.Retry("billing", "billing.v1.Billing/Refund").max_attempts, 3u);
  EXPECT_EQ(policies.Retry("other", "x.Y/Z").max_attempts, 2u);
  EXPECT_EQ(policies.AttemptTimeout("billing"), absl::Seconds(2));
  EXPECT_EQ(policies.AttemptTimeout("other"), absl::Seconds(30));
  EXPECT_EQ(policies.MaxInFlight("billing"), 5u);
  EXPECT_EQ(policies.MaxInFlight("other"), 64u);
}

TEST(RetryPolicy, DefaultRetryableCodes) {
  DispatchPolicies policies(Config(""));
  const RetryPlan& plan = policies.Retry("any", "a.B/C");
  EXPECT_TRUE(plan.IsRetryable(14));  // UNAVAILABLE
  EXPECT_TRUE(plan.IsRetryable(8));   // RESOURCE_EXHAUSTED
  EXPECT_TRUE(plan.IsRetryable(10));  // ABORTED
  EXPECT_FALSE(plan.IsRetryable(3));  // INVALID_ARGUMENT
  EXPECT_FALSE(plan.IsRetryable(0));
}

}  // namespace
}  // namespace callmesh::sidecar
