// W3C Trace Context (https://www.w3.org/TR/trace-context/) as the sidecar takes it from a caller:
// `traceparent` is checked and dropped (with its `tracestate`) when it is malformed, so a target
// never receives a trace context that tracing systems would reject; a malformed `tracestate`
// alone is dropped. What passes is carried unchanged: on a synchronous call to the target, and on
// an async call in its journaled envelope to every attempt.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace callmesh::calls {

struct TraceContext {
  std::string traceparent;
  std::string tracestate;
};

// version "-" trace-id "-" parent-id "-" flags, lower-case hex: version 00 exactly 55 characters;
// a higher version (not ff) at least 55, with "-" after the flags if longer. trace-id (32) and
// parent-id (16) not all zeros.
bool IsValidTraceparent(absl::string_view traceparent);

// At most 512 characters and 32 comma-separated list members "key=value" (empty members and
// spaces around them allowed). key: 1-256 of a-z 0-9 _ - * / @, starting with a-z or 0-9; value:
// 1-256 printable ASCII characters except ',' and '=', not ending with a space.
bool IsValidTracestate(absl::string_view tracestate);

// What is carried on: both when traceparent is valid (tracestate only if it is valid too),
// nothing when traceparent is missing or malformed.
TraceContext CheckTraceContext(absl::string_view traceparent, absl::string_view tracestate);

}  // namespace callmesh::calls
