#include "runtime/sidecar/invoke/invoker.h"

#include "gtest/gtest.h"

namespace callmesh::sidecar {
namespace {

TEST(ValidateHeader, AcceptsPlainAndBinaryHeaders) {
  EXPECT_TRUE(ValidateHeader("tenant", "acme").ok());
  EXPECT_TRUE(ValidateHeader("x-request-id", "abc-123").ok());
  EXPECT_TRUE(ValidateHeader("blob-bin", std::string("\0\xff", 2)).ok());
}

TEST(ValidateHeader, RejectsReservedAndMalformedNamingTheHeader) {
  for (const char* key :
       {"grpc-timeout", "callmesh-cid", "Upper", "has space", "", "traceparent"}) {
    absl::Status s = ValidateHeader(key, "v");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << key;
  }
  absl::Status s = ValidateHeader("tenant", "caf\xc3\xa9");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("\"tenant\""), std::string::npos) << s;
}

TEST(Invoker, RefusesOversizedPayloadAndUnknownService) {
  Registry registry(Registry::Options{});
  CidGenerator cids;
  Invoker::Options options;
  options.max_payload_bytes = 8;
  Invoker invoker(&registry, &cids, options);
  bool ran = false;
  auto done = [&ran](const grpc::Status&, grpc::ByteBuffer*) { ran = true; };

  std::string big(9, 'x');
  grpc::Slice slice(big);
  InvokeCall call;
  call.service = "greeter";
  call.method_path = "/greeter.v1.Greeter/SayHello";
  auto too_big = invoker.Start(call, grpc::ByteBuffer(&slice, 1), done);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(too_big.status().message().find("9 bytes"), std::string::npos) << too_big.status();

  auto unknown = invoker.Start(call, grpc::ByteBuffer(), done);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace callmesh::sidecar
