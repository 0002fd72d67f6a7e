// A small JSON document model for the CLI: parsed with line:column positions so that errors can
// point at the problem, printed compact (one line, for `watch`) or indented (for people).
// Object members keep their order. Numbers keep their source text, so int64 values beyond 2^53 are
// never rounded.
//
//   absl::StatusOr<JsonValue> doc = ParseJson(R"({"name": "world"})");
//   if (!doc.ok()) { ... }   // INVALID_ARGUMENT "malformed JSON at line 1, column 9: ..."
//   const JsonValue* name = doc->Find("name");
//   std::string text = PrintJson(*doc, /*indent=*/true);
//
// A value type; not thread-safe for concurrent mutation.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace callmesh::cli {

// Where a value (or an object key) starts in the parsed text, 1-based.
struct JsonPosition {
  int line = 0;
  int column = 0;
};

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using Member = std::pair<std::string, JsonValue>;

  JsonValue() = default;
  static JsonValue Null() { return JsonValue(); }
  static JsonValue Bool(bool value);
  // `text` must be a JSON number literal.
  static JsonValue Number(std::string text);
  static JsonValue String(std::string value);
  static JsonValue Array() { return JsonValue(Type::kArray); }
  static JsonValue Object() { return JsonValue(Type::kObject); }

  Type type() const { return type_; }
  bool is_object() const { return type_ == Type::kObject; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_string() const { return type_ == Type::kString; }
  bool bool_value() const { return bool_; }
  // The number's source text, or the decoded string.
  const std::string& text() const { return text_; }

  const std::vector<JsonValue>& elements() const { return elements_; }
  std::vector<JsonValue>& elements() { return elements_; }
  const std::vector<Member>& members() const { return members_; }
  std::vector<Member>& members() { return members_; }
  // Positions of the members' keys, parallel to members() (empty for built values).
  const std::vector<JsonPosition>& key_positions() const { return key_positions_; }

  // The member `key` of an object, or nullptr.
  const JsonValue* Find(absl::string_view key) const;
  JsonValue* Find(absl::string_view key);
  // Appends (or replaces) member `key`.
  void Set(std::string key, JsonValue value);
  void Append(JsonValue value) { elements_.push_back(std::move(value)); }

  const JsonPosition& position() const { return position_; }

 private:
  friend class JsonParser;
  explicit JsonValue(Type type) : type_(type) {}
  Type type_ = Type::kNull;
  bool bool_ = false;
  std::string text_;
  std::vector<JsonValue> elements_;
  std::vector<Member> members_;
  std::vector<JsonPosition> key_positions_;
  JsonPosition position_;
};

// Parses one JSON document (RFC 8259; surrounding whitespace allowed). INVALID_ARGUMENT
// "malformed JSON at line L, column C: <what was expected>" on a syntax error, including an empty
// input and trailing garbage. Nesting deeper than 200 levels is rejected the same way.
absl::StatusOr<JsonValue> ParseJson(absl::string_view text);

// Serializes `value`: `indent` = two-space indentation and a space after ':'; otherwise one line
// without spaces. Strings are escaped per RFC 8259 (non-ASCII UTF-8 is kept as is).
std::string PrintJson(const JsonValue& value, bool indent);

}  // namespace callmesh::cli
