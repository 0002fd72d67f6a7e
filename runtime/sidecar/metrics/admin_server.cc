#include "runtime/sidecar/metrics/admin_server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace callmesh::metrics {
namespace {

constexpr char kPrometheusTextType[] = "text/plain; version=0.0.4; charset=utf-8";

// Without SO_REUSEPORT (which cpp-httplib sets by default), so that a second process cannot
// share a port that is in use.
void NoReusePort(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<void*>(&yes), sizeof(yes));
}

}  // namespace

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(
    const std::string& address, const Registry* registry, ReadyCheck ready,
    std::function<void(httplib::Server*)> add_routes) {
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

  std::unique_ptr<AdminServer> server(new AdminServer());
  server->http_ = std::make_unique<httplib::Server>();
  httplib::Server& http = *server->http_;
  http.set_socket_options(NoReusePort);
  // Few, short requests, plus one thread per open web view page (its event stream).
  http.new_task_queue = [] { return new httplib::ThreadPool(8); };
  http.Get("/metrics", [registry](const httplib::Request&, httplib::Response& response) {
    response.set_content(registry->Render(), kPrometheusTextType);
  });
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain");
  });
  http.Get(
      "/readyz", [ready = std::move(ready)](const httplib::Request&, httplib::Response& response) {
        const absl::Status status = ready();
        if (status.ok()) {
          response.set_content("ready\n", "text/plain");
        } else {
          response.status = 503;
          response.set_content(absl::StrCat("not ready: ", status.message(), "\n"), "text/plain");
        }
      });

  if (add_routes != nullptr) add_routes(&http);

  if (port == 0) {
    port = http.bind_to_any_port(host);
    if (port <= 0) return cannot("no free port, or not a local address?");
  } else if (!http.bind_to_port(host, port)) {
    return cannot("address in use, or not a local address?");
  }
  const std::string shown_host =
      host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host;
  server->address_ = absl::StrCat(shown_host, ":", port);
  auto listening_ended = std::make_shared<std::atomic<bool>>(false);
  server->thread_ = std::thread([&http, listening_ended] {
    http.listen_after_bind();
    listening_ended->store(true);
  });
  // cpp-httplib's stop() does nothing until the listening loop runs: wait for it, so that a
  // Stop right after Start cannot miss it.
  while (!http.is_running() && !listening_ended->load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return server;
}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Stop() {
  if (http_ != nullptr) http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace callmesh::metrics
