// How big the messages between callmesh's processes can be: one rule for the sidecar's
// listeners, its outbound calls and the SDK's servers.
#pragma once

#include <cstdint>

namespace callmesh {

// The largest `max_payload_bytes` a sidecar's config may set (config validation refuses more).
inline constexpr uint64_t kMaxPayloadBytesLimit = 64 << 20;

// What a message that wraps a payload may add around it: an InvokeRequest around its request, a
// callback's Completion around the target's reply (CID, service, method, headers, the status
// message, timestamps). A message carrying a payload of up to max_payload_bytes is at most
// max_payload_bytes plus this.
inline constexpr uint64_t kEnvelopeAllowanceBytes = 64 << 10;

// The largest message a process of the mesh receives when payloads are limited to
// `max_payload_bytes`.
constexpr uint64_t MaxWrappedMessageBytes(uint64_t max_payload_bytes) {
  return max_payload_bytes + kEnvelopeAllowanceBytes;
}

}  // namespace callmesh
