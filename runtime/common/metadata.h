// gRPC metadata keys that carry callmesh's call context between sidecars, targets and callbacks.
// Values are ASCII; see DESIGN.md "Metadata".
#pragma once

namespace callmesh {

// Correlation ID of the call, the same on every attempt and on the callback.
inline constexpr char kCidMetadata[] = "callmesh-cid";
// Mesh name of the calling service.
inline constexpr char kSourceMetadata[] = "callmesh-source";
// 1-based attempt number of this delivery to the target.
inline constexpr char kAttemptMetadata[] = "callmesh-attempt";
// Absolute overall deadline of the call, RFC 3339 UTC, when it has one.
inline constexpr char kDeadlineMetadata[] = "callmesh-deadline";
// Set by a caller of the transparent proxy: the mesh name of the target service.
inline constexpr char kTargetMetadata[] = "callmesh-target";
// CID of the call whose handler made this call.
inline constexpr char kParentCidMetadata[] = "callmesh-parent-cid";
// W3C trace context, passed on unchanged when it is well-formed (calls/trace_context.h).
inline constexpr char kTraceparentMetadata[] = "traceparent";
inline constexpr char kTracestateMetadata[] = "tracestate";
// In WatchCompletions' response headers: the highest completion sequence when the stream
// subscribed, so a client that watched "from now on" can resume from there without a gap.
inline constexpr char kLastSequenceMetadata[] = "callmesh-last-sequence";
// On the delivery of a published event (besides cid = event ID, source = publisher, attempt): its
// topic and its sequence in the topic.
inline constexpr char kTopicMetadata[] = "callmesh-topic";
inline constexpr char kSequenceMetadata[] = "callmesh-sequence";

}  // namespace callmesh
