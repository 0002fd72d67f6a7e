// Where the SDK looks for the local sidecar when the application does not say.
//
//   callmesh::Mesh mesh({.source = "billing"});   // sidecar = DefaultSidecarAddress()
//
// The environment variable CALLMESH_SIDECAR (host:port) if it is set and not empty, else
// 127.0.0.1:4770, the sidecar's default listen address. The `callmesh` CLI follows the same order
// after its --sidecar flag. Thread-safe as long as nothing modifies the environment concurrently.
#pragma once

#include <string>

namespace callmesh {

inline constexpr char kSidecarAddressVariable[] = "CALLMESH_SIDECAR";
inline constexpr char kDefaultSidecarAddress[] = "127.0.0.1:4770";

// $CALLMESH_SIDECAR if set and not empty, else kDefaultSidecarAddress.
std::string DefaultSidecarAddress();

}  // namespace callmesh
