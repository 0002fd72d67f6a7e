#include "runtime/sidecar/tracing/otlp_json.h"

#include "absl/strings/str_cat.h"
#include "runtime/common/json_string.h"

namespace callmesh::tracing {
namespace {

void AppendKeyValue(std::string* out, absl::string_view key, absl::string_view value) {
  out->append("{\"key\":");
  AppendJsonString(out, key);
  out->append(",\"value\":{\"stringValue\":");
  AppendJsonString(out, value);
  out->append("}}");
}

void AppendSpan(std::string* out, const Span& span) {
  absl::StrAppend(out, "{\"traceId\":\"", span.trace_id, "\",\"spanId\":\"", span.span_id, "\"");
  if (!span.parent_span_id.empty()) {
    absl::StrAppend(out, ",\"parentSpanId\":\"", span.parent_span_id, "\"");
  }
  out->append(",\"name\":");
  AppendJsonString(out, span.name);
  absl::StrAppend(out, ",\"kind\":", static_cast<int>(span.kind), ",\"startTimeUnixNano\":\"",
                  absl::ToUnixNanos(span.start), "\",\"endTimeUnixNano\":\"",
                  absl::ToUnixNanos(span.end), "\",\"attributes\":[");
  bool first = true;
  for (const auto& [key, value] : span.attributes) {
    if (!first) out->push_back(',');
    first = false;
    AppendKeyValue(out, key, value);
  }
  for (const auto& [key, value] : span.int_attributes) {
    if (!first) out->push_back(',');
    first = false;
    out->append("{\"key\":");
    AppendJsonString(out, key);
    absl::StrAppend(out, ",\"value\":{\"intValue\":\"", value, "\"}}");
  }
  absl::StrAppend(out, "],\"status\":{\"code\":", static_cast<int>(span.status));
  if (!span.status_message.empty()) {
    out->append(",\"message\":");
    AppendJsonString(out, span.status_message);
  }
  out->append("}}");
}

}  // namespace

std::string OtlpJson(const std::vector<Span>& spans, absl::string_view service_name) {
  std::string out = "{\"resourceSpans\":[{\"resource\":{\"attributes\":[";
  AppendKeyValue(&out, "service.name", service_name);
  out.append("]},\"scopeSpans\":[{\"scope\":{\"name\":\"callmesh\"},\"spans\":[");
  for (size_t i = 0; i < spans.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendSpan(&out, spans[i]);
  }
  out.append("]}]}]}");
  return out;
}

}  // namespace callmesh::tracing
