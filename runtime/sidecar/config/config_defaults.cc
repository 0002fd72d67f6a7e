#include "runtime/sidecar/config/config_defaults.h"

#include <cstdlib>
#include <iostream>
#include <memory>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "runtime/sidecar/cluster/cluster_config.h"
#include "runtime/sidecar/config/source_positions.h"
#include "runtime/sidecar/config/yaml_to_proto.h"

namespace callmesh::sidecar {
namespace {

namespace pb = google::protobuf;

// Every default of SidecarConfig, as a user would write it. Services have no defaults of their
// own beyond those ApplyConfigDefaults derives from these.
constexpr char kSidecarDefaults[] = R"(
listen: 127.0.0.1:4770
name: app
data_dir: ./callmesh-data
max_payload_bytes: 4194304        # 4 MiB
default_attempt_timeout: 30s
default_call_timeout: 24h
health_check_interval: 2s
remove_unreachable_after: 5m
drain_timeout: 10s
result_retention: 24h
log_level: info
log_format: text
callback_retry:
  max_attempts: 12                # about 2 min (100 ms doubling to 30 s) before a dead letter
tracing:
  max_queued_spans: 4096
  flush_interval: 1s
journal:
  durability: FSYNC
  spin_wait: 300us
limits:
  max_pending_calls: 1000000
  max_in_flight_per_target: 64
  max_watchers: 1024
  max_sync_in_flight: 1024
  max_instances_per_identity: 16
  max_registered_instances: 1024
)";

// The defaults of every RetryPolicy that is present.
constexpr char kRetryPolicyDefaults[] = R"(
max_attempts: 5
initial_backoff: 100ms
max_backoff: 30s
backoff_multiplier: 2.0
jitter: 0.2
retryable_codes: [UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED]
)";

template <typename Message>
Message ParseDefaults(const char* text, const char* origin) {
  Message message;
  SourcePositions positions(origin);
  if (absl::Status parsed = YamlToProto(text, &message, &positions); !parsed.ok()) {
    // The defaults are part of the program: a broken one is a bug, found by every test.
    std::cerr << "callmesh: invalid built-in defaults: " << parsed << "\n";
    std::abort();
  }
  return message;
}

const v1::SidecarConfig& SidecarDefaults() {
  static const v1::SidecarConfig* defaults =
      new v1::SidecarConfig(ParseDefaults<v1::SidecarConfig>(kSidecarDefaults, "<defaults>"));
  return *defaults;
}

const v1::RetryPolicy& RetryPolicyDefaults() {
  static const v1::RetryPolicy* defaults =
      new v1::RetryPolicy(ParseDefaults<v1::RetryPolicy>(kRetryPolicyDefaults, "<retry defaults>"));
  return *defaults;
}

// A message whose value counts as a whole (a Duration): present means set, even if zero.
bool IsAtomic(const pb::Descriptor* type) { return type->file()->package() == "google.protobuf"; }

// Sets each field of `*target` that is unset (see ApplyConfigDefaults) and set in `defaults`,
// recursing into messages present in both (Durations excepted).
void FillUnset(const pb::Message& defaults, pb::Message* target) {
  const pb::Reflection* reflection = target->GetReflection();
  const pb::Descriptor* type = target->GetDescriptor();
  // Each field is moved from here at most once.
  std::unique_ptr<pb::Message> scratch(defaults.New());
  scratch->CopyFrom(defaults);
  for (int i = 0; i < type->field_count(); ++i) {
    const pb::FieldDescriptor* field = type->field(i);
    const auto is_set = [&](const pb::Message& message) {
      return field->is_repeated() ? reflection->FieldSize(message, field) > 0
                                  : reflection->HasField(message, field);
    };
    if (!is_set(defaults)) continue;
    if (!is_set(*target)) {
      reflection->SwapFields(scratch.get(), target, {field});
    } else if (!field->is_repeated() && field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE &&
               !IsAtomic(field->message_type())) {
      FillUnset(reflection->GetMessage(defaults, field), reflection->MutableMessage(target, field));
    }
  }
}

}  // namespace

void ApplyConfigDefaults(v1::SidecarConfig* config) {
  FillUnset(SidecarDefaults(), config);
  FillUnset(RetryPolicyDefaults(), config->mutable_default_retry());
  FillUnset(RetryPolicyDefaults(), config->mutable_callback_retry());
  if (config->has_cluster()) cluster::ApplyClusterDefaults(config->mutable_cluster());
  for (v1::ServiceConfig& service : *config->mutable_services()) {
    if (service.max_in_flight() == 0) {
      service.set_max_in_flight(config->limits().max_in_flight_per_target());
    }
    if (!service.has_attempt_timeout()) {
      *service.mutable_attempt_timeout() = config->default_attempt_timeout();
    }
    // An unset `retry` means "use default_retry": leave it unset.
    if (service.has_retry()) FillUnset(RetryPolicyDefaults(), service.mutable_retry());
    for (auto& [method, policy] : *service.mutable_method_retry()) {
      FillUnset(RetryPolicyDefaults(), &policy);
    }
  }
}

}  // namespace callmesh::sidecar
