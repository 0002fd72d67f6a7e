#include "runtime/common/http/http_router.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/common/http/http_syntax.h"

namespace callmesh::http {
namespace {

std::vector<std::string> Segments(absl::string_view path) { return absl::StrSplit(path, '/'); }

// Whether `path` fits `pattern`; the '*' segments' decoded values go to `captures`.
bool Matches(const std::vector<std::string>& pattern, const std::vector<std::string>& path,
             std::vector<std::string>* captures, bool* undecodable) {
  if (pattern.size() != path.size()) return false;
  std::vector<std::string> found;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != "*") {
      if (pattern[i] != path[i]) return false;
      continue;
    }
    if (path[i].empty()) return false;
    std::optional<std::string> decoded = PercentDecode(path[i], false);
    if (!decoded.has_value()) {
      *undecodable = true;
      return false;
    }
    found.push_back(*std::move(decoded));
  }
  *captures = std::move(found);
  return true;
}

}  // namespace

void HttpRouter::Handle(std::string method, std::string pattern, Handler handler) {
  routes_.push_back(Route{std::move(method), Segments(pattern), std::move(handler)});
}

void HttpRouter::Serve(HttpRequest* request, HttpResponse* response) const {
  const std::vector<std::string> path = Segments(request->path);
  std::vector<std::string> allowed;
  bool undecodable = false;
  for (const Route& route : routes_) {
    std::vector<std::string> captures;
    if (!Matches(route.segments, path, &captures, &undecodable)) continue;
    if (route.method != request->method) {
      allowed.push_back(route.method);
      continue;
    }
    request->captures = std::move(captures);
    route.handler(*request, *response);
    return;
  }
  if (!allowed.empty()) {
    response->Set(405, kPlainText,
                  absl::StrCat(request->method, " is not allowed on ", request->path, "\n"));
    response->headers.emplace_back("Allow", absl::StrJoin(allowed, ", "));
  } else if (undecodable) {
    response->Set(400, kPlainText,
                  absl::StrCat("malformed percent-encoding in ", request->path, "\n"));
  } else {
    std::vector<std::string> served;
    for (const Route& route : routes_) {
      served.push_back(absl::StrCat(route.method, " ", absl::StrJoin(route.segments, "/")));
    }
    response->Set(404, kPlainText,
                  absl::StrCat(request->path,
                               " not found; served here: ", absl::StrJoin(served, ", "), "\n"));
  }
}

}  // namespace callmesh::http
