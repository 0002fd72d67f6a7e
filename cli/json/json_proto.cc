#include "cli/json/json_proto.h"

#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>

#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/suggest.h"

namespace callmesh::cli {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;

const FieldDescriptor* FindJsonField(const Descriptor& type, absl::string_view key) {
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor* field = type.field(i);
    if (field->name() == key || field->json_name() == key) return field;
  }
  return nullptr;
}

// Types whose JSON form is not an object of their fields (Any, Struct, Timestamp, wrappers...).
bool IsWellKnown(const Descriptor& type) {
  return type.file()->name() == "google/protobuf/any.proto" ||
         type.file()->name() == "google/protobuf/struct.proto" ||
         type.file()->name() == "google/protobuf/timestamp.proto" ||
         type.file()->name() == "google/protobuf/duration.proto" ||
         type.file()->name() == "google/protobuf/field_mask.proto" ||
         type.file()->name() == "google/protobuf/wrappers.proto";
}

absl::Status CheckMessage(const JsonValue& json, const Descriptor& type, const std::string& path);

// A value of `field` (one element if repeated; the value of an entry if a map).
absl::Status CheckFieldValue(const JsonValue& value, const FieldDescriptor& field,
                             const std::string& path) {
  if (field.is_map()) {
    const FieldDescriptor* value_field = field.message_type()->FindFieldByName("value");
    if (!value.is_object() || value_field == nullptr ||
        value_field->type() != FieldDescriptor::TYPE_MESSAGE) {
      return absl::OkStatus();  // protobuf reports type mismatches itself
    }
    for (const auto& [key, entry] : value.members()) {
      absl::Status s =
          CheckMessage(entry, *value_field->message_type(), absl::StrCat(path, "[\"", key, "\"]"));
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  if (field.type() != FieldDescriptor::TYPE_MESSAGE) return absl::OkStatus();
  if (field.is_repeated()) {
    if (!value.is_array()) return absl::OkStatus();
    for (size_t i = 0; i < value.elements().size(); ++i) {
      absl::Status s =
          CheckMessage(value.elements()[i], *field.message_type(), absl::StrCat(path, "[", i, "]"));
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  return CheckMessage(value, *field.message_type(), path);
}

absl::Status CheckMessage(const JsonValue& json, const Descriptor& type, const std::string& path) {
  if (!json.is_object() || IsWellKnown(type)) return absl::OkStatus();
  for (size_t i = 0; i < json.members().size(); ++i) {
    const auto& [key, value] = json.members()[i];
    const std::string field_path = path.empty() ? key : absl::StrCat(path, ".", key);
    const FieldDescriptor* field = FindJsonField(type, key);
    if (field == nullptr) {
      std::vector<std::string> names;
      for (int f = 0; f < type.field_count(); ++f) names.push_back(type.field(f)->name());
      const std::string hint = ClosestMatch(key, names);
      std::string where;
      if (i < json.key_positions().size()) {
        where = absl::StrCat(" (line ", json.key_positions()[i].line, ", column ",
                             json.key_positions()[i].column, ")");
      }
      return absl::InvalidArgumentError(
          absl::StrCat("unknown field \"", field_path, "\" in ", type.full_name(), where,
                       hint.empty() ? "" : absl::StrCat("; did you mean \"", hint, "\"?")));
    }
    if (value.type() == JsonValue::Type::kNull) continue;
    absl::Status s = CheckFieldValue(value, *field, field_path);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckJsonFields(const JsonValue& json, const Descriptor& type) {
  return CheckMessage(json, type, "");
}

absl::StatusOr<std::string> JsonToProtoBytes(const Descriptor& type, absl::string_view json) {
  absl::StatusOr<JsonValue> parsed = ParseJson(json);
  if (!parsed.ok()) return parsed.status();
  if (!parsed->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request must be a JSON object (a ", type.full_name(), " message), got ",
                     parsed->is_array() ? "an array" : "a scalar", " at line 1"));
  }
  if (absl::Status s = CheckJsonFields(*parsed, type); !s.ok()) return s;
  google::protobuf::DynamicMessageFactory factory(type.file()->pool());
  std::unique_ptr<google::protobuf::Message> message(factory.GetPrototype(&type)->New());
  google::protobuf::util::JsonParseOptions options;
  const auto converted = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message.get(), options);
  if (!converted.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON for ", type.full_name(), ": ",
                                                   std::string(converted.message())));
  }
  return message->SerializeAsString();
}

absl::StatusOr<JsonValue> MessageToJson(const google::protobuf::Message& message) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  const auto printed = google::protobuf::util::MessageToJsonString(message, &text, options);
  if (!printed.ok()) {
    return absl::InternalError(absl::StrCat("cannot print ", message.GetDescriptor()->full_name(),
                                            " as JSON: ", std::string(printed.message())));
  }
  return ParseJson(text);
}

absl::StatusOr<JsonValue> ProtoBytesToJson(const Descriptor& type, absl::string_view bytes) {
  google::protobuf::DynamicMessageFactory factory(type.file()->pool());
  std::unique_ptr<google::protobuf::Message> message(factory.GetPrototype(&type)->New());
  if (!message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat(bytes.size(), " bytes are not a valid ", type.full_name(), " message"));
  }
  return MessageToJson(*message);
}

}  // namespace callmesh::cli
