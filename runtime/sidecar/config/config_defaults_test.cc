#include "runtime/sidecar/config/config_defaults.h"

#include <string>

#include "callmesh/v1/config.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "runtime/sidecar/config/config_loader.h"
#include "runtime/sidecar/config/config_validation.h"

namespace callmesh::sidecar {
namespace {

using ::google::protobuf::util::MessageDifferencer;

int64_t Millis(const google::protobuf::Duration& d) {
  return d.seconds() * 1000 + d.nanos() / 1000000;
}

TEST(ConfigDefaults, DefaultsFillAnEmptyConfig) {
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
  EXPECT_EQ(Millis(config.remove_unreachable_after()), 5 * 60 * 1000);
  EXPECT_EQ(Millis(config.result_retention()), 24 * 3600 * 1000);
  EXPECT_EQ(config.journal().durability(), v1::JournalConfig::FSYNC);
  EXPECT_EQ(config.journal().spin_wait().nanos(), 300000);
  EXPECT_EQ(config.journal().spin_wait().seconds(), 0);
  EXPECT_EQ(config.limits().max_pending_calls(), 1000000u);
  EXPECT_EQ(config.limits().max_in_flight_per_target(), 64u);
  EXPECT_EQ(config.limits().max_watchers(), 1024u);
  EXPECT_EQ(config.limits().max_sync_in_flight(), 1024u);
  EXPECT_EQ(config.log_level(), "info");
  EXPECT_EQ(config.log_format(), "text");
  EXPECT_EQ(config.access_log_sample_rate(), 0);
  EXPECT_EQ(config.admin_listen(), "");
  EXPECT_EQ(config.default_retry().max_attempts(), 5u);
  // Callbacks get longer: about 2 minutes for a callback service to come back.
  EXPECT_EQ(config.callback_retry().max_attempts(), 12u);
  for (const v1::RetryPolicy* policy : {&config.default_retry(), &config.callback_retry()}) {
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

TEST(ConfigDefaults, DefaultsFillOnlyUnsetFields) {
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

TEST(ConfigDefaults, PresentZeroDurationsAndOptionalPresenceAreKept) {
  v1::SidecarConfig config;
  config.mutable_default_attempt_timeout()->set_nanos(0);  // Present, zero.
  config.mutable_limits()->set_max_watchers(3);
  config.mutable_default_retry()->mutable_initial_backoff()->set_seconds(0);
  ApplyConfigDefaults(&config);
  EXPECT_TRUE(config.has_default_attempt_timeout());
  EXPECT_EQ(Millis(config.default_attempt_timeout()), 0);  // Kept, so validation refuses it.
  EXPECT_EQ(config.limits().max_watchers(), 3u);
  EXPECT_EQ(config.limits().max_pending_calls(), 1000000u);  // Filled next to a set sibling.
  EXPECT_EQ(Millis(config.default_retry().initial_backoff()), 0);
  EXPECT_EQ(Millis(config.default_retry().max_backoff()), 30000);
  EXPECT_FALSE(ValidateConfig(config).ok());
}

}  // namespace
}  // namespace callmesh::sidecar
