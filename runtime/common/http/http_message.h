// An HTTP/1.1 request as the server hands it to a route, and the response the route fills in.
// Plain data; see http_server.h for how they travel.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace callmesh::http {

// The content type of every plain-text answer (health, errors).
inline constexpr char kPlainText[] = "text/plain; charset=utf-8";

struct HttpRequest {
  std::string method;  // "GET", "POST", ... as sent (methods are case-sensitive)
  std::string path;    // the target's path, still percent-encoded ("/ui/api/calls/a%2Fb")
  // What the route's '*' segments matched, percent-decoded, in order (http_router.h).
  std::vector<std::string> captures;
  // The query string's names and values, decoded ('+' is a space); the first of a repeated name.
  std::map<std::string, std::string> query;
  // Header names lower-cased; a repeated header's values joined with ", ".
  std::map<std::string, std::string> headers;
  std::string body;

  // The query value of `name`, "" when absent.
  std::string QueryValue(const std::string& name) const {
    auto it = query.find(name);
    return it == query.end() ? std::string() : it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = kPlainText;
  std::string body;
  // More headers (Content-Type, Content-Length and Connection are the server's).
  std::vector<std::pair<std::string, std::string>> headers;

  // A streamed body instead of `body` (server-sent events): after the head, the server calls
  // `stream` and writes each chunk it returns until it returns false, the client goes away or
  // the server stops; then it calls `on_stream_end` (if set) once. The connection closes at the
  // end, which ends the body (no Content-Length).
  std::function<bool(std::string* chunk)> stream;
  std::function<void()> on_stream_end;

  void Set(int http_status, std::string type, std::string text) {
    status = http_status;
    content_type = std::move(type);
    body = std::move(text);
  }
};

}  // namespace callmesh::http
