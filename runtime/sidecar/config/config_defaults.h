// The defaults of callmeshd's configuration, written once, as YAML, in config_defaults.cc
// (kSidecarDefaults and kRetryPolicyDefaults), and filled into a loaded config here.
//
//   v1::SidecarConfig config = ...;   // as parsed
//   ApplyConfigDefaults(&config);     // every unset field now has its default
//
// Thread-safety: thread-safe; mutates only its argument.
#pragma once

#include "callmesh/v1/config.pb.h"

namespace callmesh::sidecar {

// Fills every unset field of `*config` with its default:
//   - the top-level fields, journal and limits from kSidecarDefaults;
//   - per service: max_in_flight from limits.max_in_flight_per_target and attempt_timeout from
//     default_attempt_timeout (both after the defaults above);
//   - retry policies: default_retry and callback_retry are always filled. A service's `retry`
//     that is unset stays unset, which means "use default_retry"; a method with no
//     `method_retry` entry uses its service's policy. A policy that is present has each of its
//     unset fields set from kRetryPolicyDefaults, not inherited from another policy.
// "Unset" means: for messages (durations, policies), not present; for scalars with presence
// (`optional`), not present; for proto3 scalars without presence, the zero value; for lists, empty.
// A present Duration is kept as it is, even 0s. Consequence: `jitter: 0` cannot be told from an
// absent jitter and gets the default (write a tiny value such as 1e-9 to disable jitter), and an
// empty retryable_codes list becomes the default list (use max_attempts 1 for no retries). Never
// fails; idempotent.
void ApplyConfigDefaults(callmesh::v1::SidecarConfig* config);

}  // namespace callmesh::sidecar
