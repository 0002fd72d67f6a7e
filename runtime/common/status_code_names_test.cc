#include "runtime/common/status_code_names.h"

#include <grpcpp/support/status.h>

#include <string>

#include "absl/strings/ascii.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace callmesh {
namespace {

TEST(ParseStatusCodeName, RoundTripsAllCodesInAnyCase) {
  for (int code = 0; code <= 16; ++code) {
    const std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
    SCOPED_TRACE(name);
    absl::StatusOr<int> parsed = ParseStatusCodeName(name);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, code);
    absl::StatusOr<int> lower = ParseStatusCodeName(absl::AsciiStrToLower(name));
    ASSERT_TRUE(lower.ok()) << lower.status();
    EXPECT_EQ(*lower, code);
  }
  EXPECT_EQ(*ParseStatusCodeName("Unavailable"), 14);
  EXPECT_EQ(*ParseStatusCodeName("UNAVAILABLE"), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(*ParseStatusCodeName("UNAUTHENTICATED"), grpc::StatusCode::UNAUTHENTICATED);
}

TEST(ParseStatusCodeName, OtherTextIsRefusedWithTheValidNames) {
  for (const char* bad : {"", "UNAVAILABLE ", "14", "CANCELED", "NOT FOUND", "DO_NOT_USE"}) {
    SCOPED_TRACE(bad);
    const absl::Status status = ParseStatusCodeName(bad).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()),
                ::testing::HasSubstr("; expected one of OK, CANCELLED, UNKNOWN"));
  }
  EXPECT_EQ(ParseStatusCodeName("NOPE").status().message(),
            "unknown gRPC status code \"NOPE\"; expected one of OK, CANCELLED, UNKNOWN, "
            "INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, "
            "RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, UNIMPLEMENTED, "
            "INTERNAL, UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED");
}

}  // namespace
}  // namespace callmesh
