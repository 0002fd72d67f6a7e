#include "runtime/sidecar/config/yaml_to_proto.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "callmesh/v1/config.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/sidecar/config/yaml_to_proto_test.pb.h"

namespace callmesh::sidecar {
namespace {

using ::callmesh::testing::Kinds;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// `text` mapped onto a SidecarConfig, errors naming the origin `origin`.
absl::StatusOr<v1::SidecarConfig> ParseConfig(const std::string& text, const std::string& origin) {
  v1::SidecarConfig config;
  SourcePositions positions(origin);
  if (absl::Status s = YamlToProto(text, &config, &positions); !s.ok()) return s;
  return config;
}

// The error of mapping `text` (origin "test.yaml") onto a SidecarConfig; OK if it maps.
absl::Status ParseError(const std::string& text) { return ParseConfig(text, "test.yaml").status(); }

absl::StatusOr<Kinds> ParseKinds(const std::string& text) {
  Kinds kinds;
  SourcePositions positions("kinds.yaml");
  if (absl::Status s = YamlToProto(text, &kinds, &positions); !s.ok()) return s;
  return kinds;
}

int64_t Millis(const google::protobuf::Duration& d) {
  return d.seconds() * 1000 + d.nanos() / 1000000;
}

// --- On SidecarConfig (moved from config_loader_test.cc) -----------------------------------------

TEST(YamlToProto, CamelCaseKeysAreAccepted) {
  absl::StatusOr<v1::SidecarConfig> config = ParseConfig(
      "dataDir: /d\nmaxPayloadBytes: 1024\ndefaultRetry: {maxAttempts: 3, initialBackoff: 1s}\n"
      "services:\n  - name: a\n    methodRetry: {\"p.S/M\": {backoffMultiplier: 1.5}}\n",
      "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->data_dir(), "/d");
  EXPECT_EQ(config->max_payload_bytes(), 1024u);
  EXPECT_EQ(config->default_retry().max_attempts(), 3u);
  EXPECT_EQ(config->default_retry().initial_backoff().seconds(), 1);
  EXPECT_DOUBLE_EQ(config->services(0).method_retry().at("p.S/M").backoff_multiplier(), 1.5);
}

TEST(YamlToProto, KeyGivenTwiceIsAnError) {
  const absl::Status same = ParseError("name: a\nlisten: x:1\nname: b\n");
  EXPECT_EQ(same.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(same.message()), HasSubstr("test.yaml:3:1: name: key given twice"));
  const absl::Status spellings = ParseError("data_dir: a\ndataDir: b\n");
  EXPECT_THAT(std::string(spellings.message()),
              HasSubstr("test.yaml:2:1: data_dir: key given twice"));
  const absl::Status map_key =
      ParseError("services:\n  - name: a\n    method_retry:\n      p.S/M: {}\n      p.S/M: {}\n");
  EXPECT_THAT(std::string(map_key.message()),
              HasSubstr("test.yaml:5:7: services[0].method_retry[\"p.S/M\"]: key given twice"));
}

TEST(YamlToProto, UnknownTopLevelKeyNamesKeyLineAndSuggestion) {
  const absl::Status status = ParseError("name: a\nlistn: 127.0.0.1:1\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "test.yaml:2:1: listn: unknown key; did you mean \"listen\"?");
}

TEST(YamlToProto, UnknownNestedKeyNamesPathAndLine) {
  const absl::Status status = ParseError(
      "services:\n"
      "  - name: a\n"
      "  - name: b\n"
      "    retry:\n"
      "      max_attemps: 3\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              StartsWith("test.yaml:5:7: services[1].retry.max_attemps: "
                         "unknown key; did you mean \"max_attempts\"?"));
}

TEST(YamlToProto, UnknownKeyWithoutCloseMatchListsValidKeys) {
  const absl::Status status = ParseError("journal: {zzzzzzzz: 1}\n");
  EXPECT_THAT(
      std::string(status.message()),
      HasSubstr("test.yaml:1:11: journal.zzzzzzzz: unknown key; valid keys are durability"));
}

TEST(YamlToProto, WrongTypesNameThePath) {
  struct Case {
    std::string yaml;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"max_payload_bytes: lots\n",
       "test.yaml:1:20: max_payload_bytes: expected a non-negative integer, got \"lots\""},
      {"default_retry:\n  max_attempts: 1.5\n",
       "test.yaml:2:17: default_retry.max_attempts: expected an integer, got fraction 1.5"},
      {"limits: {max_watchers: -3}\n",
       "test.yaml:1:24: limits.max_watchers: must not be negative (uint32), got -3"},
      {"limits: {max_watchers: 4294967296}\n",
       "limits.max_watchers: out of range for uint32 (0 to 4294967295), got 4294967296"},
      {"journal: [a]\n", "test.yaml:1:10: journal: expected a mapping, got a list"},
      {"services:\n  - [a]\n", "test.yaml:2:5: services[0]: expected a mapping, got a list"},
      {"services: {name: a}\n", "services: expected a list, got a mapping"},
      {"services:\n  - name: a\n    addresses: 127.0.0.1:1\n",
       "test.yaml:3:16: services[0].addresses: expected a list, got "
       "\"127.0.0.1:1\""},
      {"name: {a: b}\n", "test.yaml:1:7: name: expected a string, got a mapping"},
      {"default_retry: {jitter: high}\n",
       "test.yaml:1:25: default_retry.jitter: expected a number, got \"high\""},
      {"journal: {durability: SOMETIMES}\n",
       "journal.durability: unknown Durability \"SOMETIMES\"; expected one of "
       "DURABILITY_UNSPECIFIED, FSYNC, NONE"},
      {"journal: {durability: 7}\n", "journal.durability: unknown Durability \"7\""},
      {"services:\n  - name: a\n    method_retry:\n      pkg.Svc/M: {jitter: [1]}\n",
       "test.yaml:4:27: services[0].method_retry[\"pkg.Svc/M\"].jitter: expected a number, got "
       "a list"},
      {"services:\n  - addresses: [~]\n",
       "services[0].addresses[0]: list elements must not be null"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    const absl::Status status = ParseError(c.yaml);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.expected));
  }
}

TEST(YamlToProto, ScalarForms) {
  absl::StatusOr<v1::SidecarConfig> config = ParseConfig(
      "max_payload_bytes: \"1e6\"\n"
      "journal: {durability: 1}\n"
      "limits: {max_pending_calls: -0, max_watchers: '12'}\n"
      "default_retry: {backoff_multiplier: .inf, jitter: 1e-1, max_attempts: 2.0}\n"
      "name: 123\n",
      "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->max_payload_bytes(), 1000000u);
  EXPECT_EQ(config->journal().durability(), v1::JournalConfig::FSYNC);
  EXPECT_EQ(config->limits().max_pending_calls(), 0u);
  EXPECT_EQ(config->limits().max_watchers(), 12u);
  EXPECT_TRUE(std::isinf(config->default_retry().backoff_multiplier()));
  EXPECT_DOUBLE_EQ(config->default_retry().jitter(), 0.1);
  EXPECT_EQ(config->default_retry().max_attempts(), 2u);
  EXPECT_EQ(config->name(), "123");
}

TEST(YamlToProto, DurationForms) {
  absl::StatusOr<v1::SidecarConfig> config = ParseConfig(
      "default_attempt_timeout: 250ms\n"
      "default_call_timeout: 1m30s\n"
      "health_check_interval: 1h\n"
      "drain_timeout: 2.5\n"
      "result_retention: 0\n",
      "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(Millis(config->default_attempt_timeout()), 250);
  EXPECT_EQ(Millis(config->default_call_timeout()), 90000);
  EXPECT_EQ(Millis(config->health_check_interval()), 3600000);
  EXPECT_EQ(Millis(config->drain_timeout()), 2500);
  EXPECT_TRUE(config->has_result_retention());
  EXPECT_EQ(Millis(config->result_retention()), 0);
}

TEST(YamlToProto, BadDurationIsAnError) {
  const absl::Status status = ParseError("default_retry:\n  max_backoff: 5 sec\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("test.yaml:2:16: default_retry.max_backoff: invalid "
                        "duration \"5 sec\""));
  EXPECT_THAT(std::string(ParseError("drain_timeout: [5s]\n").message()),
              HasSubstr("drain_timeout: expected a duration such as \"5s\", got a list"));
  EXPECT_THAT(std::string(ParseError("drain_timeout: inf\n").message()),
              HasSubstr("drain_timeout: duration must be finite"));
}

TEST(YamlToProto, NegativeDurationIsAnError) {
  EXPECT_THAT(std::string(ParseError("drain_timeout: -5s\n").message()),
              HasSubstr("test.yaml:1:16: drain_timeout: duration must not be negative"));
  EXPECT_THAT(std::string(ParseError("drain_timeout: -1.5\n").message()),
              HasSubstr("test.yaml:1:16: drain_timeout: duration must not be negative"));
}

TEST(YamlToProto, YamlSyntaxErrorHasLineNumber) {
  const absl::Status status = ParseError("name: a\nservices: [a, b\nlisten: x\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              ::testing::MatchesRegex("test\\.yaml:[23]:[0-9]+: .+"));
  const absl::Status tab = ParseError("a:\n\t- b\n");
  EXPECT_THAT(std::string(tab.message()), StartsWith("test.yaml:2:"));
}

TEST(YamlToProto, MalformedDocumentsNeverThrow) {
  const std::vector<std::string> inputs = {
      "*undefined_alias\n",  "{a: [}\n",
      "? [a]\n: b\n",        "name: &x [*x]\n",
      "\"unterminated\n",    "- a\n- b\n",
      "just text",           "services: [{name: \"\\q\"}]\n",
      "a: 1\n---\nb: 2\n",   "%YAML 2.0\n---\na: b\n",
      "services: &x [*x]\n", "default_retry: &x {retryable_codes: *x}\n",
  };
  for (const std::string& input : inputs) {
    SCOPED_TRACE(input);
    const absl::Status status = ParseError(input);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), StartsWith("test.yaml"));
  }
}

TEST(YamlToProto, TopLevelMustBeAMapping) {
  EXPECT_EQ(ParseError("- listen: a\n").message(),
            "test.yaml:1:1: the top level must be a mapping of keys (such as \"listen: ...\"), "
            "got a list");
  EXPECT_THAT(std::string(ParseError("hello\n").message()), HasSubstr("got \"hello\""));
}

TEST(YamlToProto, MultipleDocumentsAreRejected) {
  EXPECT_THAT(std::string(ParseError("name: a\n---\nname: b\n").message()),
              HasSubstr("test.yaml:3:1: expected a single YAML document, found 2"));
}

TEST(YamlToProto, NullValuesLeaveFieldsUnset) {
  absl::StatusOr<v1::SidecarConfig> config = ParseConfig(
      "listen:\nname: ~\ndefault_retry: null\nservices:\njournal: {durability: }\n"
      "max_payload_bytes: null\n",
      "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen(), "");
  EXPECT_EQ(config->name(), "");
  EXPECT_FALSE(config->has_default_retry());
  EXPECT_EQ(config->services_size(), 0);
  EXPECT_TRUE(config->has_journal());
  EXPECT_EQ(config->journal().durability(), v1::JournalConfig::DURABILITY_UNSPECIFIED);
  // A quoted "null" is a string.
  EXPECT_EQ(ParseConfig("name: \"null\"\n", "t")->name(), "null");
}

// --- Every field kind, on a message of its own --------------------------------------------------

TEST(YamlToProto, EveryScalarKind) {
  absl::StatusOr<Kinds> kinds = ParseKinds(
      "i32: -7\ni64: \"-9007199254740993\"\nu32: 4294967295\nu64: 18446744073709551615\n"
      "real: -2.5e-3\nsingle: 1.5\nflag: TRUE\ncolor: green\ntext: hello\ndata: aGk=\n");
  ASSERT_TRUE(kinds.ok()) << kinds.status();
  EXPECT_EQ(kinds->i32(), -7);
  EXPECT_EQ(kinds->i64(), -9007199254740993);
  EXPECT_EQ(kinds->u32(), 4294967295u);
  EXPECT_EQ(kinds->u64(), 18446744073709551615u);
  EXPECT_DOUBLE_EQ(kinds->real(), -2.5e-3);
  EXPECT_FLOAT_EQ(kinds->single(), 1.5f);
  EXPECT_TRUE(kinds->flag());
  EXPECT_EQ(kinds->color(), Kinds::GREEN);
  EXPECT_EQ(kinds->text(), "hello");
  EXPECT_EQ(kinds->data(), "hi");
  // Web-safe base64 too.
  EXPECT_EQ(ParseKinds("data: _-8=\n")->data(), "\xff\xef");
}

TEST(YamlToProto, OutOfRangeAndWrongKindsNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"i32: 2147483648\n", "kinds.yaml:1:6: i32: out of range for int32"},
      {"i32: -2147483649\n", "i32: out of range for int32"},
      {"i64: 9223372036854775808\n", "i64: out of range for int64"},
      {"u64: 18446744073709551616\n", "u64: out of range for uint64"},
      {"u64: -1\n", "u64: must not be negative (uint64), got -1"},
      {"single: 1e39\n", "single: out of range for float, got 1e39"},
      {"flag: yes\n", "flag: expected true or false, got \"yes\""},
      {"color: BLUE\n",
       "color: unknown Color \"BLUE\"; expected one of COLOR_UNSPECIFIED, RED, GREEN"},
      {"data: \"not base64!\"\n", "data: expected base64 text, got \"not base64!\""},
      {"numbers: [1, x]\n", "kinds.yaml:1:14: numbers[1]: expected an integer, got \"x\""},
      {"by_number: {one: a}\n", "by_number[one]: expected an integer, got \"one\""},
      {"child: {child: {i32: {}}}\n", "child.child.i32: expected an integer, got a mapping"},
      {"timeout: -1s\n", "timeout: duration must not be negative"},
      {"word: a\ncount: 1\n",
       "kinds.yaml:2:1: count: cannot be set together with \"word\" (both belong to oneof "
       "\"choice\")"},
  };
  for (const auto& [yaml, expected] : cases) {
    SCOPED_TRACE(yaml);
    const absl::Status status = ParseKinds(yaml).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), HasSubstr(expected));
  }
}

TEST(YamlToProto, MapsListsNestingAndPresence) {
  absl::StatusOr<Kinds> kinds = ParseKinds(
      "numbers: [3, 1, 2]\n"
      "colors: [red, 2]\n"
      "by_number: {7: seven, -1: minus}\n"
      "children:\n  a: {i32: 1, children: {b: {text: deep}}}\n  empty:\n"
      "timeout: 1.5\n"
      "count: 4\n"
      "maybe: 0\n");
  ASSERT_TRUE(kinds.ok()) << kinds.status();
  EXPECT_THAT(kinds->numbers(), ::testing::ElementsAre(3, 1, 2));
  EXPECT_THAT(kinds->colors(), ::testing::ElementsAre(Kinds::RED, Kinds::GREEN));
  EXPECT_EQ(kinds->by_number().at(7), "seven");
  EXPECT_EQ(kinds->by_number().at(-1), "minus");
  EXPECT_EQ(kinds->children().at("a").children().at("b").text(), "deep");
  EXPECT_EQ(kinds->children().count("empty"), 1u);  // A null map value: the key, default value.
  EXPECT_EQ(Millis(kinds->timeout()), 1500);
  EXPECT_EQ(kinds->count(), 4);
  EXPECT_TRUE(kinds->has_maybe());  // Presence is kept, even for 0.
}

TEST(YamlToProto, DeepNestingIsAnErrorNotACrash) {
  std::string yaml;
  for (int i = 0; i < 70; ++i) yaml += "{child: ";
  yaml += "{}";
  for (int i = 0; i < 70; ++i) yaml += "}";
  const absl::Status status = ParseKinds(yaml).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("nested too deeply"));
}

TEST(YamlToProto, MessageWithoutFields) {
  callmesh::testing::Empty empty;
  SourcePositions positions("e.yaml");
  EXPECT_EQ(YamlToProto("x: 1\n", &empty, &positions).message(),
            "e.yaml:1:1: x: unknown key; this message has no fields");
  EXPECT_THAT(std::string(YamlToProto("[]\n", &empty, &positions).message()),
              HasSubstr("the top level must be a mapping of keys (such as \"key: ...\")"));
}

TEST(YamlToProto, RecordsWhereEachKeyPathIsWritten) {
  Kinds kinds;
  SourcePositions positions("kinds.yaml");
  ASSERT_TRUE(YamlToProto("text: a\nchild:\n  numbers: [1, 2]\n  i32:\n", &kinds, &positions).ok());
  EXPECT_EQ(positions.Error("child.numbers[1]", "p").message(),
            "kinds.yaml:3:16: child.numbers[1]: p");
  // A null value: the position of its key.
  EXPECT_EQ(positions.Error("child.i32", "p").message(), "kinds.yaml:4:3: child.i32: p");
  // Not written: the closest enclosing key path (its value, a mapping, starts at 3:3).
  EXPECT_EQ(positions.Error("child.timeout", "p").message(), "kinds.yaml:3:3: child.timeout: p");
}

TEST(YamlToProto, ScalarToProtoFieldSetsOneFieldFromText) {
  Kinds kinds;
  SourcePositions flag("--i32");
  ASSERT_TRUE(ScalarToProtoField("i32", "42", &kinds, &flag).ok());
  EXPECT_EQ(kinds.i32(), 42);
  ASSERT_TRUE(ScalarToProtoField("timeout", "250ms", &kinds, &flag).ok());
  EXPECT_EQ(Millis(kinds.timeout()), 250);
  ASSERT_TRUE(ScalarToProtoField("text", "a: b # not a comment", &kinds, &flag).ok());
  EXPECT_EQ(kinds.text(), "a: b # not a comment");
  EXPECT_EQ(ScalarToProtoField("i32", "many", &kinds, &flag).message(),
            "--i32: i32: expected an integer, got \"many\"");
  EXPECT_EQ(ScalarToProtoField("i3", "1", &kinds, &flag).message(),
            "--i32: i3: unknown key; did you mean \"i32\"?");
}

}  // namespace
}  // namespace callmesh::sidecar
