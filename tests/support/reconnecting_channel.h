// A plaintext channel for chaos tests that kill and restart the process behind an address: its
// own subchannel (no state shared with other channels to the address) and a reconnect back-off
// of 50 to 200 ms instead of gRPC's 1 to 120 s, so a restarted sidecar is reached again quickly.
//
//   auto stub = v1::Sidecar::NewStub(ReconnectingChannel(sidecar.address()));
//
// Thread-safe.
#pragma once

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <memory>
#include <string>

namespace callmesh::testing {

inline std::shared_ptr<grpc::Channel> ReconnectingChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

}  // namespace callmesh::testing
