#include "runtime/sidecar/security/policy.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "runtime/sidecar/security/pattern.h"

namespace callmesh::sidecar::security {
namespace {

TEST(Pattern, MatchesWholeStringsWithStarsAndTheAppPlaceholder) {
  EXPECT_TRUE(PatternMatches("*", "", "a"));
  EXPECT_TRUE(PatternMatches("greeter", "greeter", "a"));
  EXPECT_FALSE(PatternMatches("greeter", "greeter2", "a"));
  EXPECT_FALSE(PatternMatches("greet", "greeter", "a"));
  EXPECT_TRUE(PatternMatches("127.0.0.1:*", "127.0.0.1:50051", "a"));
  EXPECT_FALSE(PatternMatches("127.0.0.1:*", "127.0.0.10:50051", "a"));
  EXPECT_TRUE(PatternMatches("*/SayHello", "helloworld.Greeter/SayHello", "a"));
  EXPECT_TRUE(PatternMatches("a*b*c", "aXXbYYbc", "a"));
  EXPECT_FALSE(PatternMatches("a*b*c", "aXXbYYbd", "a"));
  EXPECT_TRUE(PatternMatches("{app}-*", "orders-async-callback", "orders"));
  EXPECT_FALSE(PatternMatches("{app}-*", "billing-async-callback", "orders"));
  EXPECT_FALSE(AnyPatternMatches({}, "x", "a"));
}

TEST(Policy, DefaultRegistrationIsOwnNameAndCallbackFromLoopback) {
  Policy policy(v1::SecurityConfig{});
  EXPECT_TRUE(policy.CheckRegistration("orders", "orders", "127.0.0.1:5000").ok());
  EXPECT_TRUE(policy.CheckRegistration("orders", "orders-async-callback", "[::1]:5000").ok());
  EXPECT_TRUE(policy.CheckRegistration("orders", "orders", "localhost:5000").ok());
  absl::Status other = policy.CheckRegistration("mallory", "greeter", "127.0.0.1:5000");
  EXPECT_EQ(other.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(other.message(), "default registration rule")) << other;
  EXPECT_TRUE(absl::StrContains(other.message(), "\"greeter\"")) << other;
  EXPECT_EQ(policy.CheckRegistration("mallory", "greeter-async-callback", "127.0.0.1:1").code(),
            absl::StatusCode::kPermissionDenied);
  absl::Status remote = policy.CheckRegistration("orders", "orders", "10.0.0.8:5000");
  EXPECT_EQ(remote.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(remote.message(), "loopback")) << remote;
}

TEST(Policy, ServiceOwnerIsWhoMayRegisterTheNameFromAnyAddress) {
  Policy open(v1::SecurityConfig{});
  EXPECT_TRUE(open.CheckServiceOwner("shipping", "shipping").ok());
  EXPECT_TRUE(open.CheckServiceOwner("shipping", "shipping-async-callback").ok());
  absl::Status other = open.CheckServiceOwner("mallory", "shipping");
  EXPECT_EQ(other.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(other.message(), "default registration rule")) << other;

  v1::SecurityConfig config;
  v1::RegistrationRule* rule = config.add_registration();
  rule->add_apps("ops");
  rule->add_services("ship*");
  rule->add_addresses("10.0.0.*:*");  // addresses do not matter to ownership
  Policy ruled(config);
  EXPECT_TRUE(ruled.CheckServiceOwner("ops", "shipping").ok());
  absl::Status none = ruled.CheckServiceOwner("shipping", "shipping");
  EXPECT_EQ(none.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(none.message(), "no rule in security.registration")) << none;
}

TEST(Policy, RegistrationRulesNameTheRuleThatRefused) {
  v1::SecurityConfig config;
  v1::RegistrationRule* workers = config.add_registration();
  workers->add_apps("batch");
  workers->add_services("worker-*");
  workers->add_addresses("10.0.0.*:7000");
  v1::RegistrationRule* own = config.add_registration();
  own->add_apps("*");
  own->add_services("{app}");
  Policy policy(config);
  EXPECT_TRUE(policy.CheckRegistration("batch", "worker-7", "10.0.0.3:7000").ok());
  EXPECT_TRUE(policy.CheckRegistration("batch", "batch", "127.0.0.1:1").ok());
  EXPECT_TRUE(policy.CheckRegistration("orders", "orders", "127.0.0.1:1").ok());
  absl::Status address = policy.CheckRegistration("batch", "worker-7", "10.0.1.3:7000");
  EXPECT_EQ(address.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(address.message(), "security.registration[0]")) << address;
  absl::Status name = policy.CheckRegistration("orders", "worker-1", "127.0.0.1:1");
  EXPECT_TRUE(absl::StrContains(name.message(), "no rule in security.registration")) << name;
  // A rule that names no addresses means loopback only.
  EXPECT_EQ(policy.CheckRegistration("orders", "orders", "10.0.0.1:1").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(Policy, NoAccessRulesAllowEveryCall) {
  Policy policy(v1::SecurityConfig{});
  EXPECT_TRUE(policy.CheckCall("anyone", "greeter", "/helloworld.Greeter/SayHello").ok());
}

TEST(Policy, FirstMatchingAccessRuleDecidesAndTheRestIsDenied) {
  v1::SecurityConfig config;
  v1::AccessRule* deny = config.add_access();
  deny->add_callers("intern");
  deny->add_services("ledger");
  deny->add_methods("*/Delete*");
  deny->set_action(v1::AccessRule::DENY);
  v1::AccessRule* allow = config.add_access();
  allow->add_callers("intern");
  allow->add_callers("orders");
  allow->add_services("ledger");
  v1::AccessRule* greeter = config.add_access();
  greeter->add_callers("*");
  greeter->add_services("greeter");
  greeter->add_methods("helloworld.Greeter/SayHello");
  Policy policy(config);
  EXPECT_TRUE(policy.CheckCall("intern", "ledger", "/ledger.Ledger/Read").ok());
  absl::Status denied = policy.CheckCall("intern", "ledger", "/ledger.Ledger/DeleteAll");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(denied.message(), "security.access[0] denies \"intern\""))
      << denied;
  EXPECT_TRUE(policy.CheckCall("orders", "ledger", "/ledger.Ledger/DeleteAll").ok());
  EXPECT_TRUE(policy.CheckCall("x", "greeter", "helloworld.Greeter/SayHello").ok());
  absl::Status unlisted = policy.CheckCall("x", "greeter", "/helloworld.Greeter/SayGoodbye");
  EXPECT_EQ(unlisted.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(unlisted.message(), "no rule in security.access allows \"x\""))
      << unlisted;
  EXPECT_EQ(policy.CheckCall("x", "ledger", "/ledger.Ledger/Read").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(Policy, AdminsAreNamedOnes) {
  v1::SecurityConfig config;
  config.add_admins("ops");
  Policy policy(config);
  EXPECT_TRUE(policy.IsAdmin("ops"));
  EXPECT_FALSE(policy.IsAdmin("op"));
  EXPECT_FALSE(policy.IsAdmin(""));
}

}  // namespace
}  // namespace callmesh::sidecar::security
