// WaitCall from a test: the call `cid` once it is terminal, as the sidecar behind `stub` reports
// it. A failed RPC fails the test (EXPECT, naming the status) and gives an empty Call.
//
//   v1::Call call = WaitCallOk(*stub_, cid);
//   EXPECT_EQ(call.state(), v1::CALL_STATE_SUCCEEDED);
#pragma once

#include <grpcpp/client_context.h>

#include <string>

#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gtest/gtest.h"

namespace callmesh::testing {

inline v1::Call WaitCallOk(v1::Sidecar::StubInterface& stub, const std::string& cid) {
  grpc::ClientContext context;
  v1::WaitCallRequest request;
  request.set_cid(cid);
  v1::Call call;
  grpc::Status status = stub.WaitCall(&context, request, &call);
  EXPECT_TRUE(status.ok()) << "WaitCall " << cid << ": " << status.error_message();
  return call;
}

}  // namespace callmesh::testing
