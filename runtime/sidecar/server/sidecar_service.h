// The `callmesh.v1.Sidecar` API, served with gRPC's callback API so no thread blocks while a call
// is forwarded or journaled. Synchronous Invoke and the registry RPCs are in sidecar_service.cc;
// the durable asynchronous RPCs (InvokeAsync, Cast, GetCall, WaitCall, ListCalls, CancelCall,
// WatchCompletions, dead letters) in async_rpcs.cc, InvokeAsyncStream in invoke_async_stream.cc;
// publish/subscribe in pubsub_rpcs.cc. The rules of a call's life (envelope, callback, states)
// are runtime/sidecar/calls.
//
// No gRPC callback thread waits for the disk: an RPC that must wait for a store write (CancelCall,
// RedriveDeadLetter) or for a completion (WaitCall) hands the work to the TaskRunner or the
// store's done callback and finishes its reactor from there. Point reads (GetCall, ListCalls)
// run inline.
//
// Thread-safe; everything passed to the constructor must outlive the service.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "runtime/common/clock.h"
#include "runtime/sidecar/calls/call_context.h"
#include "runtime/sidecar/calls/envelope.h"
#include "runtime/sidecar/calls/trace_context.h"
#include "runtime/sidecar/delivery/callback_deliverer.h"
#include "runtime/sidecar/delivery/completion_hub.h"
#include "runtime/sidecar/dispatch/dispatcher.h"
#include "runtime/sidecar/dispatch/retry_policy.h"
#include "runtime/sidecar/dispatch/task_runner.h"
#include "runtime/sidecar/invoke/invoker.h"
#include "runtime/sidecar/logging/access_log.h"
#include "runtime/sidecar/pubsub/event_fan_out.h"
#include "runtime/sidecar/pubsub/topic_log.h"
#include "runtime/sidecar/registry/registry.h"
#include "runtime/sidecar/security/gatekeeper.h"
#include "runtime/sidecar/store/call_store.h"
#include "runtime/sidecar/tracing/call_tracer.h"

namespace callmesh::sidecar {

// What is kept of one synchronous call for when it ends: its access-log line (when sampled) and
// its span (when tracing). Not thread-safe: End once.
class SyncCallRecord {
 public:
  // Takes the call's fields; with a span, the span becomes `call`'s trace context (the target
  // sees it as its parent). `tracer` may be null.
  SyncCallRecord(InvokeCall* call, bool access_logged, tracing::CallTracer* tracer);
  void End(const grpc::Status& status);

 private:
  std::optional<logging::LogFields> access_;
  const absl::Time started_;
  tracing::CallTracer* const tracer_;
  std::optional<tracing::CallTracer::Open> span_;
};

// The call context read from an incoming RPC (source, parent CID, trace context, the caller's
// deadline), moved onto the sync call that forwards it: one place for Sidecar.Invoke and both
// kinds of the proxy.
void TakeCallContext(calls::CallContext context, InvokeCall* call);

// Synchronous calls, shared by Sidecar.Invoke and the transparent proxy: outcome counters, and
// the bound on calls forwarded at once (limits.max_sync_in_flight). Past the bound a call is
// refused at once with RESOURCE_EXHAUSTED: under overload the sidecar answers quickly instead of
// absorbing the excess into unbounded queues and memory (RELIABILITY.md #7). Thread-safe.
class SyncCalls {
 public:
  // `access_log` (not owned; may be nullptr = no access logs) samples the calls to log; `tracer`
  // (not owned; may be nullptr = no spans) records their spans.
  explicit SyncCalls(uint32_t max_in_flight, logging::AccessLog* access_log = nullptr,
                     tracing::CallTracer* tracer = nullptr)
      : max_in_flight_(max_in_flight), access_log_(access_log), tracer_(tracer) {}

  // Admits one call, which must later be ended with Finish; or RESOURCE_EXHAUSTED naming the
  // limit, or UNAVAILABLE once draining (count the refusal with Count(false)).
  absl::Status Admit();
  // From now on Admit refuses with UNAVAILABLE: the sidecar is shutting down and lets the calls
  // in flight finish.
  void StartDraining() { draining_.store(true); }
  // Calls admitted and not finished yet.
  uint32_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  // Ends an admitted call and counts its outcome.
  void Finish(bool success) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    Count(success);
  }
  // Counts a call that ended before it was admitted (e.g. invalid input).
  void Count(bool success) { (success ? ok_ : failed_).fetch_add(1, std::memory_order_relaxed); }

  uint64_t ok() const { return ok_.load(); }
  uint64_t failed() const { return failed_.load(); }

  // What to record of `call` (its cid set, not started yet) when it ends; null when nothing is
  // (not sampled for the access log, no tracing). May set `call`'s traceparent (SyncCallRecord).
  std::unique_ptr<SyncCallRecord> Record(InvokeCall* call);

 private:
  const uint32_t max_in_flight_;
  logging::AccessLog* const access_log_;
  tracing::CallTracer* const tracer_;
  std::atomic<uint32_t> in_flight_{0};
  std::atomic<bool> draining_{false};
  std::atomic<uint64_t> ok_{0};
  std::atomic<uint64_t> failed_{0};
};

class SidecarService final : public v1::Sidecar::CallbackService {
 public:
  struct Options {
    // Mesh name of the local app: the source of calls that name none.
    std::string name = "app";
    // Authentication, policy and per-identity quotas of every RPC (not owned); nullptr =
    // Gatekeeper::Open(): no authentication, everything allowed.
    security::Gatekeeper* gatekeeper = nullptr;
    // Cluster mode: one line on the cluster for GetStats (SidecarStats.cluster); empty = single
    // host.
    std::function<std::string()> cluster_state;
  };

  // The durable side: store, dispatcher, deliverer, hub, worker pool (whose Clock is the
  // service's time) and policies.
  struct Async {
    CallStore* store = nullptr;
    Dispatcher* dispatcher = nullptr;
    CallbackDeliverer* deliverer = nullptr;
    CompletionHub* hub = nullptr;
    TaskRunner* runner = nullptr;
    const DispatchPolicies* policies = nullptr;
    uint64_t max_payload_bytes = 4 << 20;
    uint32_t max_watchers = 1024;
    // Publish/subscribe (pubsub_rpcs.cc); nullptr = its RPCs answer UNIMPLEMENTED.
    pubsub::TopicLog* topics = nullptr;
    pubsub::EventFanOut* fan_out = nullptr;
    // Cluster mode: told of each subscription made (RegisterService) and removed (Unsubscribe)
    // through this sidecar, to share it with the other sidecars; empty = single host.
    std::function<void(const std::string& service, const v1::Subscription&)> on_subscribed;
    std::function<void(const std::string& topic, const std::string& service)> on_unsubscribed;
  };

  SidecarService(Options options, Registry* registry, Invoker* invoker, SyncCalls* sync_calls,
                 Async async);

  // InvokeAsync and Cast calls accepted (durable) and refused, and WatchCompletions streams open;
  // for the metrics.
  uint64_t async_accepted() const { return async_accepted_.load(std::memory_order_relaxed); }
  uint64_t async_rejected() const { return async_rejected_.load(std::memory_order_relaxed); }
  uint32_t watchers() const { return watchers_.load(std::memory_order_relaxed); }

  grpc::ServerUnaryReactor* Invoke(grpc::CallbackServerContext* context,
                                   const v1::InvokeRequest* request,
                                   v1::InvokeResponse* response) override;
  grpc::ServerUnaryReactor* RegisterService(grpc::CallbackServerContext* context,
                                            const v1::RegisterServiceRequest* request,
                                            v1::RegisterServiceResponse* response) override;
  grpc::ServerUnaryReactor* DeregisterService(grpc::CallbackServerContext* context,
                                              const v1::DeregisterServiceRequest* request,
                                              v1::DeregisterServiceResponse* response) override;
  grpc::ServerUnaryReactor* ListServices(grpc::CallbackServerContext* context,
                                         const v1::ListServicesRequest* request,
                                         v1::ListServicesResponse* response) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const v1::GetStatsRequest* request,
                                     v1::SidecarStats* response) override;

  grpc::ServerUnaryReactor* InvokeAsync(grpc::CallbackServerContext* context,
                                        const v1::InvokeAsyncRequest*,
                                        v1::InvokeAsyncResponse*) override;
  grpc::ServerBidiReactor<v1::InvokeAsyncStreamRequest, v1::InvokeAsyncStreamResponse>*
  InvokeAsyncStream(grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Cast(grpc::CallbackServerContext* context, const v1::CastRequest*,
                                 v1::CastResponse*) override;
  grpc::ServerUnaryReactor* GetCall(grpc::CallbackServerContext* context, const v1::GetCallRequest*,
                                    v1::Call*) override;
  grpc::ServerUnaryReactor* WaitCall(grpc::CallbackServerContext* context,
                                     const v1::WaitCallRequest*, v1::Call*) override;
  grpc::ServerUnaryReactor* ListCalls(grpc::CallbackServerContext* context,
                                      const v1::ListCallsRequest*, v1::ListCallsResponse*) override;
  grpc::ServerUnaryReactor* CancelCall(grpc::CallbackServerContext* context,
                                       const v1::CancelCallRequest*, v1::Call*) override;
  grpc::ServerWriteReactor<v1::Completion>* WatchCompletions(
      grpc::CallbackServerContext* context, const v1::WatchCompletionsRequest*) override;
  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context, const v1::PublishRequest*,
                                    v1::PublishResponse*) override;
  grpc::ServerUnaryReactor* ListDeadLetters(grpc::CallbackServerContext* context,
                                            const v1::ListDeadLettersRequest*,
                                            v1::ListDeadLettersResponse*) override;
  grpc::ServerUnaryReactor* RedriveDeadLetter(grpc::CallbackServerContext* context,
                                              const v1::RedriveDeadLetterRequest*,
                                              v1::RedriveDeadLetterResponse*) override;

  grpc::ServerUnaryReactor* ListTopics(grpc::CallbackServerContext* context,
                                       const v1::ListTopicsRequest*,
                                       v1::ListTopicsResponse*) override;
  grpc::ServerUnaryReactor* ReplaySubscription(grpc::CallbackServerContext* context,
                                               const v1::ReplaySubscriptionRequest*,
                                               v1::ReplaySubscriptionResponse*) override;
  grpc::ServerUnaryReactor* Unsubscribe(grpc::CallbackServerContext* context,
                                        const v1::UnsubscribeRequest*,
                                        v1::UnsubscribeResponse*) override;
  grpc::ServerUnaryReactor* ListEventDeadLetters(grpc::CallbackServerContext* context,
                                                 const v1::ListEventDeadLettersRequest*,
                                                 v1::ListEventDeadLettersResponse*) override;
  grpc::ServerUnaryReactor* RedriveEventDeadLetter(grpc::CallbackServerContext* context,
                                                   const v1::RedriveEventDeadLetterRequest*,
                                                   v1::RedriveEventDeadLetterResponse*) override;

  // A call as the API shows it: payload only on request, the resolved callback filled in.
  v1::Call Present(v1::Call call, bool include_payload) const;

 private:
  // Builds the envelope of an InvokeAsync or Cast (calls::BuildEnvelope), stores it through the
  // dispatcher and answers with the CID once it is durable.
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Accept(grpc::CallbackServerContext* context, const Request& request,
                                   Response* response);
  // What Accept and InvokeAsyncStream share. The envelope of `durable` from `caller` on `rpc`
  // (source, policy, call context; `trace`, if given and set, instead of the RPC's trace
  // metadata), or the status to answer, counted as refused.
  absl::StatusOr<v1::CallEnvelope> DurableEnvelope(const security::Caller& caller,
                                                   calls::DurableRequest durable,
                                                   const grpc::ServerContextBase& rpc,
                                                   const calls::TraceContext* trace);
  // The answer to the journaling of call `cid`, counted as accepted or refused: OK, or the
  // journal's error (UNAVAILABLE saying that the call may still run after a restart).
  grpc::Status AcceptStatus(const absl::StatusOr<CallStore::AcceptResult>& result,
                            const std::string& cid);
  friend class InvokeAsyncStreamReactor;
  // The subscriptions of a registration, checked before anything is registered: topic and
  // method names, the method's service among the instance's grpc_services (when it lists them),
  // no second method for a topic the service already subscribes to.
  absl::Status ValidateSubscriptions(const v1::RegisterServiceRequest& request) const;
  // Creates (durably) or updates one subscription and starts its delivery. Blocks.
  absl::Status Subscribe(const std::string& service, const v1::Subscription& subscription);
  // Runs `work` on a worker and finishes the RPC with its status.
  grpc::ServerUnaryReactor* FinishOnWorker(grpc::CallbackServerContext* context,
                                           std::function<grpc::Status()> work);

  // Present `call` to `caller` only if it may see it; NOT_FOUND as for an unknown CID otherwise,
  // so that a caller cannot probe for other identities' CIDs.
  absl::StatusOr<v1::Call> Visible(const security::Caller& caller,
                                   absl::StatusOr<v1::Call> call) const;

  const Options options_;
  security::Gatekeeper* const gatekeeper_;
  Registry* const registry_;
  Invoker* const invoker_;
  SyncCalls* const sync_calls_;
  const Async async_;
  Clock* const clock_;
  std::atomic<uint64_t> async_accepted_{0};
  std::atomic<uint64_t> async_rejected_{0};
  std::atomic<uint32_t> watchers_{0};
  const absl::Time started_at_;
};

}  // namespace callmesh::sidecar
