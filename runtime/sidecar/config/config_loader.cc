#include "runtime/sidecar/config/config_loader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/message.h"
#include "runtime/common/proto_time.h"
#include "runtime/common/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace callmesh::sidecar {
namespace {

namespace pb = google::protobuf;
using FieldDescriptor = pb::FieldDescriptor;

constexpr size_t kMaxConfigFileBytes = 16 << 20;
// The range of google.protobuf.Duration: +-10000 years.
constexpr int64_t kMaxDurationSeconds = 315576000000;
constexpr uint64_t kMaxPayloadBytesLimit = 64 << 20;
constexpr absl::string_view kDurationTypeName = "google.protobuf.Duration";

// gRPC status code names, indexed by code.
constexpr absl::string_view kStatusCodeNames[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

// ---------------------------------------------------------------------------------------------
// Positions, key paths and error messages.

// A 1-based line and column in the source; 0 when unknown.
struct Position {
  int line = 0;
  int column = 0;
  bool known() const { return line > 0; }
};

// Where each key path (of a value, or of its key when the value is null) appears in the source.
using PositionMap = std::map<std::string, Position>;

Position PositionOfMark(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

Position PositionOf(const YAML::Node& node) { return PositionOfMark(node.Mark()); }

// "<origin>:<line>:<column>: <path>: <problem>", leaving out the unknown parts.
std::string FormatError(absl::string_view origin, Position position, absl::string_view path,
                        absl::string_view problem) {
  std::string out(origin);
  if (position.known()) absl::StrAppend(&out, ":", position.line, ":", position.column);
  absl::StrAppend(&out, ": ");
  if (!path.empty()) absl::StrAppend(&out, path, ": ");
  absl::StrAppend(&out, problem);
  return out;
}

std::string FieldPath(absl::string_view parent, absl::string_view name) {
  return parent.empty() ? std::string(name) : absl::StrCat(parent, ".", name);
}

std::string IndexPath(absl::string_view parent, int index) {
  return absl::StrCat(parent, "[", index, "]");
}

std::string StringKeyPath(absl::string_view parent, absl::string_view key) {
  return absl::StrCat(parent, "[\"", absl::CEscape(key), "\"]");
}

// `text` in double quotes, escaped, shortened if long.
std::string Quote(absl::string_view text) {
  constexpr size_t kMaxShown = 80;
  if (text.size() > kMaxShown) {
    return absl::StrCat("\"", absl::CEscape(text.substr(0, kMaxShown)), "...\"");
  }
  return absl::StrCat("\"", absl::CEscape(text), "\"");
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return Quote(node.Scalar());
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

// The longest prefix of `path` (cut at '.' or '[' outside quoted map keys) found in `positions`.
Position ClosestPosition(const PositionMap& positions, absl::string_view path) {
  std::vector<size_t> ends;
  bool quoted = false;
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '.' || c == '[') {
      ends.push_back(i);
    }
  }
  ends.push_back(path.size());
  for (auto end = ends.rbegin(); end != ends.rend(); ++end) {
    auto found = positions.find(std::string(path.substr(0, *end)));
    if (found != positions.end() && found->second.known()) return found->second;
  }
  return {};
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> previous(b.size() + 1);
  std::vector<size_t> current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
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

absl::StatusOr<int64_t> ParseSigned(absl::string_view text, int64_t min, int64_t max,
                                    absl::string_view type) {
  if (IsDecimalInteger(text)) {
    int64_t value;
    if (!absl::SimpleAtoi(text, &value) || value < min || value > max) {
      return OutOfRange(text, type, absl::StrCat(min), absl::StrCat(max));
    }
    return value;
  }
  double value;
  if (!ParseDouble(text, &value) || std::isnan(value)) {
    return Problem(absl::StrCat("expected an integer, got ", Quote(text)));
  }
  if (std::isfinite(value) && value != std::trunc(value)) {
    return Problem(absl::StrCat("expected an integer, got fraction ", text));
  }
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
  double value;
  if (!ParseDouble(text, &value) || std::isnan(value)) {
    return Problem(absl::StrCat("expected a non-negative integer, got ", Quote(text)));
  }
  if (std::isfinite(value) && value != std::trunc(value)) {
    return Problem(absl::StrCat("expected an integer, got fraction ", text));
  }
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
    return Problem(absl::StrCat("expected a number, got ", Quote(text)));
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
  return Problem(absl::StrCat("expected true or false, got ", Quote(text)));
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
  return Problem(absl::StrCat("unknown ", type->name(), " ", Quote(text), "; expected one of ",
                              absl::StrJoin(names, ", ")));
}

absl::StatusOr<absl::Duration> ParseDurationText(absl::string_view text) {
  absl::Duration duration;
  double seconds;
  if (ParseDouble(text, &seconds)) {
    if (!std::isfinite(seconds)) {
      return Problem(absl::StrCat("duration must be finite, got ", Quote(text)));
    }
    if (seconds < 0) return Problem(absl::StrCat("duration must not be negative, got ", text));
    if (seconds > static_cast<double>(kMaxDurationSeconds)) {
      return Problem(
          absl::StrCat("duration out of range (at most ", kMaxDurationSeconds, "s), got ", text));
    }
    duration = absl::Seconds(seconds);
  } else if (absl::ParseDuration(std::string(text), &duration)) {
    if (duration == absl::InfiniteDuration() || duration == -absl::InfiniteDuration()) {
      return Problem(absl::StrCat("duration must be finite, got ", Quote(text)));
    }
    if (duration < absl::ZeroDuration()) {
      return Problem(absl::StrCat("duration must not be negative, got ", Quote(text)));
    }
  } else {
    return Problem(absl::StrCat(
        "invalid duration ", Quote(text),
        "; expected a number with a unit (ns, us, ms, s, m, h) such as \"250ms\", \"5s\", "
        "\"1m30s\" or \"1h\", or a number of seconds"));
  }
  if (duration > absl::Seconds(kMaxDurationSeconds)) {
    return Problem(
        absl::StrCat("duration out of range (at most ", kMaxDurationSeconds, "s), got ", text));
  }
  return duration;
}

// Sets a google.protobuf.Duration (by reflection, so dynamic messages work too).
void SetDurationMessage(absl::Duration duration, pb::Message* message) {
  absl::Duration remainder;
  const int64_t seconds = absl::IDivDuration(duration, absl::Seconds(1), &remainder);
  const int32_t nanos = static_cast<int32_t>(remainder / absl::Nanoseconds(1));
  const pb::Descriptor* type = message->GetDescriptor();
  const pb::Reflection* reflection = message->GetReflection();
  reflection->SetInt64(message, type->FindFieldByName("seconds"), seconds);
  reflection->SetInt32(message, type->FindFieldByName("nanos"), nanos);
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

class YamlToProto {
 public:
  // `positions` (optional) receives where each key path appears.
  YamlToProto(absl::string_view origin, PositionMap* positions)
      : origin_(origin), positions_(positions) {}

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
    std::map<int, std::pair<std::string, Position>> seen;
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
            absl::StrCat("key given twice (first as ", Quote(previous->second.first));
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
                       absl::StrCat("cannot be set together with ", Quote(other->second->name()),
                                    " (both belong to oneof ", Quote(oneof->name()), ")"));
        }
      }
      CALLMESH_RETURN_IF_ERROR(FieldValue(value, child, field, message));
    }
    return absl::OkStatus();
  }

  absl::Status Error(const YAML::Node& node, absl::string_view path,
                     absl::string_view problem) const {
    return absl::InvalidArgumentError(FormatError(origin_, PositionOf(node), path, problem));
  }

  void Record(const std::string& path, const YAML::Node& node) const {
    if (positions_ != nullptr) (*positions_)[path] = PositionOf(node);
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
    const std::string lower_key = absl::AsciiStrToLower(key);
    std::vector<std::string> names;
    const FieldDescriptor* best = nullptr;
    size_t best_distance = std::numeric_limits<size_t>::max();
    for (int i = 0; i < type->field_count(); ++i) {
      const FieldDescriptor* field = type->field(i);
      names.push_back(field->name());
      for (const std::string& candidate : {field->name(), field->json_name()}) {
        const size_t distance = EditDistance(lower_key, absl::AsciiStrToLower(candidate));
        if (distance < best_distance) {
          best_distance = distance;
          best = field;
        }
      }
    }
    const size_t threshold = std::clamp<size_t>(key.size() / 3, 1, 3);
    if (best != nullptr && best_distance <= threshold) {
      return absl::StrCat("unknown key; did you mean \"", best->name(), "\"?");
    }
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
    std::map<std::string, Position> seen;
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
          return Error(node, path, absl::StrCat("expected base64 text, got ", Quote(text)));
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

  std::string origin_;
  PositionMap* positions_;
  mutable int depth_ = 0;
};

absl::StatusOr<v1::SidecarConfig> ParseConfigImpl(absl::string_view text,
                                                  absl::string_view origin_in,
                                                  PositionMap* positions) {
  const std::string origin = origin_in.empty() ? std::string("<config>") : std::string(origin_in);
  try {
    const std::vector<YAML::Node> documents = YAML::LoadAll(std::string(text));
    std::vector<const YAML::Node*> non_empty;
    for (const YAML::Node& document : documents) {
      if (!document.IsNull()) non_empty.push_back(&document);
    }
    v1::SidecarConfig config;
    if (non_empty.empty()) return config;  // Empty text, or comments only.
    if (non_empty.size() > 1) {
      return absl::InvalidArgumentError(
          FormatError(origin, PositionOf(*non_empty[1]), "",
                      absl::StrCat("expected a single YAML document, found ", non_empty.size())));
    }
    const YAML::Node& root = *non_empty[0];
    if (!root.IsMap()) {
      return absl::InvalidArgumentError(FormatError(
          origin, PositionOf(root), "",
          absl::StrCat("the top level must be a mapping of keys (such as \"listen: ...\"), got ",
                       Describe(root))));
    }
    CALLMESH_RETURN_IF_ERROR(YamlToProto(origin, positions).MessageValue(root, "", &config));
    return config;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(FormatError(origin, PositionOfMark(e.mark), "", e.msg));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(origin, ": unexpected error: ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(origin, ": unexpected error"));
  }
}

absl::StatusOr<std::string> ReadConfigFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat(path, ": cannot open config file"));
  std::string text;
  char buffer[64 << 10];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return absl::ErrnoToStatus(error, absl::StrCat(path, ": cannot read config file"));
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > kMaxConfigFileBytes) {
      ::close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": config file is larger than ", kMaxConfigFileBytes >> 20, " MiB"));
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Defaults.

void SetDuration(google::protobuf::Duration* proto, absl::Duration duration) {
  SetDurationMessage(duration, proto);
}

// Whether `field_name` of `message` is set: present, for fields with presence; else non-zero.
bool IsSet(const pb::Message& message, const std::string& field_name) {
  const FieldDescriptor* field = message.GetDescriptor()->FindFieldByName(field_name);
  return field != nullptr && message.GetReflection()->HasField(message, field);
}

void FillRetryDefaults(v1::RetryPolicy* policy) {
  if (policy->max_attempts() == 0) policy->set_max_attempts(5);
  if (!policy->has_initial_backoff()) {
    SetDuration(policy->mutable_initial_backoff(), absl::Milliseconds(100));
  }
  if (!policy->has_max_backoff()) SetDuration(policy->mutable_max_backoff(), absl::Seconds(30));
  if (!IsSet(*policy, "backoff_multiplier")) policy->set_backoff_multiplier(2.0);
  if (!IsSet(*policy, "jitter")) policy->set_jitter(0.2);
  if (policy->retryable_codes().empty()) {
    policy->add_retryable_codes("UNAVAILABLE");
    policy->add_retryable_codes("RESOURCE_EXHAUSTED");
    policy->add_retryable_codes("ABORTED");
  }
}

// ---------------------------------------------------------------------------------------------
// Validation.

struct Violation {
  std::string path;
  std::string problem;
};

using MaybeViolation = std::optional<Violation>;

// Problems of a Duration message itself: out of its range, or negative.
std::optional<std::string> CheckDuration(const google::protobuf::Duration& duration) {
  if (duration.seconds() < -kMaxDurationSeconds || duration.seconds() > kMaxDurationSeconds ||
      duration.nanos() <= -1000000000 || duration.nanos() >= 1000000000 ||
      (duration.seconds() > 0 && duration.nanos() < 0) ||
      (duration.seconds() < 0 && duration.nanos() > 0)) {
    return absl::StrCat("invalid duration (seconds ", duration.seconds(), ", nanos ",
                        duration.nanos(), ")");
  }
  if (FromProtoDuration(duration) < absl::ZeroDuration()) {
    return absl::StrCat("must not be negative, got ",
                        absl::FormatDuration(FromProtoDuration(duration)));
  }
  return std::nullopt;
}

MaybeViolation CheckPositiveDuration(const google::protobuf::Duration& duration,
                                     const std::string& path) {
  if (auto problem = CheckDuration(duration)) return Violation{path, *problem};
  if (FromProtoDuration(duration) <= absl::ZeroDuration()) {
    return Violation{
        path, absl::StrCat("must be > 0, got ", absl::FormatDuration(FromProtoDuration(duration)))};
  }
  return std::nullopt;
}

MaybeViolation CheckNonNegativeDuration(const google::protobuf::Duration& duration,
                                        const std::string& path) {
  if (auto problem = CheckDuration(duration)) return Violation{path, *problem};
  return std::nullopt;
}

std::optional<std::string> CheckName(absl::string_view name) {
  if (name.empty()) return std::string("is required");
  if (name.size() > 128) {
    return absl::StrCat("must be at most 128 characters, got ", name.size());
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
      return absl::StrCat("may only contain letters, digits, '.', '_' and '-', got ", Quote(name));
    }
  }
  return std::nullopt;
}

bool IsHostChar(char c) { return absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '_'; }

bool IsIpv6Char(char c) { return absl::ascii_isxdigit(c) || c == ':' || c == '.' || c == '%'; }

// "host:port" (IPv6 hosts in brackets) with a port from `min_port` to 65535.
std::optional<std::string> CheckHostPort(absl::string_view address, int min_port) {
  const std::string shown = Quote(address);
  if (address.empty()) return std::string("is required (host:port)");
  absl::string_view port;
  if (address.front() == '[') {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos) {
      return absl::StrCat("must be host:port, got ", shown, " (no ']' after the IPv6 host)");
    }
    const absl::string_view host = address.substr(1, close - 1);
    if (host.empty() || host.find(':') == absl::string_view::npos ||
        !std::all_of(host.begin(), host.end(), IsIpv6Char)) {
      return absl::StrCat("has an invalid IPv6 host in ", shown);
    }
    if (close + 1 >= address.size() || address[close + 1] != ':') {
      return absl::StrCat("must be host:port, got ", shown);
    }
    port = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) return absl::StrCat("must be host:port, got ", shown);
    const absl::string_view host = address.substr(0, colon);
    if (host.find(':') != absl::string_view::npos) {
      return absl::StrCat("must be host:port with IPv6 hosts in brackets (\"[::1]:50051\"), got ",
                          shown);
    }
    if (host.empty()) return absl::StrCat("must be host:port, got ", shown, " (no host)");
    if (!std::all_of(host.begin(), host.end(), IsHostChar)) {
      return absl::StrCat("has an invalid host in ", shown);
    }
    port = address.substr(colon + 1);
  }
  int port_number = -1;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port, &port_number) || port_number < min_port || port_number > 65535) {
    return absl::StrCat("must be host:port with a port from ", min_port, " to 65535, got ", shown);
  }
  return std::nullopt;
}

bool IsIdentifier(absl::string_view text) {
  if (text.empty() || !(absl::ascii_isalpha(text.front()) || text.front() == '_')) return false;
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

// "package.Service/Method", a leading '/' accepted.
std::optional<std::string> CheckMethodName(absl::string_view method) {
  const std::string problem =
      absl::StrCat("must be a gRPC method \"package.Service/Method\", got ", Quote(method));
  if (method.empty()) return std::string("is required (\"package.Service/Method\")");
  absl::string_view rest = method;
  absl::ConsumePrefix(&rest, "/");
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos || !IsIdentifier(rest.substr(slash + 1))) return problem;
  for (absl::string_view part : absl::StrSplit(rest.substr(0, slash), '.')) {
    if (!IsIdentifier(part)) return problem;
  }
  return std::nullopt;
}

MaybeViolation CheckRetryPolicy(const v1::RetryPolicy& policy, const std::string& path) {
  if (policy.max_attempts() < 1) {
    return Violation{FieldPath(path, "max_attempts"),
                     absl::StrCat("must be >= 1, got ", policy.max_attempts())};
  }
  if (auto v =
          CheckPositiveDuration(policy.initial_backoff(), FieldPath(path, "initial_backoff"))) {
    return v;
  }
  if (auto v = CheckNonNegativeDuration(policy.max_backoff(), FieldPath(path, "max_backoff"))) {
    return v;
  }
  if (FromProtoDuration(policy.max_backoff()) < FromProtoDuration(policy.initial_backoff())) {
    return Violation{
        FieldPath(path, "max_backoff"),
        absl::StrCat("must be >= initial_backoff (",
                     absl::FormatDuration(FromProtoDuration(policy.initial_backoff())), "), got ",
                     absl::FormatDuration(FromProtoDuration(policy.max_backoff())))};
  }
  const double multiplier = policy.backoff_multiplier();
  if (!(multiplier >= 1) || std::isinf(multiplier)) {
    return Violation{FieldPath(path, "backoff_multiplier"),
                     absl::StrCat("must be >= 1 and finite, got ", multiplier)};
  }
  const double jitter = policy.jitter();
  if (!(jitter >= 0 && jitter <= 1)) {
    return Violation{FieldPath(path, "jitter"),
                     absl::StrCat("must be between 0 and 1, got ", jitter)};
  }
  for (int i = 0; i < policy.retryable_codes_size(); ++i) {
    const std::string code_path = IndexPath(FieldPath(path, "retryable_codes"), i);
    absl::StatusOr<int> code = ParseStatusCodeName(policy.retryable_codes(i));
    if (!code.ok()) return Violation{code_path, std::string(code.status().message())};
    if (*code == 0) return Violation{code_path, "OK is not an error and cannot be retried"};
  }
  return std::nullopt;
}

MaybeViolation CheckService(const v1::ServiceConfig& service, const std::string& path) {
  if (auto problem = CheckName(service.name())) {
    return Violation{FieldPath(path, "name"), *problem};
  }
  const std::string addresses_path = FieldPath(path, "addresses");
  if (service.addresses().empty()) {
    return Violation{addresses_path, "at least one \"host:port\" is required"};
  }
  for (int i = 0; i < service.addresses_size(); ++i) {
    if (auto problem = CheckHostPort(service.addresses(i), 1)) {
      return Violation{IndexPath(addresses_path, i), *problem};
    }
  }
  if (service.has_retry()) {
    if (auto v = CheckRetryPolicy(service.retry(), FieldPath(path, "retry"))) return v;
  }
  // Sorted, so that the first problem reported does not depend on hash order.
  std::map<std::string, const v1::RetryPolicy*> method_retry;
  for (const auto& [method, policy] : service.method_retry()) method_retry[method] = &policy;
  for (const auto& [method, policy] : method_retry) {
    const std::string method_path = StringKeyPath(FieldPath(path, "method_retry"), method);
    if (auto problem = CheckMethodName(method)) return Violation{method_path, *problem};
    if (auto v = CheckRetryPolicy(*policy, method_path)) return v;
  }
  if (service.has_attempt_timeout()) {
    if (auto v =
            CheckPositiveDuration(service.attempt_timeout(), FieldPath(path, "attempt_timeout"))) {
      return v;
    }
  }
  if (service.max_in_flight() < 1) {
    return Violation{FieldPath(path, "max_in_flight"),
                     absl::StrCat("must be >= 1, got ", service.max_in_flight())};
  }
  for (int i = 0; i < service.subscriptions_size(); ++i) {
    const std::string subscription_path = IndexPath(FieldPath(path, "subscriptions"), i);
    const v1::Subscription& subscription = service.subscriptions(i);
    if (subscription.topic().empty()) {
      return Violation{FieldPath(subscription_path, "topic"), "is required"};
    }
    if (auto problem = CheckMethodName(subscription.method())) {
      return Violation{FieldPath(subscription_path, "method"), *problem};
    }
  }
  return std::nullopt;
}

MaybeViolation FindViolation(const v1::SidecarConfig& config) {
  if (auto problem = CheckHostPort(config.listen(), 0)) return Violation{"listen", *problem};
  if (auto problem = CheckName(config.name())) return Violation{"name", *problem};
  if (config.data_dir().empty()) return Violation{"data_dir", "is required"};
  if (config.max_payload_bytes() < 1 || config.max_payload_bytes() > kMaxPayloadBytesLimit) {
    return Violation{"max_payload_bytes",
                     absl::StrCat("must be between 1 and ", kMaxPayloadBytesLimit,
                                  " (64 MiB), got ", config.max_payload_bytes())};
  }
  if (auto v = CheckPositiveDuration(config.default_attempt_timeout(), "default_attempt_timeout")) {
    return v;
  }
  if (auto v = CheckPositiveDuration(config.default_call_timeout(), "default_call_timeout")) {
    return v;
  }
  if (auto v = CheckPositiveDuration(config.health_check_interval(), "health_check_interval")) {
    return v;
  }
  if (auto v = CheckNonNegativeDuration(config.drain_timeout(), "drain_timeout")) return v;
  if (auto v = CheckNonNegativeDuration(config.result_retention(), "result_retention")) return v;
  const v1::JournalConfig::Durability durability = config.journal().durability();
  if (durability != v1::JournalConfig::FSYNC && durability != v1::JournalConfig::NONE) {
    const pb::EnumValueDescriptor* value =
        v1::JournalConfig::Durability_descriptor()->FindValueByNumber(durability);
    return Violation{"journal.durability",
                     absl::StrCat("must be FSYNC or NONE, got ",
                                  value != nullptr ? value->name() : absl::StrCat(durability))};
  }
  const v1::LimitsConfig& limits = config.limits();
  if (limits.max_pending_calls() < 1) {
    return Violation{"limits.max_pending_calls",
                     absl::StrCat("must be >= 1, got ", limits.max_pending_calls())};
  }
  if (limits.max_in_flight_per_target() < 1) {
    return Violation{"limits.max_in_flight_per_target",
                     absl::StrCat("must be >= 1, got ", limits.max_in_flight_per_target())};
  }
  if (limits.max_sync_in_flight() < 1) {
    return Violation{"limits.max_sync_in_flight",
                     absl::StrCat("must be >= 1, got ", limits.max_sync_in_flight())};
  }
  if (limits.max_watchers() < 1) {
    return Violation{"limits.max_watchers",
                     absl::StrCat("must be >= 1, got ", limits.max_watchers())};
  }
  if (auto v = CheckRetryPolicy(config.default_retry(), "default_retry")) return v;
  if (auto v = CheckRetryPolicy(config.callback_retry(), "callback_retry")) return v;
  static constexpr absl::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};
  if (std::find(std::begin(kLogLevels), std::end(kLogLevels), config.log_level()) ==
      std::end(kLogLevels)) {
    return Violation{"log_level",
                     absl::StrCat("must be one of trace, debug, info, warn, error, got ",
                                  Quote(config.log_level()))};
  }
  std::map<std::string, int> first_index;  // service name -> index
  for (int i = 0; i < config.services_size(); ++i) {
    const std::string path = IndexPath("services", i);
    if (auto v = CheckService(config.services(i), path)) return v;
    const auto [first, inserted] = first_index.emplace(config.services(i).name(), i);
    if (!inserted) {
      return Violation{FieldPath(path, "name"),
                       absl::StrCat("duplicate service name ", Quote(config.services(i).name()),
                                    " (also services[", first->second, "].name)")};
    }
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<v1::SidecarConfig> ParseConfig(absl::string_view text, absl::string_view origin) {
  return ParseConfigImpl(text, origin, nullptr);
}

absl::StatusOr<v1::SidecarConfig> LoadConfigFile(const std::string& path) {
  CALLMESH_ASSIGN_OR_RETURN(const std::string text, ReadConfigFile(path));
  return ParseConfigImpl(text, path, nullptr);
}

void ApplyConfigDefaults(v1::SidecarConfig* config) {
  if (config->listen().empty()) config->set_listen("127.0.0.1:4770");
  if (config->name().empty()) config->set_name("app");
  if (config->data_dir().empty()) config->set_data_dir("./callmesh-data");
  if (config->max_payload_bytes() == 0) config->set_max_payload_bytes(4 << 20);
  if (!config->has_default_attempt_timeout()) {
    SetDuration(config->mutable_default_attempt_timeout(), absl::Seconds(30));
  }
  if (!config->has_default_call_timeout()) {
    SetDuration(config->mutable_default_call_timeout(), absl::Hours(24));
  }
  if (!config->has_health_check_interval()) {
    SetDuration(config->mutable_health_check_interval(), absl::Seconds(2));
  }
  if (!config->has_drain_timeout()) SetDuration(config->mutable_drain_timeout(), absl::Seconds(10));
  if (!config->has_result_retention()) {
    SetDuration(config->mutable_result_retention(), absl::Hours(24));
  }
  if (config->log_level().empty()) config->set_log_level("info");

  v1::JournalConfig* journal = config->mutable_journal();
  if (journal->durability() == v1::JournalConfig::DURABILITY_UNSPECIFIED) {
    journal->set_durability(v1::JournalConfig::FSYNC);
  }
  v1::LimitsConfig* limits = config->mutable_limits();
  if (limits->max_pending_calls() == 0) limits->set_max_pending_calls(1000000);
  if (limits->max_in_flight_per_target() == 0) limits->set_max_in_flight_per_target(64);
  if (limits->max_watchers() == 0) limits->set_max_watchers(1024);
  if (limits->max_sync_in_flight() == 0) limits->set_max_sync_in_flight(1024);

  FillRetryDefaults(config->mutable_default_retry());
  FillRetryDefaults(config->mutable_callback_retry());

  for (v1::ServiceConfig& service : *config->mutable_services()) {
    if (service.max_in_flight() == 0) {
      service.set_max_in_flight(limits->max_in_flight_per_target());
    }
    if (!service.has_attempt_timeout()) {
      *service.mutable_attempt_timeout() = config->default_attempt_timeout();
    }
    // An unset `retry` means "use default_retry": leave it unset.
    if (service.has_retry()) FillRetryDefaults(service.mutable_retry());
    for (auto& [method, policy] : *service.mutable_method_retry()) FillRetryDefaults(&policy);
  }
}

absl::Status ValidateConfig(const v1::SidecarConfig& config) {
  if (MaybeViolation v = FindViolation(config)) {
    return absl::InvalidArgumentError(absl::StrCat(v->path, ": ", v->problem));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SidecarConfig> LoadAndValidateConfig(const std::string& path) {
  CALLMESH_ASSIGN_OR_RETURN(const std::string text, ReadConfigFile(path));
  PositionMap positions;
  CALLMESH_ASSIGN_OR_RETURN(v1::SidecarConfig config, ParseConfigImpl(text, path, &positions));
  ApplyConfigDefaults(&config);
  if (MaybeViolation v = FindViolation(config)) {
    return absl::InvalidArgumentError(
        FormatError(path, ClosestPosition(positions, v->path), v->path, v->problem));
  }
  return config;
}

absl::StatusOr<int> ParseStatusCodeName(absl::string_view name) {
  for (size_t code = 0; code < std::size(kStatusCodeNames); ++code) {
    if (absl::EqualsIgnoreCase(kStatusCodeNames[code], name)) return static_cast<int>(code);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown gRPC status code ", Quote(name), "; expected one of ",
                   absl::StrJoin(std::begin(kStatusCodeNames), std::end(kStatusCodeNames), ", ")));
}

}  // namespace callmesh::sidecar
