// The collector's URL from the configuration (`tracing.endpoint`), checked and split for the
// HTTP client.
//
//   absl::StatusOr<HttpEndpoint> e = ParseHttpEndpoint("http://127.0.0.1:4318",
//   "tracing.endpoint");
//   // e->scheme_host_port == "http://127.0.0.1:4318", e->host == "127.0.0.1", e->port == 4318,
//   // e->path == "/v1/traces"
//
// Pure function; thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace callmesh::tracing {

// "http://host:port/path" split for the HTTP client; path "/v1/traces" when none is given.
// INVALID_ARGUMENT naming `field` for anything else (https is not supported).
struct HttpEndpoint {
  std::string scheme_host_port;  // as written, for messages
  std::string host;              // IPv6 without its brackets
  int port = 0;
  std::string path;
};
absl::StatusOr<HttpEndpoint> ParseHttpEndpoint(absl::string_view url, absl::string_view field);

}  // namespace callmesh::tracing
