#include "runtime/sidecar/calls/envelope.h"

#include "absl/strings/str_cat.h"
#include "runtime/common/names.h"
#include "runtime/common/proto_time.h"
#include "runtime/common/status_macros.h"
#include "runtime/sidecar/invoke/invoker.h"

namespace callmesh::calls {

namespace {

// The fields InvokeAsyncRequest and CastRequest share.
template <typename Request>
DurableRequest CommonFields(const Request& request, v1::CallKind kind) {
  DurableRequest out;
  out.kind = kind;
  out.service = request.service();
  out.method = request.method();
  out.payload = request.payload();
  out.idempotency_key = request.idempotency_key();
  out.timeout = request.has_timeout() ? &request.timeout() : nullptr;
  out.headers = &request.headers();
  out.source = request.source();
  out.parent_cid = request.parent_cid();
  return out;
}

}  // namespace

absl::Status CheckIdempotencyKey(absl::string_view idempotency_key) {
  if (idempotency_key.size() <= kMaxIdempotencyKeyBytes) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("idempotency_key: longer than ", kMaxIdempotencyKeyBytes, " bytes"));
}

DurableRequest DurableRequest::Of(const v1::InvokeAsyncRequest& request) {
  DurableRequest out = CommonFields(request, v1::CALL_KIND_INVOKE_ASYNC);
  out.callback = request.callback();
  return out;
}

DurableRequest DurableRequest::Of(const v1::CastRequest& request) {
  return CommonFields(request, v1::CALL_KIND_CAST);
}

absl::StatusOr<v1::CallEnvelope> BuildEnvelope(const DurableRequest& request,
                                               const CallContext& context,
                                               const EnvelopeLimits& limits,
                                               IsRegistered is_registered, absl::Time now,
                                               absl::FunctionRef<std::string()> next_cid) {
  CALLMESH_RETURN_IF_ERROR(ValidateServiceName(request.service, "service"));
  CALLMESH_ASSIGN_OR_RETURN(std::string path, MethodPath(request.method, "method"));
  CALLMESH_RETURN_IF_ERROR(
      sidecar::CheckPayloadSize(request.payload.size(), limits.max_payload_bytes));
  if (!request.callback.empty()) {
    CALLMESH_RETURN_IF_ERROR(ValidateServiceName(request.callback, "callback"));
  }
  CALLMESH_RETURN_IF_ERROR(ValidateCallContext(request.source, request.parent_cid));
  CALLMESH_RETURN_IF_ERROR(CheckIdempotencyKey(request.idempotency_key));
  if (request.headers != nullptr) {
    for (const auto& [key, value] : *request.headers) {
      CALLMESH_RETURN_IF_ERROR(sidecar::ValidateHeader(key, value));
    }
  }
  absl::Duration call_timeout = limits.default_call_timeout;
  if (request.timeout != nullptr) {
    CALLMESH_ASSIGN_OR_RETURN(const absl::Duration given,
                              NonNegativeDurationFromProto(*request.timeout, "timeout"));
    if (given != absl::ZeroDuration()) call_timeout = given;
  }
  if (!is_registered(request.service)) {
    return absl::NotFoundError(absl::StrCat("service \"", request.service,
                                            "\" is not registered with this sidecar (neither in "
                                            "the config nor through RegisterService)"));
  }
  v1::CallEnvelope envelope;
  envelope.set_cid(next_cid());
  envelope.set_kind(request.kind);
  envelope.set_service(std::string(request.service));
  envelope.set_method(path.substr(1));
  envelope.set_payload(std::string(request.payload));
  envelope.set_source(context.source);
  envelope.set_callback(std::string(request.callback));
  // Resolved now as well as at completion: see callback.h.
  envelope.set_callback(ResolveCallback(envelope, is_registered));
  envelope.set_idempotency_key(std::string(request.idempotency_key));
  *envelope.mutable_deadline() = ToProtoTimestamp(now + call_timeout);
  if (request.headers != nullptr) {
    envelope.mutable_headers()->insert(request.headers->begin(), request.headers->end());
  }
  envelope.set_parent_cid(context.parent_cid);
  envelope.set_traceparent(context.traceparent);
  envelope.set_tracestate(context.tracestate);
  *envelope.mutable_accepted_at() = ToProtoTimestamp(now);
  return envelope;
}

absl::Time CallDeadline(const v1::CallEnvelope& envelope, absl::Duration fallback, absl::Time now) {
  const absl::Time deadline = FromProtoTimestamp(envelope.deadline(), absl::InfiniteFuture());
  if (deadline != absl::InfiniteFuture()) return deadline;
  return FromProtoTimestamp(envelope.accepted_at(), now) + fallback;
}

}  // namespace callmesh::calls
