#include "runtime/common/proto_time.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace callmesh {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

google::protobuf::Duration Proto(int64_t seconds, int32_t nanos) {
  google::protobuf::Duration out;
  out.set_seconds(seconds);
  out.set_nanos(nanos);
  return out;
}

TEST(ProtoTimestamp, RoundTripsAndKeepsNanosNonNegative) {
  const absl::Time time = absl::FromUnixNanos(1700000000123456789);
  const google::protobuf::Timestamp proto = ToProtoTimestamp(time);
  EXPECT_EQ(proto.seconds(), 1700000000);
  EXPECT_EQ(proto.nanos(), 123456789);
  EXPECT_EQ(FromProtoTimestamp(proto), time);
  // Before 1970: seconds round down, nanos stay in [0, 1e9).
  const google::protobuf::Timestamp before = ToProtoTimestamp(absl::FromUnixNanos(-1500000000));
  EXPECT_EQ(before.seconds(), -2);
  EXPECT_EQ(before.nanos(), 500000000);
  EXPECT_EQ(FromProtoTimestamp(before), absl::FromUnixNanos(-1500000000));
}

TEST(ProtoTimestamp, UnsetReadsAsTheGivenDefault) {
  EXPECT_EQ(FromProtoTimestamp(google::protobuf::Timestamp()), absl::InfinitePast());
  EXPECT_EQ(FromProtoTimestamp(google::protobuf::Timestamp(), absl::InfiniteFuture()),
            absl::InfiniteFuture());
}

TEST(ProtoTimestamp, InfiniteAndFarTimesAreClampedToTheTimestampRange) {
  const google::protobuf::Timestamp future = ToProtoTimestamp(absl::InfiniteFuture());
  EXPECT_EQ(future.seconds(), 253402300799);  // 9999-12-31T23:59:59Z
  EXPECT_EQ(future.nanos(), 999999999);
  EXPECT_EQ(ToProtoTimestamp(absl::FromUnixSeconds(int64_t{1} << 40)).seconds(), 253402300799);
  const google::protobuf::Timestamp past = ToProtoTimestamp(absl::InfinitePast());
  EXPECT_EQ(past.seconds(), -62135596800);  // 0001-01-01T00:00:00Z
  EXPECT_EQ(past.nanos(), 0);
}

TEST(ProtoDuration, RoundTripsWithSecondsAndNanosOfTheSameSign) {
  const google::protobuf::Duration positive = ToProtoDuration(absl::Milliseconds(1500));
  EXPECT_EQ(positive.seconds(), 1);
  EXPECT_EQ(positive.nanos(), 500000000);
  const google::protobuf::Duration negative = ToProtoDuration(absl::Milliseconds(-1500));
  EXPECT_EQ(negative.seconds(), -1);
  EXPECT_EQ(negative.nanos(), -500000000);
  EXPECT_EQ(FromProtoDuration(negative), absl::Milliseconds(-1500));
  EXPECT_EQ(FromProtoDuration(ToProtoDuration(absl::Nanoseconds(7))), absl::Nanoseconds(7));
  EXPECT_EQ(ProtoDurationProblem(negative), std::nullopt);
}

TEST(ProtoDuration, OverflowIsClampedNotWrapped) {
  // Beyond int64 nanoseconds (292 years) but within the Duration range.
  const google::protobuf::Duration centuries = ToProtoDuration(absl::Hours(24 * 365 * 400));
  EXPECT_EQ(centuries.seconds(), int64_t{24} * 365 * 400 * 3600);
  EXPECT_EQ(centuries.nanos(), 0);
  const google::protobuf::Duration infinite = ToProtoDuration(absl::InfiniteDuration());
  EXPECT_EQ(infinite.seconds(), kMaxProtoDurationSeconds);
  EXPECT_EQ(ProtoDurationProblem(infinite), std::nullopt);
  EXPECT_EQ(ToProtoDuration(-absl::InfiniteDuration()).seconds(), -kMaxProtoDurationSeconds);
  EXPECT_EQ(ToProtoDuration(absl::Seconds(kMaxProtoDurationSeconds) * 2).seconds(),
            kMaxProtoDurationSeconds);
}

TEST(ProtoDuration, InvalidDurationsFromOutsideAreRefused) {
  struct Case {
    google::protobuf::Duration duration;
    std::string problem;
  };
  const std::vector<Case> cases = {
      {Proto(0, 2000000000), "timeout: invalid duration (seconds 0, nanos 2000000000): nanos"},
      {Proto(0, 1000000000), "nanos beyond"},
      {Proto(0, -1000000000), "nanos beyond"},
      {Proto(1, -1), "seconds and nanos of different signs"},
      {Proto(-1, 1), "seconds and nanos of different signs"},
      {Proto(kMaxProtoDurationSeconds + 1, 0), "seconds beyond"},
      {Proto(-kMaxProtoDurationSeconds - 1, 0), "seconds beyond"},
      {Proto(INT64_MAX, 0), "seconds beyond"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.duration.DebugString());
    const absl::StatusOr<absl::Duration> converted = DurationFromProto(c.duration, "timeout");
    EXPECT_EQ(converted.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(converted.status().message()), StartsWith("timeout: "));
    EXPECT_THAT(std::string(converted.status().message()), HasSubstr(c.problem));
    EXPECT_FALSE(NonNegativeDurationFromProto(c.duration, "timeout").ok());
  }
  EXPECT_EQ(*DurationFromProto(Proto(kMaxProtoDurationSeconds, 999999999), "t"),
            absl::Seconds(kMaxProtoDurationSeconds) + absl::Nanoseconds(999999999));
}

TEST(ProtoDuration, NegativeIsRefusedWhereOnlyNonNegativeMakesSense) {
  EXPECT_EQ(*DurationFromProto(Proto(-1, 0), "t"), absl::Seconds(-1));
  const absl::StatusOr<absl::Duration> negative =
      NonNegativeDurationFromProto(Proto(-1, 0), "timeout");
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(negative.status().message(), "timeout: must not be negative, got -1s");
  EXPECT_FALSE(NonNegativeDurationFromProto(Proto(0, -1), "timeout").ok());
  EXPECT_EQ(*NonNegativeDurationFromProto(Proto(0, 0), "timeout"), absl::ZeroDuration());
  EXPECT_EQ(*NonNegativeDurationFromProto(Proto(2, 500), "timeout"),
            absl::Seconds(2) + absl::Nanoseconds(500));
}

TEST(DurationText, UnitsCompoundsAndBareSeconds) {
  const std::vector<std::pair<std::string, absl::Duration>> cases = {
      {"250ms", absl::Milliseconds(250)}, {"5s", absl::Seconds(5)},
      {"1m30s", absl::Seconds(90)},       {"1.5h", absl::Minutes(90)},
      {"2.5", absl::Milliseconds(2500)},  {"0", absl::ZeroDuration()},
      {"1e3", absl::Seconds(1000)},       {"7ns", absl::Nanoseconds(7)},
  };
  for (const auto& [text, expected] : cases) {
    absl::StatusOr<absl::Duration> parsed = ParseDurationText(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status();
    EXPECT_EQ(*parsed, expected) << text;
  }
}

TEST(DurationText, RefusedTextSaysWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"5 sec", "invalid duration \"5 sec\"; expected a number with a unit"},
      {"", "invalid duration \"\""},
      {" 5", "invalid duration"},
      {"-5s", "duration must not be negative, got \"-5s\""},
      {"-1.5", "duration must not be negative, got -1.5"},
      {"inf", "duration must be finite"},
      {"nan", "duration must be finite"},
      {"inf", "duration must be finite"},
      {"1e12", "duration out of range (at most 315576000000s), got 1e12"},
      {"100000000000000h", "duration out of range"},
  };
  for (const auto& [text, problem] : cases) {
    absl::StatusOr<absl::Duration> parsed = ParseDurationText(text);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(parsed.status().message()), StartsWith(problem)) << text;
  }
}

}  // namespace
}  // namespace callmesh
