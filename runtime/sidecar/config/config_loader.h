// Loading of `callmeshd`'s configuration (callmesh.v1.SidecarConfig) from YAML or JSON files.
//
//   absl::StatusOr<v1::SidecarConfig> config = LoadAndValidateConfig("/etc/callmesh/sidecar.yaml");
//   if (!config.ok()) return Fail(config.status());  // "sidecar.yaml:7:5: services[0]...: ..."
//
// The mapping from YAML onto the messages is driven by protobuf reflection, so a field added to
// config.proto is accepted from files without changes here:
//
//   - A YAML mapping fills a message. Keys are the proto field names (`max_attempts`) or their
//     lowerCamelCase JSON names (`maxAttempts`), so JSON written by protobuf's own printer loads.
//     An unknown key is an error that suggests the closest valid key or lists the valid ones; a
//     key given twice (also as both spellings) is an error.
//   - Scalars: strings; bools (`true`/`false`, any case); integers (decimal, or an integral number
//     such as `1e6`; quoted numbers are accepted, as in protobuf's JSON mapping, which quotes
//     64-bit integers); fractions, negatives for unsigned fields and out-of-range values are
//     errors; doubles (also `.inf`, `-.inf`, `.nan`, `Infinity`, `NaN`); enums by value name in
//     any case ("fsync") or by number; bytes as base64.
//   - Repeated fields take YAML sequences (a scalar where a sequence is expected is an error);
//     map<K, V> fields take YAML mappings; nested messages take nested mappings.
//   - google.protobuf.Duration takes "250ms", "5s", "1m30s", "1.5h" (absl::ParseDuration units
//     ns, us, ms, s, m, h) or a bare number of seconds; negative durations are errors.
//   - A null or empty value (`key:`, `key: ~`, `key: null`) leaves the field unset. A null map
//     value adds the key with the default value; a null list element is an error.
//
// Every parse error is INVALID_ARGUMENT with the message
// "<origin>:<line>:<column>: <key path>: <problem>", e.g.
// "sidecar.yaml:12:23: services[0].method_retry[\"pkg.Svc/M\"].jitter: expected a number, got
// \"high\"". Lines and columns are 1-based. YAML syntax errors read
// "<origin>:<line>:<column>: <yaml-cpp's message>". Errors about the document as a whole (a top
// level that is not a mapping, several documents) carry no key path.
//
// Thread-safety: every function here is thread-safe; none keeps state between calls. Concurrent
// calls may share nothing but their arguments (ApplyConfigDefaults mutates `*config`, so callers
// must not share that message with other threads during the call). No function throws.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "callmesh/v1/config.pb.h"

namespace callmesh::sidecar {

// Parses YAML (or JSON, which YAML 1.2 parsers accept) `text` onto a SidecarConfig, following the
// mapping rules above. `origin` names the source in error messages (usually the file path).
// Empty text (or only comments) is a valid empty config. Defaults are NOT applied and semantics
// are NOT checked: see ApplyConfigDefaults and ValidateConfig.
// Errors: INVALID_ARGUMENT for a syntax error, a top level that is not a mapping, more than one
// YAML document, an unknown or repeated key, or a value of the wrong type or out of range.
absl::StatusOr<callmesh::v1::SidecarConfig> ParseConfig(absl::string_view text,
                                                        absl::string_view origin);

// Reads the file at `path` and parses it with ParseConfig (origin = `path`).
// Errors: those of ParseConfig; a file that cannot be read gives the status code matching errno
// (NOT_FOUND for a missing file, PERMISSION_DENIED, FAILED_PRECONDITION for a directory, ...)
// with a message naming `path` and the errno text; a file larger than 16 MiB is
// INVALID_ARGUMENT.
absl::StatusOr<callmesh::v1::SidecarConfig> LoadConfigFile(const std::string& path);

// Fills every unset field of `*config` with the default documented in config.proto:
//   listen "127.0.0.1:4770", name "app", data_dir "./callmesh-data", max_payload_bytes 4 MiB,
//   default_attempt_timeout 30s, default_call_timeout 24h, health_check_interval 2s,
//   drain_timeout 10s, result_retention 24h, log_level "info", journal.durability FSYNC,
//   limits {max_pending_calls 1000000, max_in_flight_per_target 64, max_watchers 1024,
//   max_sync_in_flight 1024},
//   default_retry and callback_retry (see below).
// Per service: max_in_flight defaults to limits.max_in_flight_per_target and attempt_timeout to
// default_attempt_timeout (both after the defaults above).
// Retry policies: default_retry and callback_retry are always filled. A service's `retry` that is
// unset stays unset, which means "use default_retry"; a method with no `method_retry` entry uses
// its service's policy. A policy that is present (default_retry, callback_retry, a service's
// `retry`, a `method_retry` value) has each of its unset fields set to RetryPolicy's documented
// default, not inherited from another policy: max_attempts 5, initial_backoff 100ms, max_backoff
// 30s, backoff_multiplier 2.0, jitter 0.2, retryable_codes [UNAVAILABLE, RESOURCE_EXHAUSTED,
// ABORTED].
// "Unset" means: for messages (durations, policies), not present; for proto3 scalars without
// presence, the zero value. Consequence: `jitter: 0` cannot be told from an absent jitter and
// becomes 0.2 (write a tiny value such as 1e-9 to disable jitter), and an empty retryable_codes
// list becomes the default list (use max_attempts 1 for no retries). If config.proto declares such
// a field `optional`, its presence is honoured automatically.
// Thread-safety: mutates only `*config`. Never fails; idempotent.
void ApplyConfigDefaults(callmesh::v1::SidecarConfig* config);

// Checks the semantics of a config, normally after ApplyConfigDefaults (without defaults, unset
// required values fail). Returns OK or INVALID_ARGUMENT for the first problem found, with the
// message "<key path>: <problem>", e.g.
// "services[1].retry.backoff_multiplier: must be >= 1, got 0.5". Rules:
//   - listen: "host:port" with port 0-65535 (IPv6 hosts in brackets, "[::1]:4770").
//   - name and services[i].name: 1-128 characters of [A-Za-z0-9._-]; service names unique (the
//     error names both indexes).
//   - data_dir: non-empty. max_payload_bytes: 1 to 64 MiB.
//   - services[i].addresses: non-empty; each "host:port" with port 1-65535.
//   - retry policies (default_retry, callback_retry, services[i].retry if set, method_retry
//     values): max_attempts >= 1, initial_backoff > 0, max_backoff >= initial_backoff,
//     backoff_multiplier >= 1 (finite), jitter in [0, 1], retryable_codes known gRPC code names
//     (see ParseStatusCodeName) other than OK.
//   - method_retry keys and subscriptions[j].method: "package.Service/Method" (a leading '/' is
//     accepted; the package is optional). subscriptions[j].topic: non-empty.
//   - default_attempt_timeout, default_call_timeout, health_check_interval and
//     services[i].attempt_timeout (if set): > 0. drain_timeout, result_retention: >= 0.
//   - log_level: one of trace, debug, info, warn, error. journal.durability: FSYNC or NONE.
//   - limits.*, services[i].max_in_flight: >= 1.
// Thread-safety: reads `config` only.
absl::Status ValidateConfig(const callmesh::v1::SidecarConfig& config);

// LoadConfigFile + ApplyConfigDefaults + ValidateConfig. Validation errors are prefixed with
// the path and, when the offending value (or its closest enclosing key) appears in the file, its
// line and column: "<path>:<line>:<column>: <key path>: <problem>" (else "<path>: ...").
// Errors: those of LoadConfigFile and ValidateConfig.
absl::StatusOr<callmesh::v1::SidecarConfig> LoadAndValidateConfig(const std::string& path);

// Parses a gRPC status code name to its number: "UNAVAILABLE" -> 14, in any case ("unavailable").
// The 17 names are those of grpc::StatusCode / absl::StatusCode (OK, CANCELLED, UNKNOWN,
// INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED,
// RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, UNIMPLEMENTED, INTERNAL,
// UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED). Errors: INVALID_ARGUMENT for any other text.
// Thread-safety: thread-safe.
absl::StatusOr<int> ParseStatusCodeName(absl::string_view name);

}  // namespace callmesh::sidecar
