// A small HTTP/1.1 server for the sidecar's admin listener: one request per connection
// (Connection: close), a thread per open connection up to a limit, bodies with Content-Length,
// and streamed responses (server-sent events). It replaces cpp-httplib in callmeshd, whose
// shared library initialises OpenSSL when it is loaded (about 3 MB of resident memory in every
// sidecar, admin listener or not); see ARCHITECTURE.md "The admin listener's HTTP".
//
//   HttpRouter router;
//   router.Handle("GET", "/healthz", [](const HttpRequest&, HttpResponse& r) { r.body = "ok\n"; });
//   absl::StatusOr<std::unique_ptr<HttpServer>> server =
//       HttpServer::Start("127.0.0.1", 0, std::move(router));
//   // (*server)->port() is the port bound
//
// What it answers by itself: 400 for a malformed request, 408 when the head or body does not
// arrive within `io_timeout`, 413 / 431 over the size limits, 501 for chunked request bodies,
// 503 when `max_connections` are open. Thread-safe (but not two Stops at once); Stop (or the
// destructor) closes the listener, cuts the open connections (streams end at their next chunk)
// and waits for their threads.
#pragma once

#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/common/http/http_router.h"

namespace callmesh::http {

class HttpServer {
 public:
  struct Options {
    // Connections served at once (a streamed response holds one for as long as it runs).
    size_t max_connections = 8;
    // The longest wait for a request's bytes, or for the client to take a response's.
    absl::Duration io_timeout = absl::Seconds(10);
    size_t max_head_bytes = 16 * 1024;
    size_t max_body_bytes = 1024 * 1024;
  };

  // Listens on `host` (an IPv4 or IPv6 address or a name that resolves to a local one; no
  // brackets) and `port` (0: a free port). UNAVAILABLE with the system's reason ("Address
  // already in use", "Cannot assign requested address", ...) when it cannot.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& host, int port,
                                                           HttpRouter router, Options options);
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& host, int port,
                                                           HttpRouter router) {
    return Start(host, port, std::move(router), Options());
  }
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

  // Idempotent.
  void Stop();

 private:
  HttpServer(HttpRouter router, Options options) : router_(std::move(router)), options_(options) {}

  void AcceptLoop();
  void ServeConnection(int fd);
  // Reads and parses one request; false with the answer to send instead when it cannot (status
  // 0: no answer, the client is gone).
  bool ReadRequest(int fd, HttpRequest* request, HttpResponse* refusal) const;
  void Respond(int fd, HttpResponse& response) const;
  bool stopping() const;

  const HttpRouter router_;
  const Options options_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;

  // The connections being served, each on a thread of its own. Shared with those threads, which
  // leave it as their last step (so Stop can return while they unwind).
  struct Connections {
    absl::Mutex mu;
    bool stopping ABSL_GUARDED_BY(mu) = false;
    std::set<int> open ABSL_GUARDED_BY(mu);
  };
  const std::shared_ptr<Connections> connections_ = std::make_shared<Connections>();
};

}  // namespace callmesh::http
