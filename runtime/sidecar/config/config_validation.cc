#include "runtime/sidecar/config/config_validation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "runtime/common/message_limits.h"
#include "runtime/common/names.h"
#include "runtime/common/proto_time.h"
#include "runtime/common/quoted.h"
#include "runtime/common/status_code_names.h"
#include "runtime/sidecar/cluster/cluster_config.h"
#include "runtime/sidecar/security/security_config_check.h"
#include "runtime/sidecar/tracing/http_endpoint.h"

namespace callmesh::sidecar {
namespace {

namespace pb = google::protobuf;

struct Violation {
  std::string path;
  std::string problem;
};

using MaybeViolation = std::optional<Violation>;

// The longest JournalConfig.spin_wait: a thread spins a core that long after each write.
constexpr absl::Duration kMaxJournalSpinWait = absl::Milliseconds(10);

MaybeViolation AtLeastOne(uint64_t value, const std::string& path) {
  if (value >= 1) return std::nullopt;
  return Violation{path, absl::StrCat("must be >= 1, got ", value)};
}

// Problems of a Duration message itself: not a valid Duration, or negative.
std::optional<std::string> CheckDuration(const google::protobuf::Duration& duration) {
  if (auto problem = ProtoDurationProblem(duration)) return problem;
  if (FromProtoDuration(duration) < absl::ZeroDuration()) {
    return absl::StrCat("must not be negative, got ",
                        absl::FormatDuration(FromProtoDuration(duration)));
  }
  return std::nullopt;
}

MaybeViolation CheckPositiveDuration(const google::protobuf::Duration& duration,
                                     const std::string& path) {
  if (auto problem = CheckDuration(duration)) return Violation{path, *problem};
  if (FromProtoDuration(duration) <= absl::ZeroDuration()) {
    return Violation{
        path, absl::StrCat("must be > 0, got ", absl::FormatDuration(FromProtoDuration(duration)))};
  }
  return std::nullopt;
}

MaybeViolation CheckNonNegativeDuration(const google::protobuf::Duration& duration,
                                        const std::string& path) {
  if (auto problem = CheckDuration(duration)) return Violation{path, *problem};
  return std::nullopt;
}

MaybeViolation CheckRetryPolicy(const v1::RetryPolicy& policy, const std::string& path) {
  if (auto v = AtLeastOne(policy.max_attempts(), FieldPath(path, "max_attempts"))) return v;
  if (auto v =
          CheckPositiveDuration(policy.initial_backoff(), FieldPath(path, "initial_backoff"))) {
    return v;
  }
  if (auto v = CheckNonNegativeDuration(policy.max_backoff(), FieldPath(path, "max_backoff"))) {
    return v;
  }
  if (FromProtoDuration(policy.max_backoff()) < FromProtoDuration(policy.initial_backoff())) {
    return Violation{
        FieldPath(path, "max_backoff"),
        absl::StrCat("must be >= initial_backoff (",
                     absl::FormatDuration(FromProtoDuration(policy.initial_backoff())), "), got ",
                     absl::FormatDuration(FromProtoDuration(policy.max_backoff())))};
  }
  const double multiplier = policy.backoff_multiplier();
  if (!(multiplier >= 1) || std::isinf(multiplier)) {
    return Violation{FieldPath(path, "backoff_multiplier"),
                     absl::StrCat("must be >= 1 and finite, got ", multiplier)};
  }
  const double jitter = policy.jitter();
  if (!(jitter >= 0 && jitter <= 1)) {
    return Violation{FieldPath(path, "jitter"),
                     absl::StrCat("must be between 0 and 1, got ", jitter)};
  }
  for (int i = 0; i < policy.retryable_codes_size(); ++i) {
    const std::string code_path = IndexPath(FieldPath(path, "retryable_codes"), i);
    absl::StatusOr<int> code = ParseStatusCodeName(policy.retryable_codes(i));
    if (!code.ok()) return Violation{code_path, std::string(code.status().message())};
    if (*code == 0) return Violation{code_path, "OK is not an error and cannot be retried"};
  }
  return std::nullopt;
}

MaybeViolation CheckService(const v1::ServiceConfig& service, const std::string& path) {
  if (auto problem = ServiceNameProblem(service.name())) {
    return Violation{FieldPath(path, "name"), *problem};
  }
  const std::string addresses_path = FieldPath(path, "addresses");
  if (service.addresses().empty()) {
    return Violation{addresses_path, "at least one \"host:port\" is required"};
  }
  for (int i = 0; i < service.addresses_size(); ++i) {
    if (auto problem = AddressProblem(service.addresses(i), PortUse::kDial)) {
      return Violation{IndexPath(addresses_path, i), *problem};
    }
  }
  if (service.has_retry()) {
    if (auto v = CheckRetryPolicy(service.retry(), FieldPath(path, "retry"))) return v;
  }
  // Sorted, so that the first problem reported does not depend on hash order.
  std::map<std::string, const v1::RetryPolicy*> method_retry;
  for (const auto& [method, policy] : service.method_retry()) method_retry[method] = &policy;
  for (const auto& [method, policy] : method_retry) {
    const std::string method_path = StringKeyPath(FieldPath(path, "method_retry"), method);
    if (auto problem = MethodProblem(method)) return Violation{method_path, *problem};
    if (auto v = CheckRetryPolicy(*policy, method_path)) return v;
  }
  if (service.has_attempt_timeout()) {
    if (auto v =
            CheckPositiveDuration(service.attempt_timeout(), FieldPath(path, "attempt_timeout"))) {
      return v;
    }
  }
  if (auto v = AtLeastOne(service.max_in_flight(), FieldPath(path, "max_in_flight"))) return v;
  for (int i = 0; i < service.subscriptions_size(); ++i) {
    const std::string subscription_path = IndexPath(FieldPath(path, "subscriptions"), i);
    const v1::Subscription& subscription = service.subscriptions(i);
    if (auto problem = TopicProblem(subscription.topic())) {
      return Violation{FieldPath(subscription_path, "topic"), *problem};
    }
    if (auto problem = MethodProblem(subscription.method())) {
      return Violation{FieldPath(subscription_path, "method"), *problem};
    }
  }
  return std::nullopt;
}

MaybeViolation FindViolation(const v1::SidecarConfig& config) {
  if (auto problem = AddressProblem(config.listen(), PortUse::kListen))
    return Violation{"listen", *problem};
  if (!config.admin_listen().empty()) {
    if (auto problem = AddressProblem(config.admin_listen(), PortUse::kListen)) {
      return Violation{"admin_listen", *problem};
    }
  }
  if (auto problem = ServiceNameProblem(config.name())) return Violation{"name", *problem};
  if (config.data_dir().empty()) return Violation{"data_dir", "is required"};
  if (config.max_payload_bytes() < 1 || config.max_payload_bytes() > kMaxPayloadBytesLimit) {
    return Violation{"max_payload_bytes",
                     absl::StrCat("must be between 1 and ", kMaxPayloadBytesLimit,
                                  " (64 MiB), got ", config.max_payload_bytes())};
  }
  if (auto v = CheckPositiveDuration(config.default_attempt_timeout(), "default_attempt_timeout")) {
    return v;
  }
  if (auto v = CheckPositiveDuration(config.default_call_timeout(), "default_call_timeout")) {
    return v;
  }
  if (auto v = CheckPositiveDuration(config.health_check_interval(), "health_check_interval")) {
    return v;
  }
  if (auto v = CheckNonNegativeDuration(config.drain_timeout(), "drain_timeout")) return v;
  if (auto v =
          CheckNonNegativeDuration(config.remove_unreachable_after(), "remove_unreachable_after")) {
    return v;
  }
  if (auto v = CheckNonNegativeDuration(config.result_retention(), "result_retention")) return v;
  const v1::JournalConfig::Durability durability = config.journal().durability();
  if (durability != v1::JournalConfig::FSYNC && durability != v1::JournalConfig::NONE) {
    const pb::EnumValueDescriptor* value =
        v1::JournalConfig::Durability_descriptor()->FindValueByNumber(durability);
    return Violation{"journal.durability",
                     absl::StrCat("must be FSYNC or NONE, got ",
                                  value != nullptr ? value->name() : absl::StrCat(durability))};
  }
  if (auto v = CheckNonNegativeDuration(config.journal().spin_wait(), "journal.spin_wait")) {
    return v;
  }
  if (const absl::Duration spin = FromProtoDuration(config.journal().spin_wait());
      spin > kMaxJournalSpinWait) {
    return Violation{
        "journal.spin_wait",
        absl::StrCat("must be at most ", absl::FormatDuration(kMaxJournalSpinWait),
                     " (a thread spins a CPU core that long), got ", absl::FormatDuration(spin))};
  }
  const v1::LimitsConfig& limits = config.limits();
  for (const auto& [path, value] :
       {std::pair{"limits.max_pending_calls", limits.max_pending_calls()},
        {"limits.max_in_flight_per_target", uint64_t{limits.max_in_flight_per_target()}},
        {"limits.max_sync_in_flight", uint64_t{limits.max_sync_in_flight()}},
        {"limits.max_watchers", uint64_t{limits.max_watchers()}},
        {"limits.max_instances_per_identity", uint64_t{limits.max_instances_per_identity()}},
        {"limits.max_registered_instances", uint64_t{limits.max_registered_instances()}}}) {
    if (auto v = AtLeastOne(value, path)) return v;
  }
  if (auto v = CheckRetryPolicy(config.default_retry(), "default_retry")) return v;
  if (auto v = CheckRetryPolicy(config.callback_retry(), "callback_retry")) return v;
  static constexpr absl::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};
  if (std::find(std::begin(kLogLevels), std::end(kLogLevels), config.log_level()) ==
      std::end(kLogLevels)) {
    return Violation{"log_level",
                     absl::StrCat("must be one of trace, debug, info, warn, error, got ",
                                  Quoted(config.log_level()))};
  }
  if (config.log_format() != "text" && config.log_format() != "json") {
    return Violation{"log_format",
                     absl::StrCat("must be text or json, got ", Quoted(config.log_format()))};
  }
  if (config.has_tracing()) {
    const v1::TracingConfig& tracing = config.tracing();
    if (!tracing.endpoint().empty()) {
      if (absl::StatusOr<tracing::HttpEndpoint> endpoint =
              tracing::ParseHttpEndpoint(tracing.endpoint(), "tracing.endpoint");
          !endpoint.ok()) {
        const absl::string_view message = endpoint.status().message();
        return Violation{"tracing.endpoint", std::string(message.substr(message.find(": ") + 2))};
      }
    }
    if (auto v = AtLeastOne(tracing.max_queued_spans(), "tracing.max_queued_spans")) return v;
    if (auto v = CheckPositiveDuration(tracing.flush_interval(), "tracing.flush_interval")) {
      return v;
    }
  }
  if (!(config.access_log_sample_rate() >= 0 && config.access_log_sample_rate() <= 1)) {
    return Violation{"access_log_sample_rate", absl::StrCat("must be between 0 and 1, got ",
                                                            config.access_log_sample_rate())};
  }
  std::map<std::string, int> first_topic;  // topic name -> index
  for (int i = 0; i < config.topics_size(); ++i) {
    const std::string path = IndexPath("topics", i);
    const v1::TopicConfig& topic = config.topics(i);
    if (auto problem = TopicProblem(topic.name()))
      return Violation{FieldPath(path, "name"), *problem};
    if (auto v = CheckNonNegativeDuration(topic.max_age(), FieldPath(path, "max_age"))) return v;
    const auto [first, inserted] = first_topic.emplace(topic.name(), i);
    if (!inserted) {
      return Violation{FieldPath(path, "name"),
                       absl::StrCat("duplicate topic ", Quoted(topic.name()), " (also topics[",
                                    first->second, "].name)")};
    }
  }
  if (auto v = security::FindSecurityViolation(config)) return Violation{v->path, v->problem};
  if (auto v = cluster::FindClusterViolation(config)) return Violation{v->path, v->problem};
  std::map<std::string, int> first_index;  // service name -> index
  for (int i = 0; i < config.services_size(); ++i) {
    const std::string path = IndexPath("services", i);
    if (auto v = CheckService(config.services(i), path)) return v;
    const auto [first, inserted] = first_index.emplace(config.services(i).name(), i);
    if (!inserted) {
      return Violation{FieldPath(path, "name"),
                       absl::StrCat("duplicate service name ", Quoted(config.services(i).name()),
                                    " (also services[", first->second, "].name)")};
    }
  }
  return std::nullopt;
}

}  // namespace

absl::Status ValidateConfig(const v1::SidecarConfig& config) {
  if (MaybeViolation v = FindViolation(config)) {
    return absl::InvalidArgumentError(absl::StrCat(v->path, ": ", v->problem));
  }
  return absl::OkStatus();
}

absl::Status ValidateConfig(const v1::SidecarConfig& config, const SourcePositions& positions) {
  if (MaybeViolation v = FindViolation(config)) return positions.Error(v->path, v->problem);
  return absl::OkStatus();
}

}  // namespace callmesh::sidecar
