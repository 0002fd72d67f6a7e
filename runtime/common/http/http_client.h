// One HTTP/1.1 request on a fresh connection (Connection: close), for the span exporter's POSTs
// to an OTLP collector. No TLS, no redirects, no keep-alive.
//
//   absl::StatusOr<HttpReply> reply = HttpExchange({.host = "127.0.0.1", .port = 4318,
//       .method = "POST", .path = "/v1/traces", .body = json,
//       .content_type = "application/json", .timeout = absl::Seconds(10)});
//
// Thread-safe (nothing shared between calls).
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace callmesh::http {

struct HttpCall {
  std::string host;  // an address or a name; IPv6 without brackets
  int port = 80;
  std::string method = "GET";
  std::string path = "/";  // with the query, already encoded
  std::string body;
  std::string content_type;  // sent when the body is not empty
  // Bounds the whole exchange: connecting, sending, and reading the reply.
  absl::Duration timeout = absl::Seconds(10);
};

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // de-chunked
};

// Any status the server answers is a reply (check `status`). UNAVAILABLE when the host does not
// resolve or the connection fails or is cut, DEADLINE_EXCEEDED after `timeout`, INTERNAL for a
// reply that is not HTTP/1.x; each message names host:port.
absl::StatusOr<HttpReply> HttpExchange(const HttpCall& call);

}  // namespace callmesh::http
