// The long poll the process tests use to see how a durable call ended: Sidecar.WaitCall.
//
//   v1::Call call = WaitCall(*stub, cid);   // terminal, or as it stands after `seconds`
#pragma once

#include <grpcpp/client_context.h>

#include <string>

#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gtest/gtest.h"

namespace callmesh::testing {

// The call `cid` once it is terminal, or as it stands after `seconds`; a failed RPC is a test
// failure (and an empty Call).
inline v1::Call WaitCall(v1::Sidecar::Stub& stub, const std::string& cid, int seconds = 30) {
  v1::WaitCallRequest request;
  request.set_cid(cid);
  request.mutable_timeout()->set_seconds(seconds);
  v1::Call call;
  grpc::ClientContext context;
  const grpc::Status status = stub.WaitCall(&context, request, &call);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return call;
}

}  // namespace callmesh::testing
