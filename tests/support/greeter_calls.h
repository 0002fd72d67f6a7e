// The durable call the process tests make most: InvokeAsync of the greeter's SayHello.
//
//   v1::InvokeAsyncRequest request = SayHelloAsync(hello);   // then source, key, callback ...
#pragma once

#include "callmesh/v1/sidecar.pb.h"
#include "services/greeter/greeter.pb.h"

namespace callmesh::testing {

// InvokeAsync of greeter.v1.Greeter/SayHello on the mesh service "greeter" with `hello`.
inline v1::InvokeAsyncRequest SayHelloAsync(const ::greeter::v1::HelloRequest& hello) {
  v1::InvokeAsyncRequest request;
  request.set_service("greeter");
  request.set_method("greeter.v1.Greeter/SayHello");
  request.set_payload(hello.SerializeAsString());
  return request;
}

}  // namespace callmesh::testing
