// The transparent proxy: any RPC the sidecar does not serve itself, carrying the metadata
// `callmesh-target: <service>`, is forwarded as bytes to that service on the same method path.
// A plain generated stub pointed at the sidecar thus reaches the target through the mesh (the
// idea of Dapr's `dapr-app-id`).
//
// Unary only: a request stream of more than one message answers UNIMPLEMENTED. Application
// metadata is passed through; the CID is returned to the caller in the initial metadata
// `callmesh-cid`. Thread-safe; the invoker must outlive the service.
#pragma once

#include <grpcpp/generic/async_generic_service.h>

#include <string>

#include "runtime/common/clock.h"
#include "runtime/sidecar/invoke/invoker.h"
#include "runtime/sidecar/server/sidecar_service.h"

namespace callmesh::sidecar {

class ProxyService final : public grpc::CallbackGenericService {
 public:
  // Who the proxy serves.
  enum class Callers {
    // Apps on this host (the Sidecar API's listener).
    kApps,
    // Other sidecars of the cluster (the peer listener): a call they forward keeps its CID,
    // source, attempt and parent as sent, goes only to an instance on this host (never onwards),
    // and is admitted only from a sidecar identity when security authenticates
    // (Gatekeeper::AuthenticateSidecar); the access policy is checked for its source.
    kSidecars,
  };

  // `default_source` is used when the caller sends no `callmesh-source`. `gatekeeper`
  // authenticates callers and checks the access policy (nullptr = Gatekeeper::Open(): none);
  // with authentication on, the source is the caller's identity and the caller's
  // `authorization` metadata is not passed on. Pointers must outlive the service.
  ProxyService(std::string default_source, Invoker* invoker, SyncCalls* sync_calls,
               const Clock* clock, security::Gatekeeper* gatekeeper = nullptr,
               Callers callers = Callers::kApps);

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override;

 private:
  const std::string default_source_;
  Invoker* const invoker_;
  SyncCalls* const sync_calls_;
  const Clock* const clock_;
  security::Gatekeeper* const gatekeeper_;
  const Callers callers_;
};

}  // namespace callmesh::sidecar
