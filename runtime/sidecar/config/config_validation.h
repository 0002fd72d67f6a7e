// The semantic rules of callmeshd's configuration, checked after defaults are applied. Names and
// addresses follow the one grammar of runtime/common/names.h; durations the checks of
// runtime/common/proto_time.h; status code names runtime/common/status_code_names.h.
//
//   if (absl::Status s = ValidateConfig(config, positions); !s.ok()) return s;
//   // "sidecar.yaml:7:27: services[1].retry.backoff_multiplier: must be >= 1 and finite, got 0.5"
//
// Thread-safety: thread-safe; reads its arguments only.
#pragma once

#include "absl/status/status.h"
#include "callmesh/v1/config.pb.h"
#include "runtime/sidecar/config/source_positions.h"

namespace callmesh::sidecar {

// Checks the semantics of a config, normally after ApplyConfigDefaults (without defaults, unset
// required values fail). Returns OK or INVALID_ARGUMENT for the first problem found, with the
// message "<key path>: <problem>", e.g.
// "services[1].retry.backoff_multiplier: must be >= 1, got 0.5". Rules:
//   - listen: an address to listen on, port 0-65535 (see runtime/common/names.h).
//   - name and services[i].name: mesh service names; service names unique (the error names both
//     indexes).
//   - data_dir: non-empty. max_payload_bytes: 1 to 64 MiB.
//   - services[i].addresses: non-empty; each an address to dial, port 1-65535.
//   - retry policies (default_retry, callback_retry, services[i].retry if set, method_retry
//     values): max_attempts >= 1, initial_backoff > 0, max_backoff >= initial_backoff,
//     backoff_multiplier >= 1 (finite), jitter in [0, 1], retryable_codes known gRPC code names
//     (see ParseStatusCodeName) other than OK.
//   - method_retry keys and subscriptions[j].method: gRPC methods "package.Service/Method" (a
//     leading '/' is accepted; the package is optional). subscriptions[j].topic: a topic.
//   - default_attempt_timeout, default_call_timeout, health_check_interval and
//     services[i].attempt_timeout (if set): > 0. drain_timeout, result_retention: >= 0. Every
//     Duration must be valid (|nanos| < 1e9, seconds and nanos of one sign, within +-10,000 years).
//   - log_level: one of trace, debug, info, warn, error. journal.durability: FSYNC or NONE.
//   - limits.*, services[i].max_in_flight: >= 1 (limits.max_watchers_per_identity: 0 = default).
//   - security, and a non-loopback listen: runtime/sidecar/security/security_config_check.h.
absl::Status ValidateConfig(const callmesh::v1::SidecarConfig& config);

// The same rules; the error is placed by `positions`: "<origin>:<line>:<column>: <key path>:
// <problem>", with the position of the offending value or of its closest enclosing key that was
// written (see SourcePositions::Error).
absl::Status ValidateConfig(const callmesh::v1::SidecarConfig& config,
                            const SourcePositions& positions);

}  // namespace callmesh::sidecar
