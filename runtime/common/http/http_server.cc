#include "runtime/common/http/http_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/http/http_syntax.h"
#include "runtime/common/http/socket_io.h"

namespace callmesh::http {
namespace {

absl::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

// Answers `status` with `why` as the body's one line.
void Refuse(int status, absl::string_view why, HttpResponse* refusal) {
  refusal->Set(status, kPlainText, absl::StrCat(why, "\n"));
}

// Reads more of a request into `data`. False when nothing more came, with the refusal set: 408
// at the deadline; no answer at all (status 0) when the client went away.
bool ReadMore(int fd, size_t max, absl::Time deadline, absl::Duration timeout, std::string* data,
              HttpResponse* refusal) {
  absl::StatusOr<size_t> got = ReadSome(fd, max, deadline, data);
  if (got.ok() && *got > 0) return true;
  if (!got.ok() && absl::IsDeadlineExceeded(got.status())) {
    Refuse(408, absl::StrCat("the request did not arrive within ", absl::FormatDuration(timeout)),
           refusal);
  } else {
    refusal->status = 0;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& host, int port,
                                                              HttpRouter router, Options options) {
  absl::StatusOr<AddressList> found = Resolve(host, port, /*passive=*/true);
  if (!found.ok()) return found.status();
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(router), options));
  int last_error = EADDRNOTAVAIL;
  for (addrinfo* address = found->get(); address != nullptr; address = address->ai_next) {
    const int fd = socket(address->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last_error = errno;
      continue;
    }
    // SO_REUSEADDR lets a restarted sidecar bind while old connections sit in TIME_WAIT; without
    // SO_REUSEPORT a second process cannot share a port that is in use.
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (bind(fd, address->ai_addr, address->ai_addrlen) == 0 && listen(fd, 128) == 0) {
      server->listen_fd_ = fd;
      break;
    }
    last_error = errno;
    close(fd);
  }
  if (server->listen_fd_ < 0) return absl::UnavailableError(SystemError(last_error));
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  getsockname(server->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &length);
  server->port_ =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  server->acceptor_ = std::thread([raw = server.get()] { raw->AcceptLoop(); });
  return server;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  {
    absl::MutexLock lock(&connections_->mu);
    connections_->stopping = true;
    for (int fd : connections_->open) shutdown(fd, SHUT_RDWR);
  }
  // Wakes the acceptor's accept (Linux returns EINVAL on a listener that was shut down).
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
  absl::MutexLock lock(&connections_->mu);
  connections_->mu.Await(absl::Condition(
      +[](std::set<int>* open) { return open->empty(); }, &connections_->open));
}

bool HttpServer::stopping() const {
  absl::MutexLock lock(&connections_->mu);
  return connections_->stopping;
}

void HttpServer::AcceptLoop() {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (stopping()) return;
      // Out of descriptors or memory, or a connection reset before it was taken: try again
      // shortly rather than spin.
      if (errno != EINTR && errno != ECONNABORTED) {
        pollfd none{-1, 0, 0};
        poll(&none, 0, 10);
      }
      continue;
    }
    bool full = false;
    {
      absl::MutexLock lock(&connections_->mu);
      if (connections_->stopping) {
        close(fd);
        return;
      }
      full = connections_->open.size() >= options_.max_connections;
      if (!full) connections_->open.insert(fd);
    }
    if (full) {
      HttpResponse busy;
      Refuse(503, absl::StrCat("busy: ", options_.max_connections, " connections are open"), &busy);
      busy.headers.emplace_back("Retry-After", "1");
      Respond(fd, busy);
      close(fd);
      continue;
    }
    std::thread([this, fd, connections = connections_] {
      ServeConnection(fd);
      // The last touch of the server: after this, Stop may return and the server go away.
      absl::MutexLock lock(&connections->mu);
      connections->open.erase(fd);
      close(fd);
    }).detach();
  }
}

void HttpServer::ServeConnection(int fd) {
  HttpRequest request;
  HttpResponse response;
  if (ReadRequest(fd, &request, &response)) router_.Serve(&request, &response);
  Respond(fd, response);
}

bool HttpServer::ReadRequest(int fd, HttpRequest* request, HttpResponse* refusal) const {
  const absl::Time deadline = absl::Now() + options_.io_timeout;
  std::string data;
  size_t head_end = std::string::npos;
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos &&
         data.size() <= options_.max_head_bytes) {
    if (!ReadMore(fd, 4096, deadline, options_.io_timeout, &data, refusal)) return false;
  }
  if (head_end == std::string::npos || head_end > options_.max_head_bytes) {
    Refuse(431, absl::StrCat("the request's head is over ", options_.max_head_bytes, " bytes"),
           refusal);
    return false;
  }
  absl::StatusOr<MessageHead> head = ParseMessageHead(absl::string_view(data).substr(0, head_end));
  absl::StatusOr<RequestLine> line =
      head.ok() ? ParseRequestLine(head->start_line) : absl::StatusOr<RequestLine>(head.status());
  absl::StatusOr<std::map<std::string, std::string>> query =
      line.ok() ? ParseQuery(line->query) : line.status();
  if (!query.ok()) {
    Refuse(400, query.status().message(), refusal);
    return false;
  }
  if (head->fields.count("transfer-encoding") > 0) {
    Refuse(501, "chunked request bodies are not supported: send Content-Length", refusal);
    return false;
  }
  size_t length = 0;
  if (auto it = head->fields.find("content-length"); it != head->fields.end()) {
    absl::StatusOr<size_t> parsed = ParseContentLength(it->second, options_.max_body_bytes);
    if (!parsed.ok()) {
      Refuse(absl::IsOutOfRange(parsed.status()) ? 413 : 400, parsed.status().message(), refusal);
      return false;
    }
    length = *parsed;
  }
  std::string body = data.substr(head_end + 4);
  if (auto it = head->fields.find("expect");
      body.size() < length && it != head->fields.end() &&
      absl::AsciiStrToLower(it->second) == "100-continue" &&
      !WriteAll(fd, "HTTP/1.1 100 Continue\r\n\r\n", deadline).ok()) {
    refusal->status = 0;
    return false;
  }
  while (body.size() < length) {
    if (!ReadMore(fd, length - body.size(), deadline, options_.io_timeout, &body, refusal)) {
      return false;
    }
  }
  body.resize(length);
  request->method = std::move(line->method);
  request->path = std::move(line->path);
  request->query = *std::move(query);
  request->headers = std::move(head->fields);
  request->body = std::move(body);
  return true;
}

void HttpServer::Respond(int fd, HttpResponse& response) const {
  if (response.status == 0) return;
  std::string message =
      absl::StrCat("HTTP/1.1 ", response.status, " ", ReasonPhrase(response.status),
                   "\r\nContent-Type: ", response.content_type, "\r\n");
  for (const auto& [name, value] : response.headers)
    absl::StrAppend(&message, name, ": ", value, "\r\n");
  if (!response.stream) absl::StrAppend(&message, "Content-Length: ", response.body.size(), "\r\n");
  absl::StrAppend(&message, "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n");
  if (!response.stream) {
    message += response.body;
    WriteAll(fd, message, absl::Now() + options_.io_timeout).IgnoreError();
  } else if (WriteAll(fd, message, absl::Now() + options_.io_timeout).ok()) {
    std::string chunk;
    while (!stopping()) {
      chunk.clear();
      if (!response.stream(&chunk)) break;
      if (!WriteAll(fd, chunk, absl::Now() + options_.io_timeout).ok()) break;
    }
  }
  if (response.on_stream_end) response.on_stream_end();
  shutdown(fd, SHUT_WR);
}

}  // namespace callmesh::http
