#include "runtime/sidecar/calls/trace_context.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace callmesh::calls {
namespace {

constexpr size_t kTraceparentLength = 55;
constexpr size_t kMaxTracestateLength = 512;
constexpr size_t kMaxTracestateMembers = 32;
constexpr size_t kMaxKeyOrValueLength = 256;

bool IsLowerHex(char c) { return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'); }

// `length` lower-case hex digits at `text[at]`; `nonzero` also requires one that is not '0'.
bool HexField(absl::string_view text, size_t at, size_t length, bool nonzero) {
  bool any_nonzero = false;
  for (size_t i = at; i < at + length; ++i) {
    if (!IsLowerHex(text[i])) return false;
    any_nonzero |= text[i] != '0';
  }
  return !nonzero || any_nonzero;
}

bool IsValidKey(absl::string_view key) {
  if (key.empty() || key.size() > kMaxKeyOrValueLength) return false;
  if (!(absl::ascii_islower(key[0]) || absl::ascii_isdigit(key[0]))) return false;
  for (char c : key) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '-' || c == '*' ||
          c == '/' || c == '@')) {
      return false;
    }
  }
  return true;
}

bool IsValidValue(absl::string_view value) {
  if (value.empty() || value.size() > kMaxKeyOrValueLength || value.back() == ' ') return false;
  for (char c : value) {
    if (c < 0x20 || c > 0x7e || c == ',' || c == '=') return false;
  }
  return true;
}

}  // namespace

bool IsValidTraceparent(absl::string_view traceparent) {
  if (traceparent.size() < kTraceparentLength) return false;
  if (traceparent[2] != '-' || traceparent[35] != '-' || traceparent[52] != '-') return false;
  if (!HexField(traceparent, 0, 2, false) || traceparent.substr(0, 2) == "ff") return false;
  if (!HexField(traceparent, 3, 32, true) || !HexField(traceparent, 36, 16, true) ||
      !HexField(traceparent, 53, 2, false)) {
    return false;
  }
  if (traceparent.substr(0, 2) == "00") return traceparent.size() == kTraceparentLength;
  return traceparent.size() == kTraceparentLength || traceparent[kTraceparentLength] == '-';
}

bool IsValidTracestate(absl::string_view tracestate) {
  if (tracestate.size() > kMaxTracestateLength) return false;
  size_t members = 0;
  for (absl::string_view member : absl::StrSplit(tracestate, ',')) {
    member = absl::StripAsciiWhitespace(member);
    if (member.empty()) continue;
    if (++members > kMaxTracestateMembers) return false;
    const size_t equals = member.find('=');
    if (equals == absl::string_view::npos) return false;
    if (!IsValidKey(member.substr(0, equals)) || !IsValidValue(member.substr(equals + 1))) {
      return false;
    }
  }
  return true;
}

TraceContext CheckTraceContext(absl::string_view traceparent, absl::string_view tracestate) {
  TraceContext context;
  if (!IsValidTraceparent(traceparent)) return context;
  context.traceparent = std::string(traceparent);
  if (!tracestate.empty() && IsValidTracestate(tracestate)) {
    context.tracestate = std::string(tracestate);
  }
  return context;
}

}  // namespace callmesh::calls
