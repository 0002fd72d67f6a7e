#include "runtime/sidecar/config/config_loader.h"

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
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
  EXPECT_TRUE(c.journal().has_spin_wait());  // 0s as written: spinning off, not defaulted
  EXPECT_EQ(Millis(c.journal().spin_wait()), 0);
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

// The names a config file refuses are those RegisterService, Invoke and the SDK refuse (one
// grammar, runtime/common/names.h): these three used to pass there and fail here.

TEST(ConfigLoader, OverridesReplaceFileValuesAndNameTheirOrigin) {
  const std::string path = WriteTempFile("overridden.yaml", "listen: 127.0.0.1:1\nname: a\n");
  absl::StatusOr<v1::SidecarConfig> config =
      LoadAndValidateConfig(path, {{"listen", "127.0.0.1:0", "--listen"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen(), "127.0.0.1:0");
  EXPECT_EQ(config->name(), "a");
  // A bad overriding value names the flag, not the file's line.
  EXPECT_EQ(LoadAndValidateConfig(path, {{"name", "a b", "--name"}}).status().message(),
            "--name: name: may only contain letters, digits, '.', '_' and '-', got \"a b\"");
  // Without a file, the defaults are validated with the overrides.
  absl::StatusOr<v1::SidecarConfig> no_file =
      LoadAndValidateConfig("", {{"data_dir", "/d", "--data_dir"}});
  ASSERT_TRUE(no_file.ok()) << no_file.status();
  EXPECT_EQ(no_file->data_dir(), "/d");
  EXPECT_EQ(no_file->listen(), "127.0.0.1:4770");
  EXPECT_EQ(LoadAndValidateConfig("", {{"log_level", "loud", "--log_level"}}).status().message(),
            "--log_level: log_level: must be one of trace, debug, info, warn, error, got \"loud\"");
}

TEST(ConfigLoader, FileErrorsKeepTheirLineWhenOverridesAreGiven) {
  const std::string path =
      WriteTempFile("bad-service.yaml", "name: a\nservices:\n  - name: b\n    addresses: [h:0]\n");
  EXPECT_EQ(LoadAndValidateConfig(path, {{"listen", "127.0.0.1:0", "--listen"}}).status().message(),
            absl::StrCat(path,
                         ":4:17: services[0].addresses[0]: must be host:port with a port "
                         "from 1 to 65535, got \"h:0\""));
}

}  // namespace
}  // namespace callmesh::sidecar
