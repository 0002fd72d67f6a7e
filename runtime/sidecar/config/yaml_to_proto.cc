#include "runtime/sidecar/config/yaml_to_proto.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "runtime/common/proto_time.h"
#include "runtime/common/quoted.h"
#include "runtime/common/status_macros.h"
#include "runtime/common/suggest.h"
#include "yaml-cpp/yaml.h"

namespace callmesh::sidecar {
namespace {

namespace pb = google::protobuf;
using FieldDescriptor = pb::FieldDescriptor;

constexpr absl::string_view kDurationTypeName = "google.protobuf.Duration";

SourcePosition PositionOfMark(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

SourcePosition PositionOf(const YAML::Node& node) { return PositionOfMark(node.Mark()); }

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return Quoted(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// ---------------------------------------------------------------------------------------------
// Scalar conversions. Each returns INVALID_ARGUMENT whose message is the bare problem; the
// caller adds the location.

absl::Status Problem(absl::string_view problem) { return absl::InvalidArgumentError(problem); }

bool IsDecimalInteger(absl::string_view text) {
  absl::string_view digits = text;
  if (!digits.empty() && (digits.front() == '-' || digits.front() == '+')) digits.remove_prefix(1);
  return !digits.empty() && std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit);
}

// A double, with YAML's (.inf, .nan) and protobuf JSON's (Infinity, NaN) special values.
bool ParseDouble(absl::string_view text, double* out) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == ".inf" || lower == "+.inf" || lower == "infinity" || lower == "+infinity") {
    *out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (lower == "-.inf" || lower == "-infinity") {
    *out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (lower == ".nan" || lower == "nan") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (lower.empty() || absl::ascii_isspace(lower.front()) || absl::ascii_isspace(lower.back())) {
    return false;
  }
  return absl::SimpleAtod(lower, out);
}

absl::Status OutOfRange(absl::string_view text, absl::string_view type, absl::string_view min,
                        absl::string_view max) {
  return Problem(absl::StrCat("out of range for ", type, " (", min, " to ", max, "), got ", text));
}

// An integer written as a number that is not decimal digits ("1e6", "2.0", ".inf"), for an
// integer field; `expected` says what the field takes ("an integer").
absl::StatusOr<double> ParseIntegralNumber(absl::string_view text, absl::string_view expected) {
  double value;
  if (!ParseDouble(text, &value) || std::isnan(value)) {
    return Problem(absl::StrCat("expected ", expected, ", got ", Quoted(text)));
  }
  if (std::isfinite(value) && value != std::trunc(value)) {
    return Problem(absl::StrCat("expected an integer, got fraction ", text));
  }
  return value;
}

absl::StatusOr<int64_t> ParseSigned(absl::string_view text, int64_t min, int64_t max,
                                    absl::string_view type) {
  if (IsDecimalInteger(text)) {
    int64_t value;
    if (!absl::SimpleAtoi(text, &value) || value < min || value > max) {
      return OutOfRange(text, type, absl::StrCat(min), absl::StrCat(max));
    }
    return value;
  }
  CALLMESH_ASSIGN_OR_RETURN(const double value, ParseIntegralNumber(text, "an integer"));
  // static_cast<double>(max) + 1 is exactly 2^31 or 2^63.
  if (!(value >= static_cast<double>(min) && value < static_cast<double>(max) + 1.0)) {
    return OutOfRange(text, type, absl::StrCat(min), absl::StrCat(max));
  }
  return static_cast<int64_t>(value);
}

absl::StatusOr<uint64_t> ParseUnsigned(absl::string_view text, uint64_t max,
                                       absl::string_view type) {
  if (IsDecimalInteger(text)) {
    if (text.front() == '-') {
      if (text.find_first_not_of("-0") == absl::string_view::npos) return 0;
      return Problem(absl::StrCat("must not be negative (", type, "), got ", text));
    }
    uint64_t value;
    if (!absl::SimpleAtoi(text, &value) || value > max) {
      return OutOfRange(text, type, "0", absl::StrCat(max));
    }
    return value;
  }
  CALLMESH_ASSIGN_OR_RETURN(const double value,
                            ParseIntegralNumber(text, "a non-negative integer"));
  if (value < 0) return Problem(absl::StrCat("must not be negative (", type, "), got ", text));
  // static_cast<double>(max) + 1 is exactly 2^32 or 2^64.
  if (!(value < static_cast<double>(max) + 1.0)) {
    return OutOfRange(text, type, "0", absl::StrCat(max));
  }
  return static_cast<uint64_t>(value);
}

absl::StatusOr<double> ParseNumber(absl::string_view text, bool is_float) {
  double value;
  if (!ParseDouble(text, &value)) {
    return Problem(absl::StrCat("expected a number, got ", Quoted(text)));
  }
  if (is_float && std::isfinite(value) &&
      std::abs(value) > static_cast<double>(std::numeric_limits<float>::max())) {
    return Problem(absl::StrCat("out of range for float, got ", text));
  }
  return value;
}

absl::StatusOr<bool> ParseBool(absl::string_view text) {
  if (absl::EqualsIgnoreCase(text, "true")) return true;
  if (absl::EqualsIgnoreCase(text, "false")) return false;
  return Problem(absl::StrCat("expected true or false, got ", Quoted(text)));
}

absl::StatusOr<int> ParseEnum(const pb::EnumDescriptor* type, absl::string_view text) {
  if (const pb::EnumValueDescriptor* value = type->FindValueByName(std::string(text))) {
    return value->number();
  }
  std::vector<std::string> names;
  for (int i = 0; i < type->value_count(); ++i) {
    if (absl::EqualsIgnoreCase(type->value(i)->name(), text)) return type->value(i)->number();
    names.push_back(type->value(i)->name());
  }
  int number;
  if (IsDecimalInteger(text) && absl::SimpleAtoi(text, &number) &&
      type->FindValueByNumber(number) != nullptr) {
    return number;
  }
  return Problem(absl::StrCat("unknown ", type->name(), " ", Quoted(text), "; expected one of ",
                              absl::StrJoin(names, ", ")));
}

// Sets a google.protobuf.Duration (by reflection, so dynamic messages work too).
void SetDurationMessage(absl::Duration duration, pb::Message* message) {
  const google::protobuf::Duration proto = ToProtoDuration(duration);
  const pb::Descriptor* type = message->GetDescriptor();
  const pb::Reflection* reflection = message->GetReflection();
  reflection->SetInt64(message, type->FindFieldByName("seconds"), proto.seconds());
  reflection->SetInt32(message, type->FindFieldByName("nanos"), proto.nanos());
}

std::string ExpectedKind(const FieldDescriptor* field) {
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
      return "an integer";
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return "a non-negative integer";
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      return "a number";
    case FieldDescriptor::CPPTYPE_BOOL:
      return "true or false";
    case FieldDescriptor::CPPTYPE_ENUM:
      return absl::StrCat("a ", field->enum_type()->name(), " name");
    case FieldDescriptor::CPPTYPE_STRING:
      return field->type() == FieldDescriptor::TYPE_BYTES ? "base64 text" : "a string";
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return "a mapping";
  }
  return "a value";
}

// ---------------------------------------------------------------------------------------------
// YAML -> protobuf message, by reflection.

class Mapper {
 public:
  // `positions` (optional) receives where each key path appears.
  explicit Mapper(SourcePositions* positions) : positions_(positions) {}

  // Sets the field spelled `name` (proto or JSON name) of `message` from `value`.
  absl::Status KeyValue(const std::string& name, const YAML::Node& value,
                        pb::Message* message) const {
    const FieldDescriptor* field = FindField(message->GetDescriptor(), name);
    if (field == nullptr) {
      return Error(value, name, UnknownKeyProblem(message->GetDescriptor(), name));
    }
    return FieldValue(value, field->name(), field, message);
  }

  // Fills `message` (a message type, or google.protobuf.Duration) from `node`, which is not null.
  absl::Status MessageValue(const YAML::Node& node, const std::string& path,
                            pb::Message* message) const {
    // Recursive message types and cyclic YAML aliases ("&x [*x]") must not recurse forever.
    if (depth_ >= kMaxDepth) return Error(node, path, "nested too deeply");
    ++depth_;
    absl::Status status = MessageValueAtDepth(node, path, message);
    --depth_;
    return status;
  }

 private:
  static constexpr int kMaxDepth = 64;

  absl::Status MessageValueAtDepth(const YAML::Node& node, const std::string& path,
                                   pb::Message* message) const {
    const pb::Descriptor* type = message->GetDescriptor();
    if (type->full_name() == kDurationTypeName) {
      if (!node.IsScalar()) {
        return Error(node, path,
                     absl::StrCat("expected a duration such as \"5s\", got ", Describe(node)));
      }
      absl::StatusOr<absl::Duration> duration = ParseDurationText(node.Scalar());
      if (!duration.ok()) return Error(node, path, duration.status().message());
      SetDurationMessage(*duration, message);
      return absl::OkStatus();
    }
    if (!node.IsMap()) {
      return Error(node, path, absl::StrCat("expected a mapping, got ", Describe(node)));
    }
    // Field number -> how the key was spelled and where.
    std::map<int, std::pair<std::string, SourcePosition>> seen;
    std::map<const pb::OneofDescriptor*, const FieldDescriptor*> oneofs_set;
    for (YAML::const_iterator it = node.begin(); it != node.end(); ++it) {
      const YAML::Node& key = it->first;
      const YAML::Node& value = it->second;
      if (!key.IsScalar()) {
        return Error(key, path, absl::StrCat("keys must be field names, got ", Describe(key)));
      }
      const std::string& name = key.Scalar();
      const FieldDescriptor* field = FindField(type, name);
      if (field == nullptr) return Error(key, FieldPath(path, name), UnknownKeyProblem(type, name));
      const std::string child = FieldPath(path, field->name());
      const auto [previous, inserted] =
          seen.emplace(field->number(), std::make_pair(name, PositionOf(key)));
      if (!inserted) {
        std::string problem =
            absl::StrCat("key given twice (first as ", Quoted(previous->second.first));
        if (previous->second.second.known()) {
          absl::StrAppend(&problem, " at line ", previous->second.second.line);
        }
        return Error(key, child, absl::StrCat(problem, ")"));
      }
      Record(child, value.IsNull() ? key : value);
      if (value.IsNull()) continue;  // Leaves the field unset.
      if (const pb::OneofDescriptor* oneof = field->real_containing_oneof()) {
        const auto [other, first] = oneofs_set.emplace(oneof, field);
        if (!first) {
          return Error(key, child,
                       absl::StrCat("cannot be set together with ", Quoted(other->second->name()),
                                    " (both belong to oneof ", Quoted(oneof->name()), ")"));
        }
      }
      CALLMESH_RETURN_IF_ERROR(FieldValue(value, child, field, message));
    }
    return absl::OkStatus();
  }

  absl::Status Error(const YAML::Node& node, absl::string_view path,
                     absl::string_view problem) const {
    return absl::InvalidArgumentError(
        FormatSourceError(positions_->origin(), PositionOf(node), path, problem));
  }

  void Record(const std::string& path, const YAML::Node& node) const {
    positions_->Set(path, PositionOf(node));
  }

  // By proto name, else by JSON (lowerCamelCase) name.
  static const FieldDescriptor* FindField(const pb::Descriptor* type, const std::string& name) {
    if (const FieldDescriptor* field = type->FindFieldByName(name)) return field;
    for (int i = 0; i < type->field_count(); ++i) {
      if (type->field(i)->json_name() == name) return type->field(i);
    }
    return nullptr;
  }

  static std::string UnknownKeyProblem(const pb::Descriptor* type, absl::string_view key) {
    std::vector<std::string> names;
    std::vector<std::string> spellings;  // Both spellings of every field, proto name first.
    std::map<std::string, std::string> proto_name;
    for (int i = 0; i < type->field_count(); ++i) {
      const FieldDescriptor* field = type->field(i);
      names.push_back(field->name());
      for (const std::string& spelling : {field->name(), field->json_name()}) {
        spellings.push_back(spelling);
        proto_name.emplace(spelling, field->name());
      }
    }
    const std::string hint = ClosestMatch(key, spellings);
    if (!hint.empty()) return absl::StrCat("unknown key; did you mean \"", proto_name[hint], "\"?");
    if (names.empty()) return "unknown key; this message has no fields";
    return absl::StrCat("unknown key; valid keys are ", absl::StrJoin(names, ", "));
  }

  // Sets `field` of `message` from `value`, which is not null.
  absl::Status FieldValue(const YAML::Node& value, const std::string& path,
                          const FieldDescriptor* field, pb::Message* message) const {
    const pb::Reflection* reflection = message->GetReflection();
    if (field->is_map()) return MapValue(value, path, field, message);
    if (field->is_repeated()) {
      if (!value.IsSequence()) {
        return Error(value, path, absl::StrCat("expected a list, got ", Describe(value)));
      }
      int index = 0;
      for (YAML::const_iterator it = value.begin(); it != value.end(); ++it, ++index) {
        const YAML::Node& element = *it;
        const std::string element_path = IndexPath(path, index);
        Record(element_path, element);
        if (element.IsNull()) return Error(element, element_path, "list elements must not be null");
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          CALLMESH_RETURN_IF_ERROR(
              MessageValue(element, element_path, reflection->AddMessage(message, field)));
        } else {
          CALLMESH_RETURN_IF_ERROR(ScalarValue(element, element_path, field, message));
        }
      }
      return absl::OkStatus();
    }
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      return MessageValue(value, path, reflection->MutableMessage(message, field));
    }
    return ScalarValue(value, path, field, message);
  }

  absl::Status MapValue(const YAML::Node& node, const std::string& path,
                        const FieldDescriptor* field, pb::Message* message) const {
    if (!node.IsMap()) {
      return Error(node, path, absl::StrCat("expected a mapping, got ", Describe(node)));
    }
    const FieldDescriptor* key_field = field->message_type()->map_key();
    const FieldDescriptor* value_field = field->message_type()->map_value();
    std::map<std::string, SourcePosition> seen;
    for (YAML::const_iterator it = node.begin(); it != node.end(); ++it) {
      const YAML::Node& key = it->first;
      const YAML::Node& value = it->second;
      if (!key.IsScalar()) {
        return Error(key, path, absl::StrCat("map keys must be scalars, got ", Describe(key)));
      }
      const std::string& key_text = key.Scalar();
      const std::string entry_path = key_field->cpp_type() == FieldDescriptor::CPPTYPE_STRING
                                         ? StringKeyPath(path, key_text)
                                         : absl::StrCat(path, "[", key_text, "]");
      const auto [previous, inserted] = seen.emplace(key_text, PositionOf(key));
      if (!inserted) {
        return Error(key, entry_path,
                     previous->second.known() ? absl::StrCat("key given twice (first at line ",
                                                             previous->second.line, ")")
                                              : std::string("key given twice"));
      }
      pb::Message* entry = message->GetReflection()->AddMessage(message, field);
      CALLMESH_RETURN_IF_ERROR(ScalarValue(key, entry_path, key_field, entry));
      Record(entry_path, value.IsNull() ? key : value);
      if (value.IsNull()) continue;  // The key with the default value.
      if (value_field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        CALLMESH_RETURN_IF_ERROR(MessageValue(
            value, entry_path, entry->GetReflection()->MutableMessage(entry, value_field)));
      } else {
        CALLMESH_RETURN_IF_ERROR(ScalarValue(value, entry_path, value_field, entry));
      }
    }
    return absl::OkStatus();
  }

  // Sets (or, for repeated fields, adds) a non-message value.
  absl::Status ScalarValue(const YAML::Node& node, const std::string& path,
                           const FieldDescriptor* field, pb::Message* message) const {
    if (!node.IsScalar()) {
      return Error(node, path,
                   absl::StrCat("expected ", ExpectedKind(field), ", got ", Describe(node)));
    }
    const std::string& text = node.Scalar();
    const pb::Reflection* reflection = message->GetReflection();
    const bool add = field->is_repeated();
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: {
        absl::StatusOr<int64_t> value = ParseSigned(text, std::numeric_limits<int32_t>::min(),
                                                    std::numeric_limits<int32_t>::max(), "int32");
        if (!value.ok()) return Error(node, path, value.status().message());
        const auto v = static_cast<int32_t>(*value);
        add ? reflection->AddInt32(message, field, v) : reflection->SetInt32(message, field, v);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        absl::StatusOr<int64_t> value = ParseSigned(text, std::numeric_limits<int64_t>::min(),
                                                    std::numeric_limits<int64_t>::max(), "int64");
        if (!value.ok()) return Error(node, path, value.status().message());
        add ? reflection->AddInt64(message, field, *value)
            : reflection->SetInt64(message, field, *value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        absl::StatusOr<uint64_t> value =
            ParseUnsigned(text, std::numeric_limits<uint32_t>::max(), "uint32");
        if (!value.ok()) return Error(node, path, value.status().message());
        const auto v = static_cast<uint32_t>(*value);
        add ? reflection->AddUInt32(message, field, v) : reflection->SetUInt32(message, field, v);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        absl::StatusOr<uint64_t> value =
            ParseUnsigned(text, std::numeric_limits<uint64_t>::max(), "uint64");
        if (!value.ok()) return Error(node, path, value.status().message());
        add ? reflection->AddUInt64(message, field, *value)
            : reflection->SetUInt64(message, field, *value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_DOUBLE: {
        absl::StatusOr<double> value = ParseNumber(text, /*is_float=*/false);
        if (!value.ok()) return Error(node, path, value.status().message());
        add ? reflection->AddDouble(message, field, *value)
            : reflection->SetDouble(message, field, *value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_FLOAT: {
        absl::StatusOr<double> value = ParseNumber(text, /*is_float=*/true);
        if (!value.ok()) return Error(node, path, value.status().message());
        const auto v = static_cast<float>(*value);
        add ? reflection->AddFloat(message, field, v) : reflection->SetFloat(message, field, v);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        absl::StatusOr<bool> value = ParseBool(text);
        if (!value.ok()) return Error(node, path, value.status().message());
        add ? reflection->AddBool(message, field, *value)
            : reflection->SetBool(message, field, *value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        absl::StatusOr<int> value = ParseEnum(field->enum_type(), text);
        if (!value.ok()) return Error(node, path, value.status().message());
        add ? reflection->AddEnumValue(message, field, *value)
            : reflection->SetEnumValue(message, field, *value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string value = text;
        if (field->type() == FieldDescriptor::TYPE_BYTES && !absl::Base64Unescape(text, &value) &&
            !absl::WebSafeBase64Unescape(text, &value)) {
          return Error(node, path, absl::StrCat("expected base64 text, got ", Quoted(text)));
        }
        add ? reflection->AddString(message, field, std::move(value))
            : reflection->SetString(message, field, std::move(value));
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;
    }
    return Error(node, path, "unsupported field type");
  }

  SourcePositions* positions_;
  mutable int depth_ = 0;
};

}  // namespace

absl::Status YamlToProto(absl::string_view text, google::protobuf::Message* message,
                         SourcePositions* positions) {
  const std::string& origin = positions->origin();
  try {
    const std::vector<YAML::Node> documents = YAML::LoadAll(std::string(text));
    std::vector<const YAML::Node*> non_empty;
    for (const YAML::Node& document : documents) {
      if (!document.IsNull()) non_empty.push_back(&document);
    }
    if (non_empty.empty()) return absl::OkStatus();  // Empty text, or comments only.
    if (non_empty.size() > 1) {
      return absl::InvalidArgumentError(FormatSourceError(
          origin, PositionOf(*non_empty[1]), "",
          absl::StrCat("expected a single YAML document, found ", non_empty.size())));
    }
    const YAML::Node& root = *non_empty[0];
    if (!root.IsMap()) {
      const pb::Descriptor* type = message->GetDescriptor();
      const std::string example = type->field_count() > 0 ? type->field(0)->name() : "key";
      return absl::InvalidArgumentError(
          FormatSourceError(origin, PositionOf(root), "",
                            absl::StrCat("the top level must be a mapping of keys (such as \"",
                                         example, ": ...\"), got ", Describe(root))));
    }
    return Mapper(positions).MessageValue(root, "", message);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(FormatSourceError(origin, PositionOfMark(e.mark), "", e.msg));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(origin, ": unexpected error: ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(origin, ": unexpected error"));
  }
}

absl::Status ScalarToProtoField(absl::string_view key, absl::string_view text,
                                google::protobuf::Message* message, SourcePositions* positions) {
  try {
    return Mapper(positions).KeyValue(std::string(key), YAML::Node(std::string(text)), message);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(positions->origin(), ": unexpected error: ", e.what()));
  }
}

}  // namespace callmesh::sidecar
