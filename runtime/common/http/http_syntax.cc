#include "runtime/common/http/http_syntax.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/common/quoted.h"

namespace callmesh::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 9110 5.6.2: the characters of a method or a field name.
bool IsToken(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        absl::string_view("!#$%&'*+-.^_`|~").find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<std::string> PercentDecode(absl::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int high = HexValue(text[i + 1]);
      const int low = HexValue(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else {
      out.push_back(plus_is_space && c == '+' ? ' ' : c);
    }
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> ParseQuery(absl::string_view query) {
  std::map<std::string, std::string> out;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t equals = pair.find('=');
    std::optional<std::string> name = PercentDecode(pair.substr(0, equals), true);
    std::optional<std::string> value = PercentDecode(
        equals == absl::string_view::npos ? absl::string_view() : pair.substr(equals + 1), true);
    if (!name.has_value() || !value.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed percent-encoding in the query: ", Quoted(pair)));
    }
    out.emplace(*std::move(name), *std::move(value));
  }
  return out;
}

absl::StatusOr<MessageHead> ParseMessageHead(absl::string_view head) {
  std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
  MessageHead parsed;
  parsed.start_line = std::string(lines.front());
  for (size_t i = 1; i < lines.size(); ++i) {
    const absl::string_view line = lines[i];
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || !IsToken(line.substr(0, colon))) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed header field ", Quoted(line), " (want name: value)"));
    }
    std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    auto [it, added] = parsed.fields.emplace(std::move(name), std::string(value));
    if (!added) absl::StrAppend(&it->second, ", ", value);
  }
  return parsed;
}

absl::StatusOr<RequestLine> ParseRequestLine(absl::string_view line) {
  const std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || !IsToken(parts[0]) || parts[1].empty() || parts[1].front() != '/' ||
      (parts[2] != "HTTP/1.1" && parts[2] != "HTTP/1.0")) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed request line ", Quoted(line), " (want METHOD /path HTTP/1.1)"));
  }
  RequestLine parsed;
  parsed.method = std::string(parts[0]);
  const size_t question = parts[1].find('?');
  parsed.path = std::string(parts[1].substr(0, question));
  if (question != absl::string_view::npos)
    parsed.query = std::string(parts[1].substr(question + 1));
  return parsed;
}

std::string JoinHostPort(absl::string_view host, int port) {
  return host.find(':') != absl::string_view::npos ? absl::StrCat("[", host, "]:", port)
                                                   : absl::StrCat(host, ":", port);
}

std::optional<HostPort> SplitHostPort(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return std::nullopt;
  absl::string_view host = address.substr(0, colon);
  const absl::string_view port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  HostPort split{std::string(host), 0};
  if (host.empty() || port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(),
                   [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
      !absl::SimpleAtoi(port, &split.port) || split.port > 65535) {
    return std::nullopt;
  }
  return split;
}

absl::StatusOr<size_t> ParseContentLength(absl::string_view value, size_t max) {
  uint64_t length = 0;
  if (value.empty() || value.size() > 19 ||
      !std::all_of(value.begin(), value.end(),
                   [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
      !absl::SimpleAtoi(value, &length)) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed Content-Length ", Quoted(value), " (want a number of bytes)"));
  }
  if (length > max) {
    return absl::OutOfRangeError(
        absl::StrCat("a body of ", length, " bytes is over the limit of ", max));
  }
  return static_cast<size_t>(length);
}

}  // namespace callmesh::http
