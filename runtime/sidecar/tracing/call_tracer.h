// The spans of a durable call's life, one trace per call chain:
//
//   caller's span (from its traceparent, if any)
//   └─ callmesh.accept      SERVER  InvokeAsync/Cast received → journaled and acknowledged
//      ├─ callmesh.attempt  CLIENT  one per attempt; the target gets it as its traceparent
//      ├─ callmesh.complete INTERNAL accepted → terminal outcome journaled (state, code)
//      └─ callmesh.callback CLIENT  one per delivery attempt; the callback gets it as its
//                                   traceparent, so A → B (async) → A's callback is one trace
//
// and of a synchronous call (Sidecar.Invoke or the proxy), under the caller's span:
//
//   └─ callmesh.invoke      SERVER  received → the target's reply (or error) sent back; the
//                                   target gets it as its traceparent
//
// Every span carries the CID as `callmesh.cid` (and service, method, attempt where they apply).
// The accept span becomes the call's trace context: StartAccept writes it into the envelope's
// `traceparent` before the envelope is journaled, so attempts and deliveries after a restart
// still hang under it. A caller's traceparent with the sampled flag off is carried on but not
// recorded; a call without one starts a new trace.
//
//   CallTracer tracer(&exporter, clock);
//   CallTracer::Open accept = tracer.StartAccept(&envelope);
//   ...journal...
//   tracer.EndAccept(std::move(accept), cid, status);
//
// Ending a span only queues it in the SpanExporter (off the hot path). Thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "callmesh/v1/call.pb.h"
#include "runtime/common/clock.h"
#include "runtime/sidecar/tracing/span.h"
#include "runtime/sidecar/tracing/span_exporter.h"

namespace callmesh::tracing {

class CallTracer {
 public:
  // A span being timed. `recorded` false: not sampled, End* drops it.
  struct Open {
    Span span;
    bool recorded = false;
    // What to send on as `traceparent` for work under this span.
    std::string traceparent;
  };

  // Both pointers must outlive the tracer.
  CallTracer(SpanExporter* exporter, Clock* clock);

  // Opens the accept span of a durable call and makes it the envelope's trace context.
  Open StartAccept(v1::CallEnvelope* envelope);
  // `cid` empty when the call was refused (then `status` is the refusal).
  void EndAccept(Open span, const std::string& cid, const absl::Status& status);

  // Opens the span of attempt `attempt` of the call (a child of its accept span).
  Open StartAttempt(const v1::CallEnvelope& envelope, uint32_t attempt);
  // `code`/`message`: the attempt's gRPC status.
  void EndAttempt(Open span, int code, const std::string& message);

  // Records the completion span of a stored terminal outcome (from accepted_at to completed_at).
  void RecordCompletion(const v1::Completion& completion);

  // Opens the span of synchronous call `cid` (a child of `traceparent`, the caller's; a new root
  // if it is empty). End it with EndSync.
  Open StartSync(const std::string& traceparent, const std::string& cid, const std::string& service,
                 const std::string& method_path, const std::string& source);
  void EndSync(Open span, int code, const std::string& message);

  // Opens the span of delivery attempt `attempt` of `completion` to `callback`; its rpc.method is
  // unary OnCompletion until SetDeliveryMethod says otherwise.
  Open StartDelivery(const v1::Completion& completion, const std::string& callback,
                     uint32_t attempt);
  // The method a delivery attempt went by, "callmesh.v1.Callback/OnCompletions" (the stream) or
  // "callmesh.v1.Callback/OnCompletion": the span's rpc.method.
  static void SetDeliveryMethod(Open* span, absl::string_view method);
  void EndDelivery(Open span, int code, const std::string& message);

 private:
  // A child of the span in `traceparent` (a new root if it is empty or malformed).
  Open StartChild(const std::string& traceparent, std::string name, SpanKind kind);
  void End(Open span, int code, const std::string& message);

  SpanExporter* const exporter_;
  Clock* const clock_;
};

// A fresh random id of `bytes` bytes as lower-case hex (never all zeros).
std::string RandomHexId(int bytes);

}  // namespace callmesh::tracing
