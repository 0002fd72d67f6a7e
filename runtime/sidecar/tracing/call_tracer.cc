#include "runtime/sidecar/tracing/call_tracer.h"

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/proto_time.h"

namespace callmesh::tracing {
namespace {

constexpr char kCid[] = "callmesh.cid";

std::string MethodOf(const std::string& method) {
  return method.empty() || method[0] != '/' ? method : method.substr(1);
}

}  // namespace

std::string RandomHexId(int bytes) {
  thread_local absl::BitGen random;
  std::string raw(bytes, '\0');
  do {
    for (char& c : raw) c = static_cast<char>(absl::Uniform<uint8_t>(random));
  } while (raw.find_first_not_of('\0') == std::string::npos);
  return absl::BytesToHexString(raw);
}

CallTracer::CallTracer(SpanExporter* exporter, Clock* clock) : exporter_(exporter), clock_(clock) {}

CallTracer::Open CallTracer::StartChild(const std::string& traceparent, std::string name,
                                        SpanKind kind) {
  Open open;
  std::optional<SpanContext> parent = ParseTraceparent(traceparent);
  SpanContext self;
  if (parent.has_value()) {
    self.trace_id = parent->trace_id;
    self.sampled = parent->sampled;
    open.span.parent_span_id = parent->span_id;
  } else {
    self.trace_id = RandomHexId(16);
  }
  self.span_id = RandomHexId(8);
  open.recorded = self.sampled;
  open.traceparent = FormatTraceparent(self);
  open.span.trace_id = self.trace_id;
  open.span.span_id = self.span_id;
  open.span.name = std::move(name);
  open.span.kind = kind;
  open.span.start = clock_->Now();
  return open;
}

void CallTracer::End(Open span, int code, const std::string& message) {
  if (!span.recorded) return;
  span.span.end = clock_->Now();
  span.span.int_attributes.emplace_back("rpc.grpc.status_code", code);
  span.span.status = code == 0 ? SpanStatus::kOk : SpanStatus::kError;
  if (code != 0) {
    span.span.status_message =
        absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(code)), ": ", message);
  }
  exporter_->Export(std::move(span.span));
}

CallTracer::Open CallTracer::StartAccept(v1::CallEnvelope* envelope) {
  Open open = StartChild(envelope->traceparent(), "callmesh.accept", SpanKind::kServer);
  const bool had_context = !envelope->traceparent().empty();
  envelope->set_traceparent(open.traceparent);
  if (!had_context) envelope->clear_tracestate();
  open.span.attributes = {{"callmesh.service", envelope->service()},
                          {"rpc.method", MethodOf(envelope->method())},
                          {"callmesh.source", envelope->source()},
                          {"callmesh.kind", v1::CallKind_Name(envelope->kind())}};
  return open;
}

void CallTracer::EndAccept(Open span, const std::string& cid, const absl::Status& status) {
  if (!cid.empty()) span.span.attributes.emplace_back(kCid, cid);
  End(std::move(span), static_cast<int>(status.code()), std::string(status.message()));
}

CallTracer::Open CallTracer::StartAttempt(const v1::CallEnvelope& envelope, uint32_t attempt) {
  Open open = StartChild(envelope.traceparent(), "callmesh.attempt", SpanKind::kClient);
  open.span.attributes = {{kCid, envelope.cid()},
                          {"callmesh.service", envelope.service()},
                          {"rpc.method", MethodOf(envelope.method())}};
  open.span.int_attributes = {{"callmesh.attempt", attempt}};
  return open;
}

void CallTracer::EndAttempt(Open span, int code, const std::string& message) {
  End(std::move(span), code, message);
}

CallTracer::Open CallTracer::StartSync(const std::string& traceparent, const std::string& cid,
                                       const std::string& service, const std::string& method_path,
                                       const std::string& source) {
  Open open = StartChild(traceparent, "callmesh.invoke", SpanKind::kServer);
  open.span.attributes = {{kCid, cid},
                          {"callmesh.service", service},
                          {"rpc.method", MethodOf(method_path)},
                          {"callmesh.source", source}};
  return open;
}

void CallTracer::EndSync(Open span, int code, const std::string& message) {
  End(std::move(span), code, message);
}

void CallTracer::RecordCompletion(const v1::Completion& completion) {
  Open open = StartChild(completion.traceparent(), "callmesh.complete", SpanKind::kInternal);
  if (!open.recorded) return;
  open.span.start = FromProtoTimestamp(completion.accepted_at(), open.span.start);
  open.span.attributes = {{kCid, completion.cid()},
                          {"callmesh.service", completion.service()},
                          {"rpc.method", MethodOf(completion.method())},
                          {"callmesh.state", v1::CallState_Name(completion.state())}};
  open.span.int_attributes = {{"callmesh.attempts", completion.attempts()}};
  const absl::Time completed = FromProtoTimestamp(completion.completed_at(), clock_->Now());
  Span span = std::move(open.span);
  span.end = completed;
  span.int_attributes.emplace_back("rpc.grpc.status_code", completion.status_code());
  span.status = completion.status_code() == 0 ? SpanStatus::kOk : SpanStatus::kError;
  span.status_message = completion.status_message();
  exporter_->Export(std::move(span));
}

CallTracer::Open CallTracer::StartDelivery(const v1::Completion& completion,
                                           const std::string& callback, uint32_t attempt) {
  Open open = StartChild(completion.traceparent(), "callmesh.callback", SpanKind::kClient);
  open.span.attributes = {{kCid, completion.cid()},
                          {"callmesh.callback", callback},
                          {"rpc.method", "callmesh.v1.Callback/OnCompletion"}};
  open.span.int_attributes = {{"callmesh.delivery_attempt", attempt}};
  return open;
}

void CallTracer::SetDeliveryMethod(Open* span, absl::string_view method) {
  for (auto& [key, value] : span->span.attributes) {
    if (key == "rpc.method") value = std::string(method);
  }
}

void CallTracer::EndDelivery(Open span, int code, const std::string& message) {
  End(std::move(span), code, message);
}

}  // namespace callmesh::tracing
