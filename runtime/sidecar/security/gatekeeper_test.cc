#include "runtime/sidecar/security/gatekeeper.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "runtime/sidecar/security/identity_quotas.h"

namespace callmesh::sidecar::security {
namespace {

TEST(IdentityQuotas, CapsInstancesPerIdentityAndOverall) {
  IdentityQuotas quotas({.max_instances_per_identity = 2, .max_registered_instances = 3});
  EXPECT_EQ(quotas.ReserveInstance("a", "a", "127.0.0.1:1").value_or(false), true);
  EXPECT_EQ(quotas.ReserveInstance("a", "a", "127.0.0.1:2").value_or(false), true);
  // A registration refreshed is not counted again.
  EXPECT_EQ(quotas.ReserveInstance("a", "a", "127.0.0.1:2").value_or(true), false);
  absl::StatusOr<bool> third = quotas.ReserveInstance("a", "a", "127.0.0.1:3");
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(third.status().message(), "limits.max_instances_per_identity"));
  EXPECT_TRUE(quotas.ReserveInstance("b", "b", "127.0.0.1:4").ok());
  absl::StatusOr<bool> overall = quotas.ReserveInstance("c", "c", "127.0.0.1:5");
  EXPECT_EQ(overall.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(overall.status().message(), "limits.max_registered_instances"));
  EXPECT_EQ(quotas.OwnerOf("a", "127.0.0.1:1"), "a");
  quotas.ReleaseInstance("a", "127.0.0.1:1");
  EXPECT_EQ(quotas.OwnerOf("a", "127.0.0.1:1"), std::nullopt);
  EXPECT_TRUE(quotas.ReserveInstance("a", "a", "127.0.0.1:3").ok());
}

TEST(IdentityQuotas, WatchSlotsComeBackWhenTheHandleGoes) {
  IdentityQuotas quotas({.max_watchers_per_identity = 2});
  auto first = quotas.TakeWatchSlot("a");
  auto second = quotas.TakeWatchSlot("a");
  ASSERT_TRUE(first.ok() && second.ok());
  auto third = quotas.TakeWatchSlot("a");
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(third.status().message(), "limits.max_watchers_per_identity"));
  EXPECT_TRUE(quotas.TakeWatchSlot("b").ok());  // another identity has its own share
  first->reset();
  EXPECT_TRUE(quotas.TakeWatchSlot("a").ok());
}

TEST(Gatekeeper, OpenAllowsEverythingAnonymously) {
  Gatekeeper* open = Gatekeeper::Open();
  EXPECT_FALSE(open->authenticating());
  Caller anonymous;
  EXPECT_TRUE(open->CheckCall(anonymous, "x", "/a.B/C").ok());
  EXPECT_TRUE(open->MaySee(anonymous, "someone"));
  EXPECT_EQ(open->ListFilter(anonymous, "someone").value_or("?"), "someone");
}

TEST(Gatekeeper, CallsAreVisibleToTheirSourceAndAdmins) {
  v1::SidecarConfig config;
  config.mutable_security()->add_admins("ops");
  config.mutable_security()->mutable_tls()->set_ca_file("/nonexistent/ca.pem");
  FakeClock clock;
  auto gate = Gatekeeper::Create(config, &clock);
  ASSERT_TRUE(gate.ok()) << gate.status();
  EXPECT_TRUE((*gate)->authenticating());
  const Caller orders{.identity = "orders"};
  const Caller ops{.identity = "ops", .admin = true};
  EXPECT_TRUE((*gate)->MaySee(orders, "orders"));
  EXPECT_FALSE((*gate)->MaySee(orders, "billing"));
  EXPECT_TRUE((*gate)->MaySee(ops, "billing"));
  EXPECT_EQ((*gate)->ListFilter(orders, "").value_or("?"), "orders");
  absl::StatusOr<std::string> theirs = (*gate)->ListFilter(orders, "billing");
  EXPECT_EQ(theirs.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(theirs.status().message(), "\"billing\""));
  EXPECT_EQ((*gate)->ListFilter(ops, "").value_or("?"), "");
}

TEST(Gatekeeper, OnlyTheOwnerOrAnAdminDeregisters) {
  v1::SidecarConfig config;
  config.mutable_security()->add_admins("ops");
  v1::RegistrationRule* rule = config.mutable_security()->add_registration();
  rule->add_apps("*");
  rule->add_services("shared");
  config.mutable_security()->mutable_tls()->set_ca_file("/nonexistent/ca.pem");
  FakeClock clock;
  auto gate = Gatekeeper::Create(config, &clock);
  ASSERT_TRUE(gate.ok()) << gate.status();
  const Caller a{.identity = "a"}, b{.identity = "b"}, ops{.identity = "ops", .admin = true};
  ASSERT_TRUE((*gate)->AdmitInstance(a, "shared", "127.0.0.1:1").ok());
  absl::Status stolen = (*gate)->CheckDeregister(b, "shared", "127.0.0.1:1");
  EXPECT_EQ(stolen.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(stolen.message(), "registered by \"a\"")) << stolen;
  EXPECT_TRUE((*gate)->CheckDeregister(a, "shared", "127.0.0.1:1").ok());
  EXPECT_TRUE((*gate)->CheckDeregister(ops, "shared", "127.0.0.1:1").ok());
  EXPECT_EQ((*gate)->AdmitInstance(b, "other", "127.0.0.1:2").status().code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace callmesh::sidecar::security
