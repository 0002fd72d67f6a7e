#include <google/protobuf/descriptor.pb.h>

#include "cli/json/json_proto.h"
#include "cli/json/json_value.h"
#include "gtest/gtest.h"
#include "services/greeter/greeter.pb.h"

namespace callmesh::cli {
namespace {

TEST(JsonValue, RoundTripsKeepingOrderAndNumberText) {
  absl::StatusOr<JsonValue> doc = ParseJson(
      " {\"b\": [1, 2.5e3, -0], \"a\": {\"big\": 9007199254740993}, \"s\": \"\\u00e9\\n\"} ");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(PrintJson(*doc, false),
            "{\"b\":[1,2.5e3,-0],\"a\":{\"big\":9007199254740993},\"s\":\"\xc3\xa9\\n\"}");
  EXPECT_EQ(PrintJson(*doc, true),
            "{\n  \"b\": [\n    1,\n    2.5e3,\n    -0\n  ],\n  \"a\": {\n    \"big\": "
            "9007199254740993\n  },\n  \"s\": \"\xc3\xa9\\n\"\n}");
}

TEST(JsonValue, SyntaxErrorsNameLineAndColumn) {
  struct Case {
    const char* text;
    const char* error;
  };
  for (const Case& c : {
           Case{"",
                "malformed JSON at line 1, column 1: expected a JSON value, got an empty input"},
           Case{"{\"name\": }", "malformed JSON at line 1, column 10: expected a value, got '}'"},
           Case{"{\n  \"name\": \"x\",\n  \"delay\" 3\n}",
                "malformed JSON at line 3, column 11: expected ':' after member name \"delay\", "
                "got '3'"},
           Case{"{\"a\": 1,}",
                "malformed JSON at line 1, column 9: expected a member name in "
                "double quotes, got '}'"},
           Case{"{\"a\": \"x", "malformed JSON at line 1, column 9: unterminated string"},
           Case{"{} x", "malformed JSON at line 1, column 4: unexpected 'x' after the JSON value"},
           Case{"[01]",
                "malformed JSON at line 1, column 3: leading zeros are not allowed in "
                "numbers"},
       }) {
    absl::StatusOr<JsonValue> doc = ParseJson(c.text);
    ASSERT_FALSE(doc.ok()) << c.text;
    EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(doc.status().message(), c.error) << c.text;
  }
}

TEST(JsonValue, RejectsExcessiveNesting) {
  EXPECT_FALSE(ParseJson(std::string(1000, '[') + std::string(1000, ']')).ok());
}

TEST(JsonProto, ConvertsBothWays) {
  const auto* type = ::greeter::v1::HelloRequest::descriptor();
  absl::StatusOr<std::string> bytes =
      JsonToProtoBytes(*type, R"({"name": "world", "delayMs": 5, "fail_code": 3})");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ::greeter::v1::HelloRequest request;
  ASSERT_TRUE(request.ParseFromString(*bytes));
  EXPECT_EQ(request.name(), "world");
  EXPECT_EQ(request.delay_ms(), 5u);
  EXPECT_EQ(request.fail_code(), 3);
  absl::StatusOr<JsonValue> back = ProtoBytesToJson(*type, *bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(PrintJson(*back, false), R"({"name":"world","delayMs":5,"failCode":3})");
}

TEST(JsonProto, UnknownFieldNamesPathTypeAndHint) {
  absl::StatusOr<std::string> bytes =
      JsonToProtoBytes(*::greeter::v1::HelloRequest::descriptor(), R"({"nmae": "world"})");
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().message(),
            "unknown field \"nmae\" in greeter.v1.HelloRequest (line 1, column 2); did you mean "
            "\"name\"?");
  bytes =
      JsonToProtoBytes(*google::protobuf::FileDescriptorSet::descriptor(),
                       "{\"file\": [{\"name\": \"a\",\n \"messageType\": [{\"nmae\": \"x\"}]}]}");
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().message(),
            "unknown field \"file[0].messageType[0].nmae\" in google.protobuf.DescriptorProto "
            "(line 2, column 19); did you mean \"name\"?");
}

TEST(JsonProto, WrongTypesAndNonObjectsAreInvalidArgument) {
  const auto* type = ::greeter::v1::HelloRequest::descriptor();
  absl::StatusOr<std::string> bytes = JsonToProtoBytes(*type, R"({"name": 5})");
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bytes.status().message().find("invalid JSON for greeter.v1.HelloRequest"),
            std::string::npos)
      << bytes.status();
  EXPECT_NE(bytes.status().message().find("name"), std::string::npos) << bytes.status();
  bytes = JsonToProtoBytes(*type, "[1]");
  ASSERT_FALSE(bytes.ok());
  EXPECT_NE(bytes.status().message().find("must be a JSON object"), std::string::npos);
  EXPECT_FALSE(ProtoBytesToJson(*type, "\xff\xff\xff").ok());
}

}  // namespace
}  // namespace callmesh::cli
