// The pieces of HTTP/1.1 syntax that both the server and the client parse: percent-decoding,
// query strings, and a message head (start line plus header fields, RFC 9112 section 2).
// Pure functions; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace callmesh::http {

// "%2F" → "/", and '+' → ' ' when `plus_is_space` (query strings); nullopt for a '%' not
// followed by two hex digits.
std::optional<std::string> PercentDecode(absl::string_view text, bool plus_is_space);

// "a=1&b=x+y&c" → {a: "1", b: "x y", c: ""}; the first value of a repeated name wins.
// INVALID_ARGUMENT naming the pair for a '%' not followed by two hex digits.
absl::StatusOr<std::map<std::string, std::string>> ParseQuery(absl::string_view query);

// A head split into its start line and its fields (names lower-cased, repeated fields joined with
// ", "). INVALID_ARGUMENT naming the problem for a field without ':' or with a space before it,
// or a name that is not a token. `head` ends before the blank line.
struct MessageHead {
  std::string start_line;
  std::map<std::string, std::string> fields;
};
absl::StatusOr<MessageHead> ParseMessageHead(absl::string_view head);

// The request line "GET /path?query HTTP/1.1". INVALID_ARGUMENT unless it has exactly three
// parts, a token method, a target starting with '/', and HTTP/1.0 or HTTP/1.1.
struct RequestLine {
  std::string method;
  std::string path;
  std::string query;  // after '?', still encoded
};
absl::StatusOr<RequestLine> ParseRequestLine(absl::string_view line);

// A URL authority's "host:port", with an IPv6 host in brackets ("[::1]:4318").
std::string JoinHostPort(absl::string_view host, int port);
// The reverse: the host (without brackets) and the port; nullopt unless `address` is host:port
// with a non-empty host and a port of digits from 0 to 65535.
struct HostPort {
  std::string host;
  int port = 0;
};
std::optional<HostPort> SplitHostPort(absl::string_view address);

// Content-Length's value: digits only (INVALID_ARGUMENT otherwise), at most `max` (OUT_OF_RANGE
// otherwise).
absl::StatusOr<size_t> ParseContentLength(absl::string_view value, size_t max);

}  // namespace callmesh::http
