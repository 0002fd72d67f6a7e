// The `callmesh.v1.Sidecar` API, served with gRPC's callback API so no thread blocks while a call
// is forwarded. Synchronous Invoke and the registry RPCs are implemented here; the durable
// asynchronous RPCs (InvokeAsync, Cast, GetCall, WaitCall, ListCalls, CancelCall,
// WatchCompletions, Publish, dead letters) answer UNIMPLEMENTED with a message saying so until
// the journal lands.
//
// Thread-safe; the registry and invoker must outlive the service.
#pragma once

#include <atomic>
#include <string>

#include "absl/time/time.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "runtime/sidecar/invoke/invoker.h"
#include "runtime/sidecar/registry/registry.h"

namespace callmesh::sidecar {

// Counters shared by the Sidecar API and the transparent proxy.
struct InvokeCounters {
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
  void Count(bool success) { (success ? ok : failed).fetch_add(1, std::memory_order_relaxed); }
};

class SidecarService final : public v1::Sidecar::CallbackService {
 public:
  struct Options {
    // Mesh name of the local app: the source of calls that name none.
    std::string name = "app";
  };

  SidecarService(Options options, Registry* registry, Invoker* invoker, InvokeCounters* counters);

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

  // Not implemented yet: each answers UNIMPLEMENTED naming the RPC.
  grpc::ServerUnaryReactor* InvokeAsync(grpc::CallbackServerContext* context,
                                        const v1::InvokeAsyncRequest*,
                                        v1::InvokeAsyncResponse*) override;
  grpc::ServerUnaryReactor* Cast(grpc::CallbackServerContext* context, const v1::CastRequest*,
                                 v1::CastResponse*) override;
  grpc::ServerUnaryReactor* GetCall(grpc::CallbackServerContext* context,
                                    const v1::GetCallRequest*, v1::Call*) override;
  grpc::ServerUnaryReactor* WaitCall(grpc::CallbackServerContext* context,
                                     const v1::WaitCallRequest*, v1::Call*) override;
  grpc::ServerUnaryReactor* ListCalls(grpc::CallbackServerContext* context,
                                      const v1::ListCallsRequest*,
                                      v1::ListCallsResponse*) override;
  grpc::ServerUnaryReactor* CancelCall(grpc::CallbackServerContext* context,
                                       const v1::CancelCallRequest*, v1::Call*) override;
  grpc::ServerWriteReactor<v1::Completion>* WatchCompletions(
      grpc::CallbackServerContext* context, const v1::WatchCompletionsRequest*) override;
  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const v1::PublishRequest*, v1::PublishResponse*) override;
  grpc::ServerUnaryReactor* ListDeadLetters(grpc::CallbackServerContext* context,
                                            const v1::ListDeadLettersRequest*,
                                            v1::ListDeadLettersResponse*) override;
  grpc::ServerUnaryReactor* RedriveDeadLetter(grpc::CallbackServerContext* context,
                                              const v1::RedriveDeadLetterRequest*,
                                              v1::RedriveDeadLetterResponse*) override;

 private:
  const Options options_;
  Registry* const registry_;
  Invoker* const invoker_;
  InvokeCounters* const counters_;
  const absl::Time started_at_ = absl::Now();
};

}  // namespace callmesh::sidecar
