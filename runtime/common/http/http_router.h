// Which handler answers a request: routes of a method and a path pattern, where a '*' segment
// matches one non-empty path segment and hands it (percent-decoded) to the handler.
//
//   HttpRouter router;
//   router.Handle("GET", "/ui/api/calls/*", [](const HttpRequest& r, HttpResponse& out) {
//     out.Set(200, "text/plain", r.captures[0]);  // the call's ID
//   });
//
// Add routes before serving; Serve is then thread-safe (it only reads the table).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "runtime/common/http/http_message.h"

namespace callmesh::http {

class HttpRouter {
 public:
  using Handler = std::function<void(const HttpRequest&, HttpResponse&)>;

  // The first route added wins when two match.
  void Handle(std::string method, std::string pattern, Handler handler);

  // Fills `response` with the matching route's answer (request->captures set first); 404 (naming
  // the routes there are) when no route has the path, 405 (with Allow) when routes have it but not
  // for this method, 400 when a captured segment is not valid percent-encoding.
  void Serve(HttpRequest* request, HttpResponse* response) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "*" matches any one segment
    Handler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace callmesh::http
