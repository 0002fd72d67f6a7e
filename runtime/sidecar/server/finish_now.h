// Ending a unary callback RPC on the spot, for answers that need no further work.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

namespace callmesh::sidecar {

// Ends a unary callback RPC at once with `status`.
inline grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                           const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace callmesh::sidecar
