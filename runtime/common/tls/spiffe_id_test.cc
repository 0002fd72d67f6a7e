#include "runtime/common/tls/spiffe_id.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace callmesh::tls {
namespace {

using ::testing::HasSubstr;

TEST(SpiffeId, RoundTripsAppAndSidecarIdentities) {
  const MeshIdentity app{
      .trust_domain = "acme.internal", .kind = IdentityKind::kApp, .name = "greeter"};
  EXPECT_EQ(SpiffeId(app), "spiffe://acme.internal/app/greeter");
  EXPECT_EQ(*ParseSpiffeId("spiffe://acme.internal/app/greeter"), app);
  const MeshIdentity sidecar{
      .trust_domain = "callmesh.local", .kind = IdentityKind::kSidecar, .name = "node-1"};
  EXPECT_EQ(SpiffeId(sidecar), "spiffe://callmesh.local/sidecar/node-1");
  EXPECT_EQ(*ParseSpiffeId(SpiffeId(sidecar)), sidecar);
  EXPECT_EQ(*ParseTrustDomainId("spiffe://acme.internal"), "acme.internal");
}

TEST(SpiffeId, RefusesWhatIsNotAMeshIdentity) {
  EXPECT_THAT(ParseSpiffeId("https://acme/app/x").status().message(), HasSubstr("not a spiffe://"));
  EXPECT_THAT(ParseSpiffeId("spiffe://acme/user/x").status().message(),
              HasSubstr("not a mesh identity"));
  EXPECT_THAT(ParseSpiffeId("spiffe://acme/app/x/y").status().message(),
              HasSubstr("not a mesh identity"));
  EXPECT_THAT(ParseSpiffeId("spiffe://ACME/app/x").status().message(), HasSubstr("trust domain"));
  EXPECT_THAT(ParseSpiffeId("spiffe://acme/app/a b").status().message(), HasSubstr("app name"));
  EXPECT_THAT(ParseSpiffeId("spiffe://acme/app/").status().message(), HasSubstr("app name"));
  EXPECT_FALSE(ParseTrustDomainId("spiffe://acme/app/x").ok());
}

TEST(SpiffeId, ValidatesTrustDomains) {
  EXPECT_TRUE(ValidateTrustDomain("a-b_c.d9", "td").ok());
  EXPECT_THAT(ValidateTrustDomain("", "td").message(), HasSubstr("td: must not be empty"));
  EXPECT_THAT(ValidateTrustDomain("Acme", "td").message(), HasSubstr("lower-case"));
  EXPECT_THAT(ValidateTrustDomain(std::string(256, 'a'), "td").message(), HasSubstr("at most 255"));
}

}  // namespace
}  // namespace callmesh::tls
