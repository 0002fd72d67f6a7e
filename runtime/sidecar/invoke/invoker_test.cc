#include "runtime/sidecar/invoke/invoker.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/common/message_limits.h"

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

// A payload is limited to max_payload_bytes; a message wrapping one (a Completion around a reply)
// to that plus the envelope's allowance, and the refusal says which.
TEST(PayloadSize, AWrappedPayloadMayExceedTheLimitByTheEnvelopeAllowanceOnly) {
  EXPECT_TRUE(CheckPayloadSize(1000, 1000).ok());
  EXPECT_EQ(CheckPayloadSize(1001, 1000).message(),
            "payload of 1001 bytes exceeds max_payload_bytes (1000)");
  EXPECT_TRUE(CheckWrappedPayloadSize(1000 + kEnvelopeAllowanceBytes, 1000).ok());
  const absl::Status over = CheckWrappedPayloadSize(1001 + kEnvelopeAllowanceBytes, 1000);
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(over.message(), absl::StrCat("message of ", 1001 + kEnvelopeAllowanceBytes,
                                         " bytes exceeds max_payload_bytes (1000) plus 65536 "
                                         "bytes for its envelope"));
}

}  // namespace
}  // namespace callmesh::sidecar
