// The server against an independent client (cpp-httplib) and raw sockets; the client against
// the server, an independent server (cpp-httplib, chunked replies), a closed port and a listener
// that never answers.
#include "runtime/common/http/http_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "runtime/common/http/http_client.h"
#include "runtime/common/http/socket_io.h"

namespace callmesh::http {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

HttpRouter EchoRouter() {
  HttpRouter router;
  router.Handle("GET", "/echo", [](const HttpRequest& request, HttpResponse& out) {
    out.Set(200, "text/plain", absl::StrCat("q=", request.QueryValue("q")));
    out.headers.emplace_back("X-Test", "yes");
  });
  router.Handle("POST", "/items/*", [](const HttpRequest& request, HttpResponse& out) {
    out.Set(201, "application/json",
            absl::StrCat(
                request.captures[0], ":", request.body, ":",
                request.headers.count("content-type") ? request.headers.at("content-type") : ""));
  });
  return router;
}

// Sends `bytes` on a fresh connection and returns everything the server sends back.
std::string RawExchange(int port, const std::string& bytes) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return "no connect";
  send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof(buffer), 0)) > 0;) out.append(buffer, n);
  close(fd);
  return out;
}

TEST(HttpServer, AnswersAnIndependentClient) {
  auto server = HttpServer::Start("127.0.0.1", 0, EchoRouter());
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->port());
  httplib::Result get = client.Get("/echo?q=a%20b%21");
  ASSERT_TRUE(get) << httplib::to_string(get.error());
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, "q=a b!");
  EXPECT_EQ(get->get_header_value("Content-Type"), "text/plain");
  EXPECT_EQ(get->get_header_value("X-Test"), "yes");
  EXPECT_EQ(get->get_header_value("Connection"), "close");

  httplib::Result post = client.Post("/items/a%20b", std::string(100000, 'x'), "text/x-test");
  ASSERT_TRUE(post) << httplib::to_string(post.error());
  EXPECT_EQ(post->status, 201);
  EXPECT_EQ(post->body, absl::StrCat("a b:", std::string(100000, 'x'), ":text/x-test"));

  httplib::Result missing = client.Get("/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  httplib::Result wrong_method = client.Post("/echo");
  ASSERT_TRUE(wrong_method);
  EXPECT_EQ(wrong_method->status, 405);
  EXPECT_EQ(wrong_method->get_header_value("Allow"), "GET");
}

TEST(HttpServer, ListensOnNamesAndIpv6) {
  auto by_name = HttpServer::Start("localhost", 0, EchoRouter());
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  auto ipv6 = HttpServer::Start("::1", 0, EchoRouter());
  if (!ipv6.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << ipv6.status();
  auto reply = HttpExchange({.host = "::1", .port = (*ipv6)->port(), .path = "/echo?q=6"});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->body, "q=6");
}

TEST(HttpServer, APortInUseIsRefusedWithTheReason) {
  auto first = HttpServer::Start("127.0.0.1", 0, EchoRouter());
  ASSERT_TRUE(first.ok());
  auto second = HttpServer::Start("127.0.0.1", (*first)->port(), EchoRouter());
  EXPECT_TRUE(absl::IsUnavailable(second.status()));
  EXPECT_THAT(second.status().message(), HasSubstr("in use"));
  auto unknown = HttpServer::Start("no-such-host.invalid", 0, EchoRouter());
  EXPECT_THAT(unknown.status().message(), HasSubstr("cannot resolve no-such-host.invalid"));
}

TEST(HttpServer, RefusesMalformedAndOversizedRequests) {
  HttpServer::Options options;
  options.max_head_bytes = 1024;
  options.max_body_bytes = 10;
  auto server = HttpServer::Start("127.0.0.1", 0, EchoRouter(), options);
  ASSERT_TRUE(server.ok());
  const int port = (*server)->port();
  EXPECT_THAT(RawExchange(port, "HELLO\r\n\r\n"), StartsWith("HTTP/1.1 400 Bad Request"));
  EXPECT_THAT(RawExchange(port, "GET /echo HTTP/1.1\r\nbad header\r\n\r\n"),
              HasSubstr("malformed header field \"bad header\""));
  EXPECT_THAT(RawExchange(port, absl::StrCat("GET /echo HTTP/1.1\r\nX: ", std::string(2000, 'a'),
                                             "\r\n\r\n")),
              StartsWith("HTTP/1.1 431"));
  EXPECT_THAT(RawExchange(port, "POST /items/a HTTP/1.1\r\nContent-Length: 11\r\n\r\n"),
              StartsWith("HTTP/1.1 413"));
  EXPECT_THAT(RawExchange(port, "POST /items/a HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
              StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(RawExchange(port, "POST /items/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
              StartsWith("HTTP/1.1 501"));
  EXPECT_THAT(RawExchange(port, "GET /echo?q=%zz HTTP/1.1\r\n\r\n"), HasSubstr("400 Bad Request"));
  // And a good one still works, with a body that arrives in the same packet as the head.
  EXPECT_THAT(RawExchange(port, "POST /items/a HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc"),
              HasSubstr("\r\n\r\na:abc:"));
}

TEST(HttpServer, AClientThatSendsNothingGets408) {
  HttpServer::Options options;
  options.io_timeout = absl::Milliseconds(100);
  auto server = HttpServer::Start("127.0.0.1", 0, EchoRouter(), options);
  ASSERT_TRUE(server.ok());
  EXPECT_THAT(RawExchange((*server)->port(), "GET /echo HTTP/1.1\r\n"),
              StartsWith("HTTP/1.1 408 Request Timeout"));
}

TEST(HttpServer, OverTheConnectionLimitIs503AtOnce) {
  HttpServer::Options options;
  options.max_connections = 1;
  absl::Notification release;
  absl::Notification entered;
  HttpRouter router;
  router.Handle("GET", "/hold", [&](const HttpRequest&, HttpResponse& out) {
    entered.Notify();
    release.WaitForNotification();
    out.body = "held";
  });
  auto server = HttpServer::Start("127.0.0.1", 0, std::move(router), options);
  ASSERT_TRUE(server.ok());
  std::string held;
  std::thread holder([&] { held = RawExchange((*server)->port(), "GET /hold HTTP/1.1\r\n\r\n"); });
  entered.WaitForNotification();
  const std::string busy = RawExchange((*server)->port(), "GET /hold HTTP/1.1\r\n\r\n");
  EXPECT_THAT(busy, StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(busy, HasSubstr("Retry-After: 1"));
  release.Notify();
  holder.join();
  EXPECT_THAT(held, HasSubstr("\r\n\r\nheld"));
}

TEST(HttpServer, StreamsChunksAndCallsTheEndOnce) {
  std::atomic<int> ended{0};
  HttpRouter router;
  router.Handle("GET", "/events", [&](const HttpRequest&, HttpResponse& out) {
    out.content_type = "text/event-stream";
    auto left = std::make_shared<int>(3);
    out.stream = [left](std::string* chunk) {
      if (*left == 0) return false;
      *chunk = absl::StrCat("data: ", (*left)--, "\n\n");
      return true;
    };
    out.on_stream_end = [&] { ended.fetch_add(1); };
  });
  auto server = HttpServer::Start("127.0.0.1", 0, std::move(router));
  ASSERT_TRUE(server.ok());
  const std::string reply = RawExchange((*server)->port(), "GET /events HTTP/1.1\r\n\r\n");
  EXPECT_THAT(reply, HasSubstr("Content-Type: text/event-stream"));
  EXPECT_THAT(reply, testing::Not(HasSubstr("Content-Length")));
  EXPECT_THAT(reply, HasSubstr("\r\n\r\ndata: 3\n\ndata: 2\n\ndata: 1\n\n"));
  EXPECT_EQ(ended.load(), 1);
}

TEST(HttpServer, StopEndsAnEndlessStream) {
  std::atomic<int> ended{0};
  absl::Notification streaming;
  HttpRouter router;
  router.Handle("GET", "/events", [&](const HttpRequest&, HttpResponse& out) {
    out.stream = [&](std::string* chunk) {
      if (!streaming.HasBeenNotified()) streaming.Notify();
      *chunk = "data: tick\n\n";
      return true;
    };
    out.on_stream_end = [&] { ended.fetch_add(1); };
  });
  auto server = HttpServer::Start("127.0.0.1", 0, std::move(router));
  ASSERT_TRUE(server.ok());
  // A client that reads nothing: the server's writes fill the socket and wait.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons((*server)->port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  const std::string request = "GET /events HTTP/1.1\r\n\r\n";
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  streaming.WaitForNotification();
  (*server)->Stop();
  EXPECT_EQ(ended.load(), 1);
  close(fd);
}

TEST(HttpClient, ExchangesWithTheServer) {
  auto server = HttpServer::Start("127.0.0.1", 0, EchoRouter());
  ASSERT_TRUE(server.ok());
  auto reply = HttpExchange({.host = "127.0.0.1",
                             .port = (*server)->port(),
                             .method = "POST",
                             .path = "/items/x",
                             .body = "{}",
                             .content_type = "application/json"});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 201);
  EXPECT_EQ(reply->body, "x:{}:application/json");
  EXPECT_EQ(reply->headers.at("content-type"), "application/json");
  auto missing = HttpExchange({.host = "127.0.0.1", .port = (*server)->port(), .path = "/no"});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
}

TEST(HttpClient, DechunksAnIndependentServersReply) {
  httplib::Server independent;
  independent.Get("/chunked", [](const httplib::Request&, httplib::Response& response) {
    response.set_chunked_content_provider("text/plain", [](size_t, httplib::DataSink& sink) {
      sink.write("hello ", 6);
      sink.write("world", 5);
      sink.done();
      return true;
    });
  });
  const int port = independent.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { independent.listen_after_bind(); });
  while (!independent.is_running()) std::this_thread::yield();
  auto reply = HttpExchange({.host = "127.0.0.1", .port = port, .path = "/chunked"});
  independent.stop();
  serving.join();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->body, "hello world");
}

TEST(HttpClient, AClosedPortIsUnavailableAndASilentOneTimesOut) {
  // A port that was free a moment ago: nothing listens there.
  int free_port = 0;
  {
    auto probe = HttpServer::Start("127.0.0.1", 0, HttpRouter());
    ASSERT_TRUE(probe.ok());
    free_port = (*probe)->port();
  }
  auto refused = HttpExchange({.host = "127.0.0.1", .port = free_port, .path = "/"});
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr(absl::StrCat("127.0.0.1:", free_port)));

  // A listener that never accepts: the connection completes (backlog), no reply comes.
  const int silent = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(silent, 4), 0);
  socklen_t length = sizeof(address);
  getsockname(silent, reinterpret_cast<sockaddr*>(&address), &length);
  auto timed_out = HttpExchange({.host = "127.0.0.1",
                                 .port = ntohs(address.sin_port),
                                 .path = "/",
                                 .timeout = absl::Milliseconds(100)});
  close(silent);
  EXPECT_TRUE(absl::IsDeadlineExceeded(timed_out.status())) << timed_out.status();
  EXPECT_THAT(timed_out.status().message(), HasSubstr("no reply within 100ms"));
}

}  // namespace
}  // namespace callmesh::http
