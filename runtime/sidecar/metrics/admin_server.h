// The admin HTTP listener (`admin_listen` in SidecarConfig), served by runtime/common/http's
// server (a thread per open connection, at most 8):
//   GET /metrics  the registry in the Prometheus text format (version 0.0.4)
//   GET /healthz  200 "ok" while the process is up
//   GET /readyz   200 "ready" when `ready` says so, else 503 with the reason
//   and the routes `add_routes` adds (the web view, runtime/sidecar/webview)
// Anything else is 404. Plain HTTP: bind it to loopback (or a private network) only.
//
// Thread-safe. Stop (or the destructor) closes the listener and joins its thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/common/http/http_router.h"
#include "runtime/common/http/http_server.h"
#include "runtime/sidecar/metrics/metrics_registry.h"

namespace callmesh::metrics {

class AdminServer {
 public:
  // OK when serving; otherwise the reason it is not ready (e.g. "draining"), answered with 503.
  using ReadyCheck = std::function<absl::Status()>;

  // Listens on `address` ("host:port", IPv6 in brackets; port 0 picks a free one). Both pointers
  // must outlive the server. FAILED_PRECONDITION "admin_listen <address>: cannot listen there
  // (<reason>)" if the port is taken or the host is not local.
  // `add_routes`, if set, adds more routes before the server listens.
  static absl::StatusOr<std::unique_ptr<AdminServer>> Start(
      const std::string& address, const Registry* registry, ReadyCheck ready,
      std::function<void(http::HttpRouter*)> add_routes = nullptr);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // host:port bound (with the port chosen for port 0).
  const std::string& address() const { return address_; }
  // Stops listening and waits for the serving thread. Idempotent.
  void Stop();

 private:
  AdminServer() = default;

  std::unique_ptr<http::HttpServer> http_;
  std::string address_;
};

}  // namespace callmesh::metrics
