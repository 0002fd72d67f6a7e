// A generic mapping of YAML (or JSON, which YAML 1.2 parsers accept) onto any protobuf message,
// driven by reflection, with errors that name the file, line, column and key path:
//
//   callmesh::v1::SidecarConfig config;
//   SourcePositions positions("sidecar.yaml");
//   absl::Status parsed = YamlToProto(text, &config, &positions);
//   // "sidecar.yaml:7:5: services[0].retry.jitter: expected a number, got \"high\""
//
// Mapping rules (a field added to a .proto file needs no change here):
//   - A YAML mapping fills a message. Keys are the proto field names (`max_attempts`) or their
//     lowerCamelCase JSON names (`maxAttempts`), so JSON written by protobuf's own printer loads.
//     An unknown key is an error that suggests the closest valid key (callmesh::ClosestMatch) or
//     lists the valid ones; a key given twice (also as both spellings) is an error; two fields of
//     one oneof are an error.
//   - Scalars: strings; bools (`true`/`false`, any case); integers (decimal, or an integral number
//     such as `1e6`; quoted numbers are accepted, as in protobuf's JSON mapping, which quotes
//     64-bit integers); fractions, negatives for unsigned fields and out-of-range values are
//     errors; doubles and floats (also `.inf`, `-.inf`, `.nan`, `Infinity`, `NaN`); enums by value
//     name in any case ("fsync") or by number; bytes as base64 (standard or web-safe).
//   - Repeated fields take YAML sequences (a scalar where a sequence is expected is an error);
//     map<K, V> fields take YAML mappings; nested messages take nested mappings.
//   - google.protobuf.Duration takes the text of callmesh::ParseDurationText ("250ms", "5s",
//     "1m30s", "1.5h", or a bare number of seconds); negative durations are errors.
//   - A null or empty value (`key:`, `key: ~`, `key: null`) leaves the field unset. A null map
//     value adds the key with the default value; a null list element is an error.
//
// Errors are INVALID_ARGUMENT "<origin>:<line>:<column>: <key path>: <problem>"; lines and
// columns are 1-based. YAML syntax errors read "<origin>:<line>:<column>: <yaml-cpp's message>".
// Errors about the document as a whole (a top level that is not a mapping, several documents)
// carry no key path. Nesting deeper than 64 levels (recursive messages, cyclic aliases) is an
// error, not a crash.
//
// Thread-safety: YamlToProto is thread-safe; concurrent calls share nothing but their arguments.
// It never throws.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "runtime/sidecar/config/source_positions.h"

namespace callmesh::sidecar {

// Fills `message` from `text`, following the rules above; `positions` names the origin in
// errors and receives where each key path was written. Empty text (or only comments) leaves
// `message` unchanged. On error `message` may be partly filled: callers discard it.
absl::Status YamlToProto(absl::string_view text, google::protobuf::Message* message,
                         SourcePositions* positions);

// Sets the field `key` (proto or JSON name) of `message` from the scalar `text`, as if the
// document were "<key>: <text>" with `text` quoted: a number for a numeric field, "5s" for a
// Duration, and so on. A node built from `text` has no position, so errors read
// "<origin>: <key>: <problem>" with the origin of `positions`.
absl::Status ScalarToProtoField(absl::string_view key, absl::string_view text,
                                google::protobuf::Message* message, SourcePositions* positions);

}  // namespace callmesh::sidecar
