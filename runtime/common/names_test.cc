#include "runtime/common/names.h"

#include "gtest/gtest.h"

namespace callmesh {
namespace {

TEST(ValidateServiceName, AcceptsMeshNames) {
  EXPECT_TRUE(ValidateServiceName("greeter", "service").ok());
  EXPECT_TRUE(ValidateServiceName("billing-async-callback", "service").ok());
  EXPECT_TRUE(ValidateServiceName("a.b_c-1", "service").ok());
}

TEST(ValidateServiceName, RejectsWithFieldInMessage) {
  absl::Status empty = ValidateServiceName("", "request.service");
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(empty.message().find("request.service"), std::string::npos) << empty;
  EXPECT_FALSE(ValidateServiceName("has space", "s").ok());
  EXPECT_FALSE(ValidateServiceName("slash/name", "s").ok());
  EXPECT_FALSE(ValidateServiceName(std::string(129, 'a'), "s").ok());
  EXPECT_TRUE(ValidateServiceName(std::string(128, 'a'), "s").ok());
}

TEST(ValidateAddress, HostPortForms) {
  EXPECT_TRUE(ValidateAddress("127.0.0.1:4770", "a").ok());
  EXPECT_TRUE(ValidateAddress("localhost:0", "a").ok());
  EXPECT_TRUE(ValidateAddress("[::1]:50051", "a").ok());
  EXPECT_FALSE(ValidateAddress("", "a").ok());
  EXPECT_FALSE(ValidateAddress("127.0.0.1", "a").ok());
  EXPECT_FALSE(ValidateAddress("127.0.0.1:", "a").ok());
  EXPECT_FALSE(ValidateAddress("127.0.0.1:65536", "a").ok());
  EXPECT_FALSE(ValidateAddress("127.0.0.1:-1", "a").ok());
  EXPECT_FALSE(ValidateAddress("::1:50051", "a").ok());
  EXPECT_FALSE(ValidateAddress(":50051", "a").ok());
  EXPECT_FALSE(ValidateAddress("bad host:1", "a").ok());
}

TEST(MethodPath, NormalizesToWirePath) {
  EXPECT_EQ(*MethodPath("greeter.v1.Greeter/SayHello", "m"), "/greeter.v1.Greeter/SayHello");
  EXPECT_EQ(*MethodPath("/greeter.v1.Greeter/SayHello", "m"), "/greeter.v1.Greeter/SayHello");
  EXPECT_FALSE(MethodPath("SayHello", "m").ok());
  EXPECT_FALSE(MethodPath("", "m").ok());
  EXPECT_FALSE(MethodPath("a/b/c", "m").ok());
  EXPECT_FALSE(MethodPath("pkg.Svc/", "m").ok());
  EXPECT_FALSE(MethodPath("/pkg.Svc/Me thod", "m").ok());
  absl::Status bad = MethodPath("x", "request.method").status();
  EXPECT_NE(bad.message().find("request.method"), std::string::npos) << bad;
}

TEST(ValidateCallContext, AcceptsNamesAndPrintableCidsOnly) {
  EXPECT_TRUE(ValidateCallContext("", "").ok());
  EXPECT_TRUE(ValidateCallContext("billing", "01a209ce-40bb-74ba-831e-19a7a6942247").ok());
  absl::Status source = ValidateCallContext("bill ing", "");
  EXPECT_EQ(source.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(source.message().find("source"), std::string::npos) << source;
  absl::Status parent = ValidateCallContext("billing", "a\x01b");
  EXPECT_EQ(parent.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(parent.message().find("parent_cid"), std::string::npos) << parent;
  EXPECT_FALSE(ValidateCallContext("", std::string(129, 'c')).ok());
  EXPECT_FALSE(ValidateCallContext("", "with space").ok());
}

}  // namespace
}  // namespace callmesh
