#include "runtime/sidecar/config/config_loader.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "callmesh/v1/config.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace callmesh::sidecar {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kTestdata[] = "runtime/sidecar/config/testdata/";

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

std::string WriteTempFile(const std::string& name, const std::string& content) {
  const std::string path = TempPath(name);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  return path;
}

// The error of parsing `text` (origin "test.yaml"); OK if it parses.
absl::Status ParseError(const std::string& text) { return ParseConfig(text, "test.yaml").status(); }

// The error of validating `text` after defaults; fails the test if `text` does not parse.
absl::Status ValidationError(const std::string& text) {
  absl::StatusOr<v1::SidecarConfig> config = ParseConfig(text, "test.yaml");
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return config.status();
  ApplyConfigDefaults(&*config);
  return ValidateConfig(*config);
}

int64_t Millis(const google::protobuf::Duration& d) {
  return d.seconds() * 1000 + d.nanos() / 1000000;
}

TEST(ConfigLoader, FullYamlLoadsEveryFieldKind) {
  absl::StatusOr<v1::SidecarConfig> loaded = LoadConfigFile(absl::StrCat(kTestdata, "full.yaml"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const v1::SidecarConfig& c = *loaded;
  // Strings and integers.
  EXPECT_EQ(c.listen(), "0.0.0.0:4771");
  EXPECT_EQ(c.name(), "billing");
  EXPECT_EQ(c.data_dir(), "/var/lib/callmesh");
  EXPECT_EQ(c.max_payload_bytes(), 8388608u);
  EXPECT_EQ(c.log_level(), "debug");
  // Durations: units, compound, bare seconds.
  EXPECT_EQ(Millis(c.default_attempt_timeout()), 20000);
  EXPECT_EQ(Millis(c.default_call_timeout()), 2 * 3600 * 1000);
  EXPECT_EQ(c.health_check_interval().seconds(), 1);
  EXPECT_EQ(c.health_check_interval().nanos(), 500000000);
  EXPECT_EQ(Millis(c.drain_timeout()), 15000);
  EXPECT_EQ(Millis(c.result_retention()), 48 * 3600 * 1000);
  // Enum by lower-case name.
  EXPECT_EQ(c.journal().durability(), v1::JournalConfig::NONE);
  // Nested messages.
  EXPECT_EQ(c.limits().max_pending_calls(), 5000u);
  EXPECT_EQ(c.limits().max_in_flight_per_target(), 32u);
  EXPECT_EQ(c.limits().max_watchers(), 10u);
  EXPECT_EQ(c.limits().max_sync_in_flight(), 256u);
  EXPECT_EQ(c.default_retry().max_attempts(), 4u);
  EXPECT_EQ(Millis(c.default_retry().initial_backoff()), 500);
  EXPECT_EQ(Millis(c.default_retry().max_backoff()), 10000);
  EXPECT_DOUBLE_EQ(c.default_retry().backoff_multiplier(), 3.0);
  EXPECT_DOUBLE_EQ(c.default_retry().jitter(), 0.25);
  EXPECT_THAT(c.default_retry().retryable_codes(), ::testing::ElementsAre("UNAVAILABLE"));
  EXPECT_EQ(c.callback_retry().max_attempts(), 10u);
  EXPECT_EQ(Millis(c.callback_retry().max_backoff()), 3600 * 1000);
  EXPECT_DOUBLE_EQ(c.callback_retry().backoff_multiplier(), 2.5);
  // Repeated messages, repeated strings, maps.
  ASSERT_EQ(c.services_size(), 2);
  const v1::ServiceConfig& greeter = c.services(0);
  EXPECT_EQ(greeter.name(), "greeter");
  EXPECT_THAT(greeter.addresses(), ::testing::ElementsAre("127.0.0.1:50051", "[::1]:50052"));
  EXPECT_EQ(greeter.retry().max_attempts(), 3u);
  EXPECT_EQ(Millis(greeter.retry().initial_backoff()), 250);
  EXPECT_EQ(Millis(greeter.retry().max_backoff()), 90000);
  EXPECT_DOUBLE_EQ(greeter.retry().backoff_multiplier(), 1.5);
  EXPECT_DOUBLE_EQ(greeter.retry().jitter(), 0.1);
  EXPECT_THAT(greeter.retry().retryable_codes(),
              ::testing::ElementsAre("UNAVAILABLE", "deadline_exceeded"));
  ASSERT_EQ(greeter.method_retry().size(), 2u);
  EXPECT_EQ(greeter.method_retry().at("helloworld.Greeter/SayHello").max_attempts(), 7u);
  EXPECT_EQ(Millis(greeter.method_retry().at("helloworld.Greeter/SayHello").initial_backoff()),
            1000);
  EXPECT_EQ(greeter.method_retry().at("/helloworld.Greeter/SayGoodbye").max_attempts(), 1u);
  EXPECT_EQ(Millis(greeter.attempt_timeout()), 5000);
  EXPECT_EQ(greeter.max_in_flight(), 16u);
  ASSERT_EQ(greeter.subscriptions_size(), 1);
  EXPECT_EQ(greeter.subscriptions(0).topic(), "orders.created");
  EXPECT_EQ(greeter.subscriptions(0).method(), "helloworld.Greeter/OnOrder");
  EXPECT_EQ(c.services(1).name(), "ledger");
  EXPECT_THAT(c.services(1).addresses(), ::testing::ElementsAre("ledger.internal:443"));
  EXPECT_FALSE(c.services(1).has_retry());
}

TEST(ConfigLoader, FullConfigIsValidAfterDefaults) {
  absl::StatusOr<v1::SidecarConfig> loaded =
      LoadAndValidateConfig(absl::StrCat(kTestdata, "full.yaml"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->services(1).max_in_flight(), 32u);  // From limits.max_in_flight_per_target.
}

TEST(ConfigLoader, JsonGivesTheSameMessageAsYaml) {
  absl::StatusOr<v1::SidecarConfig> yaml = LoadConfigFile(absl::StrCat(kTestdata, "full.yaml"));
  absl::StatusOr<v1::SidecarConfig> json = LoadConfigFile(absl::StrCat(kTestdata, "full.json"));
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  ASSERT_TRUE(json.ok()) << json.status();
  MessageDifferencer differencer;
  std::string differences;
  differencer.ReportDifferencesToString(&differences);
  EXPECT_TRUE(differencer.Compare(*yaml, *json)) << differences;
}

TEST(ConfigLoader, OutputOfProtobufJsonPrinterLoads) {
  absl::StatusOr<v1::SidecarConfig> yaml = LoadConfigFile(absl::StrCat(kTestdata, "full.yaml"));
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  v1::SidecarConfig with_defaults = *yaml;
  ApplyConfigDefaults(&with_defaults);
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(with_defaults, &json).ok());
  // The printer uses lowerCamelCase names and quotes 64-bit integers.
  ASSERT_THAT(json, HasSubstr("\"maxPayloadBytes\":\"8388608\""));
  absl::StatusOr<v1::SidecarConfig> reparsed = ParseConfig(json, "printed.json");
  ASSERT_TRUE(reparsed.ok()) << reparsed.status();
  EXPECT_TRUE(MessageDifferencer::Equals(with_defaults, *reparsed)) << json;
}

TEST(ConfigLoader, CamelCaseKeysAreAccepted) {
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

TEST(ConfigLoader, KeyGivenTwiceIsAnError) {
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

TEST(ConfigLoader, UnknownTopLevelKeyNamesKeyLineAndSuggestion) {
  const absl::Status status = ParseError("name: a\nlistn: 127.0.0.1:1\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "test.yaml:2:1: listn: unknown key; did you mean \"listen\"?");
}

TEST(ConfigLoader, UnknownNestedKeyNamesPathAndLine) {
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

TEST(ConfigLoader, UnknownKeyWithoutCloseMatchListsValidKeys) {
  const absl::Status status = ParseError("journal: {zzzzzzzz: 1}\n");
  EXPECT_THAT(
      std::string(status.message()),
      HasSubstr("test.yaml:1:11: journal.zzzzzzzz: unknown key; valid keys are durability"));
}

TEST(ConfigLoader, WrongTypesNameThePath) {
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

TEST(ConfigLoader, ScalarForms) {
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

TEST(ConfigLoader, DurationForms) {
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

TEST(ConfigLoader, BadDurationIsAnError) {
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

TEST(ConfigLoader, NegativeDurationIsAnError) {
  EXPECT_THAT(std::string(ParseError("drain_timeout: -5s\n").message()),
              HasSubstr("test.yaml:1:16: drain_timeout: duration must not be negative"));
  EXPECT_THAT(std::string(ParseError("drain_timeout: -1.5\n").message()),
              HasSubstr("test.yaml:1:16: drain_timeout: duration must not be negative"));
}

TEST(ConfigLoader, YamlSyntaxErrorHasLineNumber) {
  const absl::Status status = ParseError("name: a\nservices: [a, b\nlisten: x\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              ::testing::MatchesRegex("test\\.yaml:[23]:[0-9]+: .+"));
  const absl::Status tab = ParseError("a:\n\t- b\n");
  EXPECT_THAT(std::string(tab.message()), StartsWith("test.yaml:2:"));
}

TEST(ConfigLoader, MalformedDocumentsNeverThrow) {
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

TEST(ConfigLoader, TopLevelMustBeAMapping) {
  EXPECT_EQ(ParseError("- listen: a\n").message(),
            "test.yaml:1:1: the top level must be a mapping of keys (such as \"listen: ...\"), "
            "got a list");
  EXPECT_THAT(std::string(ParseError("hello\n").message()), HasSubstr("got \"hello\""));
}

TEST(ConfigLoader, MultipleDocumentsAreRejected) {
  EXPECT_THAT(std::string(ParseError("name: a\n---\nname: b\n").message()),
              HasSubstr("test.yaml:3:1: expected a single YAML document, found 2"));
}

TEST(ConfigLoader, MissingFileNamesThePath) {
  const std::string path = TempPath("does-not-exist.yaml");
  absl::StatusOr<v1::SidecarConfig> config = LoadConfigFile(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("No such file or directory"));
  EXPECT_EQ(LoadAndValidateConfig(path).status().code(), absl::StatusCode::kNotFound);
}

TEST(ConfigLoader, DirectoryIsAnErrorNotACrash) {
  const char* dir = std::getenv("TEST_TMPDIR");
  ASSERT_NE(dir, nullptr);
  absl::StatusOr<v1::SidecarConfig> config = LoadConfigFile(dir);
  EXPECT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(dir));
}

TEST(ConfigLoader, EmptyFileIsAnEmptyConfig) {
  for (const std::string& content : {std::string(""), std::string("# only a comment\n"),
                                     std::string("---\n"), std::string("\n\n")}) {
    SCOPED_TRACE(content);
    absl::StatusOr<v1::SidecarConfig> config = LoadConfigFile(WriteTempFile("empty.yaml", content));
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_TRUE(MessageDifferencer::Equals(*config, v1::SidecarConfig()));
  }
  absl::StatusOr<v1::SidecarConfig> validated =
      LoadAndValidateConfig(WriteTempFile("empty.yaml", ""));
  ASSERT_TRUE(validated.ok()) << validated.status();
  EXPECT_EQ(validated->listen(), "127.0.0.1:4770");
}

TEST(ConfigLoader, NullValuesLeaveFieldsUnset) {
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

TEST(ConfigLoader, DefaultsFillAnEmptyConfig) {
  v1::SidecarConfig config;
  ApplyConfigDefaults(&config);
  EXPECT_EQ(config.listen(), "127.0.0.1:4770");
  EXPECT_EQ(config.name(), "app");
  EXPECT_EQ(config.data_dir(), "./callmesh-data");
  EXPECT_EQ(config.max_payload_bytes(), 4u << 20);
  EXPECT_EQ(Millis(config.default_attempt_timeout()), 30000);
  EXPECT_EQ(Millis(config.default_call_timeout()), 24 * 3600 * 1000);
  EXPECT_EQ(Millis(config.health_check_interval()), 2000);
  EXPECT_EQ(Millis(config.drain_timeout()), 10000);
  EXPECT_EQ(Millis(config.result_retention()), 24 * 3600 * 1000);
  EXPECT_EQ(config.journal().durability(), v1::JournalConfig::FSYNC);
  EXPECT_EQ(config.limits().max_pending_calls(), 1000000u);
  EXPECT_EQ(config.limits().max_in_flight_per_target(), 64u);
  EXPECT_EQ(config.limits().max_watchers(), 1024u);
  EXPECT_EQ(config.limits().max_sync_in_flight(), 1024u);
  EXPECT_EQ(config.log_level(), "info");
  for (const v1::RetryPolicy* policy : {&config.default_retry(), &config.callback_retry()}) {
    EXPECT_EQ(policy->max_attempts(), 5u);
    EXPECT_EQ(Millis(policy->initial_backoff()), 100);
    EXPECT_EQ(Millis(policy->max_backoff()), 30000);
    EXPECT_DOUBLE_EQ(policy->backoff_multiplier(), 2.0);
    EXPECT_DOUBLE_EQ(policy->jitter(), 0.2);
    EXPECT_THAT(policy->retryable_codes(),
                ::testing::ElementsAre("UNAVAILABLE", "RESOURCE_EXHAUSTED", "ABORTED"));
  }
  EXPECT_TRUE(ValidateConfig(config).ok()) << ValidateConfig(config);
  // Idempotent.
  v1::SidecarConfig again = config;
  ApplyConfigDefaults(&again);
  EXPECT_TRUE(MessageDifferencer::Equals(config, again));
}

TEST(ConfigLoader, DefaultsFillOnlyUnsetFields) {
  absl::StatusOr<v1::SidecarConfig> config = ParseConfig(
      "name: billing\n"
      "drain_timeout: 0s\n"
      "limits: {max_in_flight_per_target: 8}\n"
      "default_retry: {max_attempts: 2, max_backoff: 1s}\n"
      "journal: {durability: NONE}\n"
      "services:\n"
      "  - name: a\n"
      "    addresses: [h:1]\n"
      "  - name: b\n"
      "    addresses: [h:2]\n"
      "    max_in_flight: 3\n"
      "    attempt_timeout: 7s\n"
      "    retry: {jitter: 0.5}\n"
      "    method_retry: {p.S/M: {max_attempts: 9}}\n",
      "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  ApplyConfigDefaults(&*config);
  EXPECT_EQ(config->name(), "billing");
  EXPECT_EQ(config->listen(), "127.0.0.1:4770");
  EXPECT_TRUE(config->has_drain_timeout());
  EXPECT_EQ(Millis(config->drain_timeout()), 0);  // Present, so kept.
  EXPECT_EQ(config->journal().durability(), v1::JournalConfig::NONE);
  EXPECT_EQ(config->limits().max_in_flight_per_target(), 8u);
  EXPECT_EQ(config->limits().max_watchers(), 1024u);
  EXPECT_EQ(config->default_retry().max_attempts(), 2u);
  EXPECT_EQ(Millis(config->default_retry().max_backoff()), 1000);
  EXPECT_EQ(Millis(config->default_retry().initial_backoff()), 100);
  EXPECT_DOUBLE_EQ(config->default_retry().jitter(), 0.2);
  const v1::ServiceConfig& a = config->services(0);
  EXPECT_EQ(a.max_in_flight(), 8u);  // limits.max_in_flight_per_target
  EXPECT_EQ(Millis(a.attempt_timeout()), 30000);
  EXPECT_FALSE(a.has_retry());  // Unset means "use default_retry".
  const v1::ServiceConfig& b = config->services(1);
  EXPECT_EQ(b.max_in_flight(), 3u);
  EXPECT_EQ(Millis(b.attempt_timeout()), 7000);
  EXPECT_DOUBLE_EQ(b.retry().jitter(), 0.5);
  EXPECT_EQ(b.retry().max_attempts(), 5u);  // RetryPolicy's own default.
  EXPECT_EQ(b.method_retry().at("p.S/M").max_attempts(), 9u);
  EXPECT_EQ(Millis(b.method_retry().at("p.S/M").max_backoff()), 30000);
  EXPECT_TRUE(ValidateConfig(*config).ok()) << ValidateConfig(*config);
}

TEST(ConfigLoader, EachValidationRuleNamesItsPath) {
  struct Case {
    std::string yaml;
    std::string expected;
  };
  const std::string svc = "services:\n  - name: a\n    addresses: [h:1]\n";
  const std::vector<Case> cases = {
      {"listen: nocolon\n", "listen: must be host:port, got \"nocolon\""},
      {"listen: h:70000\n", "listen: must be host:port with a port from 0 to 65535"},
      {"listen: ::1:80\n", "listen: must be host:port with IPv6 hosts in brackets"},
      {"name: has space\n", "name: may only contain letters, digits, '.', '_' and '-'"},
      {absl::StrCat("name: ", std::string(129, 'n'), "\n"),
       "name: must be at most 128 characters, got 129"},
      {"max_payload_bytes: 67108865\n",
       "max_payload_bytes: must be between 1 and 67108864 (64 MiB), got 67108865"},
      {"services:\n  - addresses: [h:1]\n", "services[0].name: is required"},
      {"services:\n  - name: a/b\n    addresses: [h:1]\n",
       "services[0].name: may only contain letters"},
      {"services:\n  - {name: a, addresses: [h:1]}\n  - {name: b, addresses: [h:1]}\n"
       "  - {name: a, addresses: [h:2]}\n",
       "services[2].name: duplicate service name \"a\" (also services[0].name)"},
      {"services:\n  - name: a\n", "services[0].addresses: at least one \"host:port\""},
      {"services:\n  - name: a\n    addresses: [h:1, nope]\n",
       "services[0].addresses[1]: must be host:port, got \"nope\""},
      {"services:\n  - name: a\n    addresses: [\"[::1\"]\n",
       "services[0].addresses[0]: must be host:port, got \"[::1\""},
      {"services:\n  - name: a\n    addresses: [h:0]\n",
       "services[0].addresses[0]: must be host:port with a port from 1 to 65535"},
      {"default_retry: {max_attempts: 0}\n", ""},  // 0 is "unset": defaulted to 5, valid.
      {absl::StrCat(svc, "    retry: {initial_backoff: 0s}\n"),
       "services[0].retry.initial_backoff: must be > 0, got 0"},
      {absl::StrCat(svc, "    retry: {initial_backoff: 2s, max_backoff: 1s}\n"),
       "services[0].retry.max_backoff: must be >= initial_backoff (2s), got 1s"},
      {absl::StrCat(svc,
                    "  - name: b\n    addresses: [h:2]\n    retry: {backoff_multiplier: 0.5}\n"),
       "services[1].retry.backoff_multiplier: must be >= 1 and finite, got 0.5"},
      {"default_retry: {backoff_multiplier: .inf}\n",
       "default_retry.backoff_multiplier: must be >= 1 and finite, got inf"},
      {"callback_retry: {jitter: 1.5}\n",
       "callback_retry.jitter: must be between 0 and 1, got 1.5"},
      {"callback_retry: {jitter: -0.1}\n",
       "callback_retry.jitter: must be between 0 and 1, got -0.1"},
      {"default_retry: {retryable_codes: [UNAVAILABLE, NOPE]}\n",
       "default_retry.retryable_codes[1]: unknown gRPC status code \"NOPE\""},
      {"default_retry: {retryable_codes: [ok]}\n",
       "default_retry.retryable_codes[0]: OK is not an error and cannot be retried"},
      {absl::StrCat(svc, "    method_retry: {NoSlash: {}}\n"),
       "services[0].method_retry[\"NoSlash\"]: must be a gRPC method \"package.Service/Method\""},
      {absl::StrCat(svc, "    method_retry: {\"p.S/M\": {max_attempts: 2, jitter: 3}}\n"),
       "services[0].method_retry[\"p.S/M\"].jitter: must be between 0 and 1, got 3"},
      {absl::StrCat(svc, "    attempt_timeout: 0s\n"),
       "services[0].attempt_timeout: must be > 0, got 0"},
      {"default_attempt_timeout: 0\n", "default_attempt_timeout: must be > 0, got 0"},
      {"default_call_timeout: 0s\n", "default_call_timeout: must be > 0, got 0"},
      {"health_check_interval: 0ms\n", "health_check_interval: must be > 0, got 0"},
      {"log_level: verbose\n",
       "log_level: must be one of trace, debug, info, warn, error, got \"verbose\""},
      {absl::StrCat(svc, "    subscriptions: [{method: p.S/M}]\n"),
       "services[0].subscriptions[0].topic: is required"},
      {absl::StrCat(svc, "    subscriptions: [{topic: t}]\n"),
       "services[0].subscriptions[0].method: is required"},
      {absl::StrCat(svc, "    subscriptions: [{topic: t, method: \"p.S/\"}]\n"),
       "services[0].subscriptions[0].method: must be a gRPC method"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    const absl::Status status = ValidationError(c.yaml);
    if (c.expected.empty()) {
      EXPECT_TRUE(status.ok()) << status;
    } else {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(status.message()), StartsWith(c.expected));
    }
  }
}

TEST(ConfigLoader, ValidationRulesOutsideTheParser) {
  // Values the parser cannot produce but code can.
  v1::SidecarConfig config;
  ApplyConfigDefaults(&config);
  ASSERT_TRUE(ValidateConfig(config).ok());

  v1::SidecarConfig no_data_dir = config;
  no_data_dir.clear_data_dir();
  EXPECT_EQ(ValidateConfig(no_data_dir).message(), "data_dir: is required");

  v1::SidecarConfig no_listen = config;
  no_listen.clear_listen();
  EXPECT_THAT(std::string(ValidateConfig(no_listen).message()), StartsWith("listen: is required"));

  v1::SidecarConfig negative = config;
  negative.mutable_drain_timeout()->set_seconds(-1);
  EXPECT_EQ(ValidateConfig(negative).message(), "drain_timeout: must not be negative, got -1s");

  v1::SidecarConfig zero_payload = config;
  zero_payload.set_max_payload_bytes(0);
  EXPECT_THAT(std::string(ValidateConfig(zero_payload).message()),
              StartsWith("max_payload_bytes: must be between 1 and"));

  v1::SidecarConfig unspecified = config;
  unspecified.mutable_journal()->clear_durability();
  EXPECT_EQ(ValidateConfig(unspecified).message(),
            "journal.durability: must be FSYNC or NONE, got DURABILITY_UNSPECIFIED");

  v1::SidecarConfig no_watchers = config;
  no_watchers.mutable_limits()->set_max_watchers(0);
  EXPECT_EQ(ValidateConfig(no_watchers).message(), "limits.max_watchers: must be >= 1, got 0");

  v1::SidecarConfig no_sync = config;
  no_sync.mutable_limits()->set_max_sync_in_flight(0);
  EXPECT_EQ(ValidateConfig(no_sync).message(), "limits.max_sync_in_flight: must be >= 1, got 0");

  v1::SidecarConfig no_attempts = config;
  no_attempts.mutable_callback_retry()->set_max_attempts(0);
  EXPECT_EQ(ValidateConfig(no_attempts).message(),
            "callback_retry.max_attempts: must be >= 1, got 0");

  v1::SidecarConfig no_in_flight = config;
  v1::ServiceConfig* service = no_in_flight.add_services();
  service->set_name("a");
  service->add_addresses("[::1]:50051");
  EXPECT_EQ(ValidateConfig(no_in_flight).message(),
            "services[0].max_in_flight: must be >= 1, got 0");
}

TEST(ConfigLoader, LoadAndValidatePrefixesPathAndLine) {
  const std::string path = WriteTempFile("invalid.yaml",
                                         "services:\n"
                                         "  - name: a\n"
                                         "    addresses: [h:1]\n"
                                         "  - name: b\n"
                                         "    addresses: [h:2]\n"
                                         "    retry:\n"
                                         "      backoff_multiplier: 0.5\n");
  absl::StatusOr<v1::SidecarConfig> config = LoadAndValidateConfig(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            absl::StrCat(path,
                         ":7:27: services[1].retry.backoff_multiplier: must be >= 1 and "
                         "finite, got 0.5"));
  // A problem with a defaulted value points at the closest enclosing key in the file.
  const std::string defaulted = WriteTempFile(
      "defaulted.yaml", "name: a\nservices:\n  - name: b\n    retry: {initial_backoff: 1m}\n");
  EXPECT_THAT(std::string(LoadAndValidateConfig(defaulted).status().message()),
              StartsWith(absl::StrCat(defaulted,
                                      ":3:5: services[0].addresses: at least one \"host:port\"")));
  const std::string capped =
      WriteTempFile("capped.yaml", "default_retry:\n  initial_backoff: 1m\n");
  EXPECT_THAT(std::string(LoadAndValidateConfig(capped).status().message()),
              StartsWith(absl::StrCat(
                  capped, ":2:3: default_retry.max_backoff: must be >= initial_backoff")));
}

TEST(ConfigLoader, ParseStatusCodeNameRoundTripsAllCodes) {
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
  for (const char* bad : {"", "UNAVAILABLE ", "14", "CANCELED", "NOT FOUND"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(ParseStatusCodeName(bad).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace callmesh::sidecar
