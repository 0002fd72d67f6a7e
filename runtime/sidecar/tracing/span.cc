#include "runtime/sidecar/tracing/span.h"

#include "absl/strings/str_cat.h"
#include "runtime/sidecar/calls/trace_context.h"

namespace callmesh::tracing {

std::optional<SpanContext> ParseTraceparent(absl::string_view traceparent) {
  if (!calls::IsValidTraceparent(traceparent)) return std::nullopt;
  // version(2) "-" trace-id(32) "-" parent-id(16) "-" flags(2)
  SpanContext context;
  context.trace_id = std::string(traceparent.substr(3, 32));
  context.span_id = std::string(traceparent.substr(36, 16));
  const absl::string_view flags = traceparent.substr(53, 2);
  const int low = flags[1] >= 'a' ? flags[1] - 'a' + 10 : flags[1] - '0';
  context.sampled = (low & 1) != 0;
  return context;
}

std::string FormatTraceparent(const SpanContext& context) {
  return absl::StrCat("00-", context.trace_id, "-", context.span_id, "-",
                      context.sampled ? "01" : "00");
}

}  // namespace callmesh::tracing
