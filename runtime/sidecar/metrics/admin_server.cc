#include "runtime/sidecar/metrics/admin_server.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace callmesh::metrics {
namespace {

constexpr char kPrometheusTextType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kText[] = "text/plain; charset=utf-8";

}  // namespace

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(
    const std::string& address, const Registry* registry, ReadyCheck ready,
    std::function<void(http::HttpRouter*)> add_routes) {
  const auto cannot = [&address](absl::string_view why) {
    return absl::FailedPreconditionError(
        absl::StrCat("admin_listen ", address, ": cannot listen there (", why, ")"));
  };
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return cannot("not host:port");
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }

  http::HttpRouter router;
  router.Handle("GET", "/metrics", [registry](const http::HttpRequest&, http::HttpResponse& out) {
    out.Set(200, kPrometheusTextType, registry->Render());
  });
  router.Handle("GET", "/healthz", [](const http::HttpRequest&, http::HttpResponse& out) {
    out.Set(200, kText, "ok\n");
  });
  router.Handle("GET", "/readyz",
                [ready = std::move(ready)](const http::HttpRequest&, http::HttpResponse& out) {
                  const absl::Status status = ready();
                  if (status.ok()) {
                    out.Set(200, kText, "ready\n");
                  } else {
                    out.Set(503, kText, absl::StrCat("not ready: ", status.message(), "\n"));
                  }
                });
  if (add_routes != nullptr) add_routes(&router);

  // Few, short requests, plus one connection per open web view page (its event stream).
  absl::StatusOr<std::unique_ptr<http::HttpServer>> http =
      http::HttpServer::Start(host, port, std::move(router));
  if (!http.ok()) return cannot(http.status().message());
  std::unique_ptr<AdminServer> server(new AdminServer());
  server->http_ = *std::move(http);
  const std::string shown_host =
      host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host;
  server->address_ = absl::StrCat(shown_host, ":", server->http_->port());
  return server;
}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Stop() {
  if (http_ != nullptr) http_->Stop();
}

}  // namespace callmesh::metrics
