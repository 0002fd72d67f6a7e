#include "cli/json/json_value.h"

#include <cstdint>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace callmesh::cli {

JsonValue JsonValue::Bool(bool value) {
  JsonValue v(Type::kBool);
  v.bool_ = value;
  return v;
}

JsonValue JsonValue::Number(std::string text) {
  JsonValue v(Type::kNumber);
  v.text_ = std::move(text);
  return v;
}

JsonValue JsonValue::String(std::string value) {
  JsonValue v(Type::kString);
  v.text_ = std::move(value);
  return v;
}

const JsonValue* JsonValue::Find(absl::string_view key) const {
  for (const Member& member : members_) {
    if (member.first == key) return &member.second;
  }
  return nullptr;
}

JsonValue* JsonValue::Find(absl::string_view key) {
  for (Member& member : members_) {
    if (member.first == key) return &member.second;
  }
  return nullptr;
}

void JsonValue::Set(std::string key, JsonValue value) {
  if (JsonValue* existing = Find(key)) {
    *existing = std::move(value);
    return;
  }
  members_.emplace_back(std::move(key), std::move(value));
}

// Recursive descent over the whole input, tracking line and column for error messages.
class JsonParser {
 public:
  explicit JsonParser(absl::string_view text) : text_(text) {}

  absl::StatusOr<JsonValue> ParseDocument() {
    SkipWhitespace();
    if (AtEnd()) return Error("expected a JSON value, got an empty input");
    JsonValue value;
    if (absl::Status s = ParseValue(&value, 0); !s.ok()) return s;
    SkipWhitespace();
    if (!AtEnd()) return Error(absl::StrCat("unexpected ", Describe(), " after the JSON value"));
    return value;
  }

 private:
  static constexpr int kMaxDepth = 200;

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }
  JsonPosition Here() const { return {line_, column_}; }

  void Advance() {
    if (AtEnd()) return;
    if (text_[pos_] == '\n') {
      ++line_;
      column_ = 1;
    } else if ((static_cast<unsigned char>(text_[pos_]) & 0xC0) != 0x80) {
      ++column_;  // count characters, not UTF-8 continuation bytes
    }
    ++pos_;
  }

  void SkipWhitespace() {
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\t' || Peek() == '\n' || Peek() == '\r')) {
      Advance();
    }
  }

  std::string Describe() const {
    if (AtEnd()) return "end of input";
    const char c = Peek();
    if (static_cast<unsigned char>(c) < 0x20) {
      return absl::StrFormat("control character 0x%02x", static_cast<unsigned char>(c));
    }
    return absl::StrCat("'", std::string(1, c), "'");
  }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed JSON at line ", line_, ", column ", column_, ": ", what));
  }

  absl::Status Expect(char c, absl::string_view context) {
    if (Peek() != c) {
      return Error(
          absl::StrCat("expected '", std::string(1, c), "' ", context, ", got ", Describe()));
    }
    Advance();
    return absl::OkStatus();
  }

  absl::Status ParseValue(JsonValue* out, int depth) {
    if (depth > kMaxDepth) return Error("nested deeper than 200 levels");
    out->position_ = Here();
    const char c = Peek();
    if (c == '{') return ParseObject(out, depth);
    if (c == '[') return ParseArray(out, depth);
    if (c == '"') {
      out->type_ = JsonValue::Type::kString;
      return ParseString(&out->text_);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(out);
    for (const auto& [word, type, truth] :
         {std::tuple<const char*, JsonValue::Type, bool>{"true", JsonValue::Type::kBool, true},
          {"false", JsonValue::Type::kBool, false},
          {"null", JsonValue::Type::kNull, false}}) {
      const absl::string_view w(word);
      if (text_.substr(pos_, w.size()) == w) {
        for (size_t i = 0; i < w.size(); ++i) Advance();
        out->type_ = type;
        out->bool_ = truth;
        return absl::OkStatus();
      }
    }
    if (c == '\'') return Error("expected a value, got a single-quoted string (JSON needs \")");
    return Error(absl::StrCat("expected a value, got ", Describe()));
  }

  absl::Status ParseObject(JsonValue* out, int depth) {
    out->type_ = JsonValue::Type::kObject;
    Advance();  // '{'
    SkipWhitespace();
    if (Peek() == '}') {
      Advance();
      return absl::OkStatus();
    }
    while (true) {
      SkipWhitespace();
      if (Peek() != '"') {
        return Error(absl::StrCat("expected a member name in double quotes, got ", Describe()));
      }
      const JsonPosition key_position = Here();
      std::string key;
      if (absl::Status s = ParseString(&key); !s.ok()) return s;
      SkipWhitespace();
      if (absl::Status s = Expect(':', absl::StrCat("after member name \"", key, "\"")); !s.ok()) {
        return s;
      }
      SkipWhitespace();
      JsonValue value;
      if (absl::Status s = ParseValue(&value, depth + 1); !s.ok()) return s;
      out->members_.emplace_back(std::move(key), std::move(value));
      out->key_positions_.push_back(key_position);
      SkipWhitespace();
      if (Peek() == ',') {
        Advance();
        continue;
      }
      if (Peek() == '}') {
        Advance();
        return absl::OkStatus();
      }
      return Error(absl::StrCat("expected ',' or '}' in object, got ", Describe()));
    }
  }

  absl::Status ParseArray(JsonValue* out, int depth) {
    out->type_ = JsonValue::Type::kArray;
    Advance();  // '['
    SkipWhitespace();
    if (Peek() == ']') {
      Advance();
      return absl::OkStatus();
    }
    while (true) {
      SkipWhitespace();
      JsonValue value;
      if (absl::Status s = ParseValue(&value, depth + 1); !s.ok()) return s;
      out->elements_.push_back(std::move(value));
      SkipWhitespace();
      if (Peek() == ',') {
        Advance();
        continue;
      }
      if (Peek() == ']') {
        Advance();
        return absl::OkStatus();
      }
      return Error(absl::StrCat("expected ',' or ']' in array, got ", Describe()));
    }
  }

  absl::Status ParseNumber(JsonValue* out) {
    const size_t start = pos_;
    auto digits = [&] {
      size_t n = 0;
      while (Peek() >= '0' && Peek() <= '9') {
        Advance();
        ++n;
      }
      return n;
    };
    if (Peek() == '-') Advance();
    if (Peek() == '0') {
      Advance();
      if (Peek() >= '0' && Peek() <= '9') return Error("leading zeros are not allowed in numbers");
    } else if (digits() == 0) {
      return Error(absl::StrCat("expected a digit, got ", Describe()));
    }
    if (Peek() == '.') {
      Advance();
      if (digits() == 0) return Error(absl::StrCat("expected a digit after '.', got ", Describe()));
    }
    if (Peek() == 'e' || Peek() == 'E') {
      Advance();
      if (Peek() == '+' || Peek() == '-') Advance();
      if (digits() == 0) return Error(absl::StrCat("expected an exponent, got ", Describe()));
    }
    out->type_ = JsonValue::Type::kNumber;
    out->text_ = std::string(text_.substr(start, pos_ - start));
    return absl::OkStatus();
  }

  absl::Status ParseHex4(uint32_t* out) {
    *out = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = Peek();
      int digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        return Error(absl::StrCat("expected a hex digit in \\u escape, got ", Describe()));
      }
      *out = *out * 16 + digit;
      Advance();
    }
    return absl::OkStatus();
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  absl::Status ParseString(std::string* out) {
    Advance();  // opening quote
    while (true) {
      if (AtEnd()) return Error("unterminated string");
      const char c = Peek();
      if (c == '"') {
        Advance();
        return absl::OkStatus();
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return Error(absl::StrCat("unescaped ", Describe(), " in string"));
      }
      if (c != '\\') {
        out->push_back(c);
        Advance();
        continue;
      }
      Advance();
      const char e = Peek();
      switch (e) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          Advance();
          uint32_t cp;
          if (absl::Status s = ParseHex4(&cp); !s.ok()) return s;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (Peek() != '\\') return Error("expected a low surrogate \\u escape");
            Advance();
            if (Peek() != 'u') return Error("expected a low surrogate \\u escape");
            Advance();
            uint32_t low;
            if (absl::Status s = ParseHex4(&low); !s.ok()) return s;
            if (low < 0xDC00 || low > 0xDFFF) return Error("invalid low surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Error("unpaired low surrogate in \\u escape");
          }
          AppendUtf8(cp, out);
          continue;  // ParseHex4 advanced already
        }
        default:
          return Error(absl::StrCat("invalid escape '\\", std::string(1, e), "' in string"));
      }
      Advance();
    }
  }

  absl::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
  int column_ = 1;
};

absl::StatusOr<JsonValue> ParseJson(absl::string_view text) {
  return JsonParser(text).ParseDocument();
}

namespace {

void AppendQuoted(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          *out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

void Print(const JsonValue& value, bool indent, int depth, std::string* out) {
  const std::string pad = indent ? std::string(2 * (depth + 1), ' ') : "";
  const std::string close_pad = indent ? std::string(2 * depth, ' ') : "";
  const char* newline = indent ? "\n" : "";
  switch (value.type()) {
    case JsonValue::Type::kNull:
      *out += "null";
      return;
    case JsonValue::Type::kBool:
      *out += value.bool_value() ? "true" : "false";
      return;
    case JsonValue::Type::kNumber:
      *out += value.text();
      return;
    case JsonValue::Type::kString:
      AppendQuoted(value.text(), out);
      return;
    case JsonValue::Type::kArray:
      if (value.elements().empty()) {
        *out += "[]";
        return;
      }
      *out += "[";
      *out += newline;
      for (size_t i = 0; i < value.elements().size(); ++i) {
        *out += pad;
        Print(value.elements()[i], indent, depth + 1, out);
        if (i + 1 < value.elements().size()) *out += ",";
        *out += newline;
      }
      *out += close_pad + "]";
      return;
    case JsonValue::Type::kObject:
      if (value.members().empty()) {
        *out += "{}";
        return;
      }
      *out += "{";
      *out += newline;
      for (size_t i = 0; i < value.members().size(); ++i) {
        *out += pad;
        AppendQuoted(value.members()[i].first, out);
        *out += indent ? ": " : ":";
        Print(value.members()[i].second, indent, depth + 1, out);
        if (i + 1 < value.members().size()) *out += ",";
        *out += newline;
      }
      *out += close_pad + "}";
      return;
  }
}

}  // namespace

std::string PrintJson(const JsonValue& value, bool indent) {
  std::string out;
  Print(value, indent, 0, &out);
  return out;
}

}  // namespace callmesh::cli
