// JSON <-> protobuf for messages known only at run time (descriptors from server reflection or a
// protoset), with errors that point at the problem.
//
//   const google::protobuf::Descriptor* type =
//   pool.FindMessageTypeByName("greeter.v1.HelloRequest"); absl::StatusOr<std::string> bytes =
//   JsonToProtoBytes(*type, R"({"name": "world"})");
//   // INVALID_ARGUMENT: "malformed JSON at line 1, column 9: ...",
//   //                   "unknown field \"nmae\" in greeter.v1.HelloRequest (line 1, column 2) ..."
//   absl::StatusOr<JsonValue> reply = ProtoBytesToJson(*reply_type, reply_bytes);
//
// The canonical proto3 JSON mapping (protobuf's util/json_util.h) does the conversion; the syntax
// and field-name checks run first on our own parse so their errors carry positions and paths.
// Thread-safe (each call builds its own DynamicMessageFactory); descriptors must outlive the call.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/json/json_value.h"

namespace callmesh::cli {

// Serialized `type` message from `json` (a JSON object; field names in proto or lowerCamelCase
// form). INVALID_ARGUMENT for malformed JSON (with line and column), a non-object document, an
// unknown field (with its path from the root, the message type that lacks it and a "did you
// mean" hint), or a value of the wrong type (protobuf's message, naming the field).
absl::StatusOr<std::string> JsonToProtoBytes(const google::protobuf::Descriptor& type,
                                             absl::string_view json);

// Checks only the field names of `json` against `type`, recursively (the first unknown field
// wins). Well-known types with a special JSON form (Any, Struct, Timestamp,
// Duration, FieldMask, wrappers) are not descended into.
absl::Status CheckJsonFields(const JsonValue& json, const google::protobuf::Descriptor& type);

// `bytes` (a serialized `type` message) as canonical proto3 JSON. INVALID_ARGUMENT if the bytes
// do not parse as `type`.
absl::StatusOr<JsonValue> ProtoBytesToJson(const google::protobuf::Descriptor& type,
                                           absl::string_view bytes);

// Any message (generated or dynamic) as canonical proto3 JSON; INTERNAL if protobuf refuses.
absl::StatusOr<JsonValue> MessageToJson(const google::protobuf::Message& message);

}  // namespace callmesh::cli
