// Spans as the body of an OTLP/HTTP JSON export (POST /v1/traces, Content-Type
// application/json), following the OTLP JSON mapping: one resourceSpans with the resource
// attribute `service.name`, one scopeSpans of scope "callmesh", ids as lower-case hex, times as
// decimal strings of Unix nanoseconds, integer attributes as decimal strings ("intValue").
//
//   std::string body = OtlpJson(spans, "callmeshd/orders");
//
// Pure function; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "runtime/sidecar/tracing/span.h"

namespace callmesh::tracing {

std::string OtlpJson(const std::vector<Span>& spans, absl::string_view service_name);

}  // namespace callmesh::tracing
