// A finished span as callmesh exports it, and the W3C trace context it travels with.
//
//   std::optional<SpanContext> parent = ParseTraceparent(envelope.traceparent());
//   Span span{.trace_id = parent->trace_id, .parent_span_id = parent->span_id, ...};
//   envelope.set_traceparent(FormatTraceparent({span.trace_id, span.span_id, parent->sampled}));
//
// Ids are lower-case hex as in `traceparent` (and as OTLP/JSON writes them): 32 characters for a
// trace, 16 for a span. Plain values; no threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace callmesh::tracing {

// Where a span sits in its trace: the trace, the span itself, and whether the trace is sampled
// (the `traceparent` flag 01).
struct SpanContext {
  std::string trace_id;
  std::string span_id;
  bool sampled = true;
};

// The trace id, parent id (as span_id) and sampled flag of a valid `traceparent`
// (calls::IsValidTraceparent); nullopt for an empty or malformed one.
std::optional<SpanContext> ParseTraceparent(absl::string_view traceparent);

// "00-<trace_id>-<span_id>-<01|00>".
std::string FormatTraceparent(const SpanContext& context);

// OTLP's SpanKind numbering.
enum class SpanKind { kInternal = 1, kServer = 2, kClient = 3 };

// OTLP's Status.code numbering.
enum class SpanStatus { kUnset = 0, kOk = 1, kError = 2 };

struct Span {
  std::string trace_id;
  std::string span_id;
  // Empty for a root span.
  std::string parent_span_id;
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  absl::Time start;
  absl::Time end;
  // String attributes (e.g. "callmesh.cid") and integer ones (e.g. "callmesh.attempt").
  std::vector<std::pair<std::string, std::string>> attributes;
  std::vector<std::pair<std::string, int64_t>> int_attributes;
  SpanStatus status = SpanStatus::kUnset;
  std::string status_message;
};

}  // namespace callmesh::tracing
