#include "runtime/sidecar/config/config_validation.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "callmesh/v1/config.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/sidecar/config/config_defaults.h"
#include "runtime/sidecar/config/config_loader.h"

namespace callmesh::sidecar {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The error of validating `text` after defaults; fails the test if `text` does not parse.
absl::Status ValidationError(const std::string& text) {
  absl::StatusOr<v1::SidecarConfig> config = ParseConfig(text, "test.yaml");
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return config.status();
  ApplyConfigDefaults(&*config);
  return ValidateConfig(*config);
}

TEST(ConfigValidation, EachValidationRuleNamesItsPath) {
  struct Case {
    std::string yaml;
    std::string expected;
  };
  const std::string svc = "services:\n  - name: a\n    addresses: [h:1]\n";
  const std::vector<Case> cases = {
      {"listen: nocolon\n", "listen: must be host:port, got \"nocolon\""},
      {"listen: h:70000\n", "listen: must be host:port with a port from 0 to 65535"},
      {"listen: ::1:80\n", "listen: must be host:port with IPv6 hosts in brackets"},
      {"log_format: xml\n", "log_format: must be text or json, got \"xml\""},
      {"log_format: json\n", ""},
      {"access_log_sample_rate: 1.5\n", "access_log_sample_rate: must be between 0 and 1, got 1.5"},
      {"access_log_sample_rate: -0.1\n",
       "access_log_sample_rate: must be between 0 and 1, got -0.1"},
      {"access_log_sample_rate: .nan\n",
       "access_log_sample_rate: must be between 0 and 1, got nan"},
      {"access_log_sample_rate: 0.25\n", ""},
      {"admin_listen: nocolon\n", "admin_listen: must be host:port, got \"nocolon\""},
      {"admin_listen: 127.0.0.1:70000\n",
       "admin_listen: must be host:port with a port from 0 to 65535"},
      {"admin_listen: \"[::1]:4771\"\n", ""},
      {"admin_listen: \"\"\n", ""},  // no admin listener
      {"tracing: {endpoint: \"http://127.0.0.1:4318\"}\n", ""},
      {"tracing: {endpoint: \"https://collector:4318\"}\n",
       "tracing.endpoint: must be an http:// URL such as http://127.0.0.1:4318/v1/traces, got "
       "\"https://collector:4318\""},
      {"tracing: {max_queued_spans: 0}\n", ""},  // 0 is "unset": defaulted to 4096.
      {"journal: {spin_wait: 10ms}\n", ""},
      {"journal: {spin_wait: 0s}\n", ""},
      {"journal: {spin_wait: 11ms}\n",
       "journal.spin_wait: must be at most 10ms (a thread spins a CPU core that long), got "
       "11ms"},
      {"tracing: {flush_interval: 0s}\n", "tracing.flush_interval: must be > 0"},
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
       "services[0].method_retry[\"NoSlash\"]: must be a gRPC method "
       "\"package.Service/Method\""},
      {absl::StrCat(svc, "    method_retry: {\"p.S/M\": {max_attempts: 2, jitter: 3}}\n"),
       "services[0].method_retry[\"p.S/M\"].jitter: must be between 0 and 1, got 3"},
      {absl::StrCat(svc, "    attempt_timeout: 0s\n"),
       "services[0].attempt_timeout: must be > 0, got 0"},
      {"default_attempt_timeout: 0\n", "default_attempt_timeout: must be > 0, got 0"},
      {"default_call_timeout: 0s\n", "default_call_timeout: must be > 0, got 0"},
      {"health_check_interval: 0ms\n", "health_check_interval: must be > 0, got 0"},
      {"log_level: verbose\n",
       "log_level: must be one of trace, debug, info, warn, error, got \"verbose\""},
      {"topics: [{name: \"a/b\"}]\n",
       "topics[0].name: may only contain letters, digits, '.', '_' and '-', got \"a/b\""},
      {"topics: [{name: t}, {name: t}]\n",
       "topics[1].name: duplicate topic \"t\" (also topics[0].name)"},
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

TEST(ConfigValidation, ValidationRulesOutsideTheParser) {
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

  v1::SidecarConfig negative_removal = config;
  negative_removal.mutable_remove_unreachable_after()->set_seconds(-5);
  EXPECT_EQ(ValidateConfig(negative_removal).message(),
            "remove_unreachable_after: must not be negative, got -5s");

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

TEST(ConfigValidation, NamesFollowTheOneGrammar) {
  const std::string svc = "services:\n  - name: a\n    addresses: [h:1]\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"services:\n  - name: a\n    addresses: [\"my$host:80\"]\n",
       "services[0].addresses[0]: has an invalid host \"my$host\" in \"my$host:80\""},
      {"services:\n  - name: a\n    addresses: [\"host:0\"]\n",
       "services[0].addresses[0]: must be host:port with a port from 1 to 65535, got \"host:0\""},
      {absl::StrCat(svc, "    method_retry: {\"pkg..Svc/M\": {}}\n"),
       "services[0].method_retry[\"pkg..Svc/M\"]: must be a gRPC method"},
      {absl::StrCat(svc, "    subscriptions: [{topic: t, method: \"pkg..Svc/M\"}]\n"),
       "services[0].subscriptions[0].method: must be a gRPC method"},
      {"listen: \"bad host:80\"\n", "listen: has an invalid host \"bad host\""},
      {"services:\n  - name: a\n    addresses: [\"256.0.0.1:80\"]\n",
       "services[0].addresses[0]: has an invalid host \"256.0.0.1\" in \"256.0.0.1:80\": an IPv4 "
       "address is four numbers from 0 to 255"},
  };
  for (const auto& [yaml, expected] : cases) {
    SCOPED_TRACE(yaml);
    const absl::Status status = ValidationError(yaml);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), StartsWith(expected));
  }
  EXPECT_TRUE(ValidationError("listen: \"localhost:0\"\n").ok());
}

TEST(ConfigValidation, InvalidDurationMessagesAreRefused) {
  v1::SidecarConfig config;
  ApplyConfigDefaults(&config);
  config.mutable_drain_timeout()->set_nanos(2000000000);
  EXPECT_THAT(std::string(ValidateConfig(config).message()),
              StartsWith("drain_timeout: invalid duration (seconds 10, nanos 2000000000)"));
  config.mutable_drain_timeout()->set_nanos(-1);
  EXPECT_THAT(std::string(ValidateConfig(config).message()),
              HasSubstr("seconds and nanos of different signs"));
}

}  // namespace
}  // namespace callmesh::sidecar
