#include "runtime/sidecar/metrics/admin_server.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/common/http/http_syntax.h"

namespace callmesh::metrics {
namespace {

constexpr char kPrometheusTextType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(
    const std::string& address, const Registry* registry, ReadyCheck ready,
    std::function<void(http::HttpRouter*)> add_routes) {
  const auto cannot = [&address](absl::string_view why) {
    return absl::FailedPreconditionError(
        absl::StrCat("admin_listen ", address, ": cannot listen there (", why, ")"));
  };
  const std::optional<http::HostPort> split = http::SplitHostPort(address);
  if (!split.has_value()) return cannot("not host:port");

  http::HttpRouter router;
  router.Handle("GET", "/metrics", [registry](const http::HttpRequest&, http::HttpResponse& out) {
    out.Set(200, kPrometheusTextType, registry->Render());
  });
  router.Handle("GET", "/healthz", [](const http::HttpRequest&, http::HttpResponse& out) {
    out.Set(200, http::kPlainText, "ok\n");
  });
  router.Handle("GET", "/readyz",
                [ready = std::move(ready)](const http::HttpRequest&, http::HttpResponse& out) {
                  const absl::Status status = ready();
                  if (status.ok()) {
                    out.Set(200, http::kPlainText, "ready\n");
                  } else {
                    out.Set(503, http::kPlainText,
                            absl::StrCat("not ready: ", status.message(), "\n"));
                  }
                });
  if (add_routes != nullptr) add_routes(&router);

  // Few, short requests, plus one connection per open web view page (its event stream).
  absl::StatusOr<std::unique_ptr<http::HttpServer>> http =
      http::HttpServer::Start(split->host, split->port, std::move(router));
  if (!http.ok()) return cannot(http.status().message());
  std::unique_ptr<AdminServer> server(new AdminServer());
  server->http_ = *std::move(http);
  server->address_ = http::JoinHostPort(split->host, server->http_->port());
  return server;
}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Stop() {
  if (http_ != nullptr) http_->Stop();
}

}  // namespace callmesh::metrics
