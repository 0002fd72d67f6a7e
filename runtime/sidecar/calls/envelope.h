// Building the envelope of a durable call (InvokeAsync or Cast) from its request: validation with
// errors that name the field, the CID, the deadline, the context read from metadata, and the
// callback resolved by the rule of callback.h. What the journal stores and every attempt carries.
//
//   absl::StatusOr<v1::CallEnvelope> envelope = calls::BuildEnvelope(
//       calls::DurableRequest::Of(*request), context, limits, is_registered, clock.Now(),
//       [&] { return invoker.NextCid(); });
#pragma once

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "callmesh/v1/sidecar.pb.h"
#include "runtime/sidecar/calls/call_context.h"
#include "runtime/sidecar/calls/callback.h"

namespace callmesh::calls {

// Longest idempotency key accepted, in bytes.
inline constexpr size_t kMaxIdempotencyKeyBytes = 256;

// INVALID_ARGUMENT for an idempotency key over kMaxIdempotencyKeyBytes (a call's or a published
// event's).
absl::Status CheckIdempotencyKey(absl::string_view idempotency_key);

// The caller's part of a durable call, viewing the request it came in (which must outlive it).
struct DurableRequest {
  v1::CallKind kind = v1::CALL_KIND_INVOKE_ASYNC;
  absl::string_view service;
  absl::string_view method;
  absl::string_view payload;
  absl::string_view callback;  // always "" for a cast
  absl::string_view idempotency_key;
  // nullptr or zero = the default call timeout.
  const google::protobuf::Duration* timeout = nullptr;
  const google::protobuf::Map<std::string, std::string>* headers = nullptr;
  // As given in the request body ("" = none); checked here, merged with metadata in CallContext.
  absl::string_view source;
  absl::string_view parent_cid;

  static DurableRequest Of(const v1::InvokeAsyncRequest& request);
  static DurableRequest Of(const v1::CastRequest& request);
};

struct EnvelopeLimits {
  uint64_t max_payload_bytes = 4 << 20;
  // Deadline of a call whose request brings no timeout (SidecarConfig.default_call_timeout).
  absl::Duration default_call_timeout = absl::Hours(24);
};

// Checks `request` and builds its envelope: cid = next_cid() (called only for a valid request),
// source, parent_cid and traceparent from `context`, deadline = now + timeout, accepted_at = now.
// Errors: INVALID_ARGUMENT naming the field (service, method, callback, source, parent_cid,
// idempotency_key, a header, a negative timeout); RESOURCE_EXHAUSTED for a payload over the limit;
// NOT_FOUND for a service that is not registered.
absl::StatusOr<v1::CallEnvelope> BuildEnvelope(const DurableRequest& request,
                                               const CallContext& context,
                                               const EnvelopeLimits& limits,
                                               IsRegistered is_registered, absl::Time now,
                                               absl::FunctionRef<std::string()> next_cid);

// Absolute deadline of a call: the envelope's, else accepted_at (else `now`) + `fallback`.
absl::Time CallDeadline(const v1::CallEnvelope& envelope, absl::Duration fallback, absl::Time now);

}  // namespace callmesh::calls
