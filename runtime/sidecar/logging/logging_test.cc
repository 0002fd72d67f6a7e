#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "runtime/sidecar/logging/access_log.h"
#include "runtime/sidecar/logging/structured_log.h"
#include "spdlog/sinks/ostream_sink.h"

namespace callmesh::logging {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// Sends spdlog's default logger to a string for the test, in `format`.
class CapturedLogs {
 public:
  explicit CapturedLogs(LogFormat format) {
    previous_ = spdlog::default_logger();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
    UseLogFormat(format);
  }
  ~CapturedLogs() {
    UseLogFormat(LogFormat::kText);
    spdlog::set_default_logger(previous_);
  }
  std::vector<std::string> Lines() const {
    return absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

// Parses one JSON log line; fails the test if it is not a JSON object.
google::protobuf::Struct ParseJson(const std::string& line) {
  google::protobuf::Struct parsed;
  const auto status = google::protobuf::util::JsonStringToMessage(line, &parsed);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in " << line;
  return parsed;
}

TEST(StructuredLog, JsonLinesCarryTimeLevelMessageAndCallFields) {
  CapturedLogs logs(LogFormat::kJson);
  LogEvent(spdlog::level::warn,
           {.cid = "c-1",
            .source = "app",
            .service = "greeter",
            .method = "/greeter.v1.Greeter/SayHello",
            .attempt = 2,
            .code = 14,
            .duration = absl::Microseconds(1500)},
           "attempt failed: \"quoted\"\nnext line");
  const std::vector<std::string> lines = logs.Lines();
  ASSERT_EQ(lines.size(), 1u);
  const google::protobuf::Struct line = ParseJson(lines[0]);
  const auto& f = line.fields();
  EXPECT_THAT(f.at("time").string_value(),
              MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{6}Z"));
  EXPECT_EQ(f.at("level").string_value(), "warning");
  EXPECT_EQ(f.at("message").string_value(), "attempt failed: \"quoted\"\nnext line");
  EXPECT_EQ(f.at("cid").string_value(), "c-1");
  EXPECT_EQ(f.at("source").string_value(), "app");
  EXPECT_EQ(f.at("service").string_value(), "greeter");
  EXPECT_EQ(f.at("method").string_value(), "/greeter.v1.Greeter/SayHello");
  EXPECT_EQ(f.at("attempt").number_value(), 2);
  EXPECT_EQ(f.at("code").string_value(), "UNAVAILABLE");
  EXPECT_EQ(f.at("duration_ms").number_value(), 1.5);
}

TEST(StructuredLog, PlainSpdlogLinesBecomeJsonWithTheirCid) {
  CapturedLogs logs(LogFormat::kJson);
  spdlog::info("[cid=abc] attempt {} of {}", 1, 5);
  spdlog::error("no cid here\x01");
  const std::vector<std::string> lines = logs.Lines();
  ASSERT_EQ(lines.size(), 2u);
  const google::protobuf::Struct first = ParseJson(lines[0]);
  EXPECT_EQ(first.fields().at("cid").string_value(), "abc");
  EXPECT_EQ(first.fields().at("message").string_value(), "attempt 1 of 5");
  EXPECT_EQ(first.fields().at("level").string_value(), "info");
  const google::protobuf::Struct second = ParseJson(lines[1]);
  EXPECT_EQ(second.fields().count("cid"), 0u);
  EXPECT_EQ(second.fields().at("message").string_value(), "no cid here\x01");
}

TEST(StructuredLog, TextLinesListTheFieldsThatAreSet) {
  CapturedLogs logs(LogFormat::kText);
  LogEvent(spdlog::level::info, {.cid = "c-2", .service = "greeter", .code = 0}, "access");
  const std::vector<std::string> lines = logs.Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("[info] access cid=c-2 service=greeter code=OK"));
  EXPECT_THAT(lines[0], ::testing::Not(HasSubstr("source=")));
}

TEST(StructuredLog, ParsesTheFormatNames) {
  EXPECT_EQ(ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(ParseLogFormat("JSON"), std::nullopt);
}

TEST(AccessLog, RateZeroLogsNothingAndRateOneEverything) {
  CapturedLogs logs(LogFormat::kJson);
  AccessLog none(0, 1);
  AccessLog all(1, 1);
  for (int i = 0; i < 10; ++i) {
    none.Record({.cid = "n"});
    all.Record({.cid = "a", .code = 0});
  }
  const std::vector<std::string> lines = logs.Lines();
  ASSERT_EQ(lines.size(), 10u);
  for (const std::string& line : lines) {
    EXPECT_EQ(ParseJson(line).fields().at("message").string_value(), "access");
    EXPECT_EQ(ParseJson(line).fields().at("cid").string_value(), "a");
  }
}

TEST(AccessLog, SamplesAboutTheRate) {
  AccessLog tenth(0.1, /*seed=*/42);  // a fixed seed: the same draws every run
  int sampled = 0;
  for (int i = 0; i < 10000; ++i) sampled += tenth.Sampled() ? 1 : 0;
  EXPECT_GT(sampled, 850);
  EXPECT_LT(sampled, 1150);
}

}  // namespace
}  // namespace callmesh::logging
