#include "runtime/sidecar/server/sidecar_service.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "runtime/common/byte_buffers.h"
#include "runtime/common/grpc_status.h"
#include "runtime/common/metadata.h"
#include "runtime/common/names.h"
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/calls/call_context.h"
#include "runtime/sidecar/server/finish_now.h"

namespace callmesh::sidecar {

void TakeCallContext(calls::CallContext context, InvokeCall* call) {
  call->source = std::move(context.source);
  call->parent_cid = std::move(context.parent_cid);
  call->traceparent = std::move(context.traceparent);
  call->tracestate = std::move(context.tracestate);
  call->deadline = context.rpc_deadline;
}
namespace {

// Finishes a forwarded Invoke and cancels the outbound call if the caller goes away.
class InvokeReactor final : public grpc::ServerUnaryReactor {
 public:
  absl::Mutex mu;
  std::shared_ptr<ForwardedCall> call ABSL_GUARDED_BY(mu);
  bool cancelled ABSL_GUARDED_BY(mu) = false;

  void OnCancel() override {
    absl::MutexLock lock(&mu);
    cancelled = true;
    if (call != nullptr) call->Cancel();
  }
  void OnDone() override { delete this; }
  // OnDone only deletes and OnCancel only cancels the forwarded call; neither blocks, so gRPC may
  // run them on the thread that finished the RPC instead of handing them to its executor thread:
  // the executor's context switches per Invoke at one in flight went from a median of 1.70 to
  // 0.85 (bench/README.md, "The sync path"). gRPC 1.51 calls this hook internal
  // (grpcpp/support/server_callback.h); its own ServerContext::CompletionOp reactor overrides it
  // the same way. OnDone still never runs before Invoke has returned the reactor: the handler
  // holds a reference to the call until then.
  bool InternalInlineable() override { return true; }
};

}  // namespace

SyncCallRecord::SyncCallRecord(InvokeCall* call, bool access_logged, tracing::CallTracer* tracer)
    : started_(absl::Now()), tracer_(tracer) {
  if (access_logged) {
    access_ = logging::LogFields{.cid = call->cid,
                                 .source = call->source,
                                 .service = call->service,
                                 .method = call->method_path};
  }
  if (tracer_ != nullptr) {
    span_ = tracer_->StartSync(call->traceparent, call->cid, call->service, call->method_path,
                               call->source);
    if (call->traceparent.empty()) call->tracestate.clear();
    call->traceparent = span_->traceparent;
  }
}

void SyncCallRecord::End(const grpc::Status& status) {
  if (access_.has_value()) {
    access_->code = static_cast<int>(status.error_code());
    access_->duration = absl::Now() - started_;
    logging::AccessLog::Write(*access_);
  }
  if (span_.has_value()) {
    tracer_->EndSync(*std::move(span_), status.error_code(), status.error_message());
    span_.reset();
  }
}

std::unique_ptr<SyncCallRecord> SyncCalls::Record(InvokeCall* call) {
  const bool access_logged = access_log_ != nullptr && access_log_->Sampled();
  if (!access_logged && tracer_ == nullptr) return nullptr;
  return std::make_unique<SyncCallRecord>(call, access_logged, tracer_);
}

absl::Status SyncCalls::Admit() {
  if (draining_.load()) {
    return absl::UnavailableError(
        "callmeshd is shutting down (draining the calls in flight); call another instance");
  }
  if (in_flight_.fetch_add(1, std::memory_order_relaxed) >= max_in_flight_) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        absl::StrCat("callmeshd is forwarding ", max_in_flight_,
                     " synchronous calls already (limits.max_sync_in_flight); retry later"));
  }
  return absl::OkStatus();
}

SidecarService::SidecarService(Options options, Registry* registry, Invoker* invoker,
                               SyncCalls* sync_calls, Async async)
    : options_(std::move(options)),
      gatekeeper_(options_.gatekeeper != nullptr ? options_.gatekeeper
                                                 : security::Gatekeeper::Open()),
      registry_(registry),
      invoker_(invoker),
      sync_calls_(sync_calls),
      async_(async),
      clock_(async.runner->clock()),
      started_at_(clock_->Now()) {}

grpc::ServerUnaryReactor* SidecarService::Invoke(grpc::CallbackServerContext* context,
                                                 const v1::InvokeRequest* request,
                                                 v1::InvokeResponse* response) {
  absl::StatusOr<security::Caller> caller = gatekeeper_->Authenticate(*context);
  if (!caller.ok()) {
    sync_calls_->Count(false);
    return FinishNow(context, ToGrpcStatus(caller.status()));
  }
  InvokeCall call;
  call.service = request->service();
  absl::Status valid = ValidateServiceName(request->service(), "service");
  absl::StatusOr<std::string> path = MethodPath(request->method(), "method");
  if (valid.ok() && !path.ok()) valid = path.status();
  if (valid.ok()) valid = ValidateCallContext(request->source(), request->parent_cid());
  absl::StatusOr<std::string> source = gatekeeper_->SourceOf(*caller, request->source(), *context);
  if (valid.ok() && !source.ok()) valid = source.status();
  if (valid.ok()) valid = gatekeeper_->CheckCall(*caller, request->service(), *path);
  absl::StatusOr<absl::Duration> timeout =
      NonNegativeDurationFromProto(request->timeout(), "timeout");
  if (valid.ok() && !timeout.ok()) valid = timeout.status();
  if (!valid.ok()) {
    sync_calls_->Count(false);
    return FinishNow(context, ToGrpcStatus(valid));
  }
  if (absl::Status admitted = sync_calls_->Admit(); !admitted.ok()) {
    sync_calls_->Count(false);
    return FinishNow(context, ToGrpcStatus(admitted));
  }
  call.method_path = *std::move(path);
  calls::CallContext call_context =
      calls::ReadCallContext(*context, *source, request->parent_cid(), options_.name, *clock_);
  TakeCallContext(std::move(call_context), &call);
  // Zero, like unset, means no timeout of its own (as for InvokeAsync and Cast; see sidecar.proto).
  if (*timeout != absl::ZeroDuration()) {
    call.deadline = std::min(call.deadline, clock_->Now() + *timeout);
  }
  for (const auto& [key, value] : request->headers()) call.headers.emplace_back(key, value);

  // The CID is announced before the call starts: its reply may come back on another thread before
  // Start returns. gRPC cannot run OnDone before this handler returns the reactor, so using the
  // reactor below is safe even then.
  call.cid = invoker_->NextCid();
  response->set_cid(call.cid);
  // On failure the reply has no body, so the CID also travels in the trailers.
  context->AddTrailingMetadata(kCidMetadata, call.cid);
  auto* reactor = new InvokeReactor();
  std::shared_ptr<SyncCallRecord> record = sync_calls_->Record(&call);
  auto started = invoker_->Start(std::move(call), StringToByteBuffer(request->payload()),
                                 [reactor, response, sync_calls = sync_calls_, record](
                                     const grpc::Status& status, grpc::ByteBuffer* reply) {
                                   if (status.ok()) {
                                     response->set_payload(ByteBufferToString(*reply));
                                   }
                                   sync_calls->Finish(status.ok());
                                   if (record != nullptr) record->End(status);
                                   reactor->Finish(status);
                                 });
  if (!started.ok()) {
    sync_calls_->Finish(false);
    const grpc::Status status = ToGrpcStatus(started.status());
    if (record != nullptr) record->End(status);
    reactor->Finish(status);
    return reactor;
  }
  absl::MutexLock lock(&reactor->mu);
  reactor->call = *std::move(started);
  if (reactor->cancelled) reactor->call->Cancel();
  return reactor;
}

grpc::ServerUnaryReactor* SidecarService::RegisterService(grpc::CallbackServerContext* context,
                                                          const v1::RegisterServiceRequest* request,
                                                          v1::RegisterServiceResponse*) {
  absl::StatusOr<security::Caller> caller = gatekeeper_->Authenticate(*context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  // Malformed names and addresses are the registry's to name; the policy sees only valid ones.
  if (absl::Status valid = ValidateServiceName(request->name(), "name"); !valid.ok()) {
    return FinishNow(context, ToGrpcStatus(valid));
  }
  if (absl::Status valid = ValidateAddress(request->address(), "address"); !valid.ok()) {
    return FinishNow(context, ToGrpcStatus(valid));
  }
  // Subscriptions are durable writes: checked first (a bad one registers nothing), then made on a
  // worker, which may wait for the fsync.
  if (absl::Status s = ValidateSubscriptions(*request); !s.ok()) {
    return FinishNow(context, ToGrpcStatus(s));
  }
  absl::StatusOr<bool> counted =
      gatekeeper_->AdmitInstance(*caller, request->name(), request->address());
  if (!counted.ok()) return FinishNow(context, ToGrpcStatus(counted.status()));
  absl::Status registered = registry_->Register(*request);
  if (!registered.ok() && *counted) gatekeeper_->InstanceGone(request->name(), request->address());
  if (!registered.ok() || request->subscriptions_size() == 0) {
    return FinishNow(context, ToGrpcStatus(registered));
  }
  return FinishOnWorker(context, [this, request]() -> grpc::Status {
    for (const v1::Subscription& subscription : request->subscriptions()) {
      if (absl::Status s = Subscribe(request->name(), subscription); !s.ok()) {
        return ToGrpcStatus(s);
      }
    }
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* SidecarService::DeregisterService(
    grpc::CallbackServerContext* context, const v1::DeregisterServiceRequest* request,
    v1::DeregisterServiceResponse*) {
  absl::StatusOr<security::Caller> caller = gatekeeper_->Authenticate(*context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  if (absl::Status allowed =
          gatekeeper_->CheckDeregister(*caller, request->name(), request->address());
      !allowed.ok()) {
    return FinishNow(context, ToGrpcStatus(allowed));
  }
  absl::Status removed = registry_->Deregister(request->name(), request->address());
  if (removed.ok()) gatekeeper_->InstanceGone(request->name(), request->address());
  return FinishNow(context, ToGrpcStatus(removed));
}

grpc::ServerUnaryReactor* SidecarService::ListServices(grpc::CallbackServerContext* context,
                                                       const v1::ListServicesRequest*,
                                                       v1::ListServicesResponse* response) {
  absl::StatusOr<security::Caller> caller = gatekeeper_->Authenticate(*context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  for (auto& service : registry_->List()) *response->add_services() = std::move(service);
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* SidecarService::GetStats(grpc::CallbackServerContext* context,
                                                   const v1::GetStatsRequest*,
                                                   v1::SidecarStats* response) {
  absl::StatusOr<security::Caller> caller = gatekeeper_->Authenticate(*context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  *response->mutable_started_at() = ToProtoTimestamp(started_at_);
  response->set_invokes_ok(sync_calls_->ok());
  response->set_invokes_failed(sync_calls_->failed());
  response->set_async_accepted(async_accepted_.load());
  response->set_async_rejected(async_rejected_.load());
  response->set_pending_calls(async_.store->pending_count());
  response->set_running_calls(async_.dispatcher->active());
  response->set_completions_delivered(async_.store->stats().deliveries);
  response->set_dead_letters(async_.store->dead_letter_count());
  response->set_journal_healthy(async_.store->healthy());
  if (options_.cluster_state) response->set_cluster(options_.cluster_state());
  if (async_.topics != nullptr) {
    for (v1::SubscriptionInfo& sub : async_.topics->Subscriptions()) {
      sub.set_in_flight(async_.fan_out->InFlight(sub.topic(), sub.service()));
      *response->add_subscriptions() = std::move(sub);
    }
    response->set_events_published(async_.topics->events_published());
    response->set_events_delivered(async_.fan_out->delivered());
    response->set_event_dead_letters(async_.topics->dead_letter_count());
  }
  return FinishNow(context, grpc::Status::OK);
}

}  // namespace callmesh::sidecar
