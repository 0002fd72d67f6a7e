// A string as a JSON string literal, for the few places that write JSON by hand (JSON log lines,
// OTLP trace exports):
//
//   std::string out = "{\"message\":";
//   AppendJsonString(&out, "say \"hi\"\n");   // {"message":"say \"hi\"\n"
//
// Escapes '"', '\\' and every control character below 0x20; other bytes are copied unchanged
// (callers pass UTF-8). Thread-safe (no state).
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace callmesh {

// Appends `text` to `*out` in double quotes, escaped as above.
void AppendJsonString(std::string* out, absl::string_view text);

}  // namespace callmesh
