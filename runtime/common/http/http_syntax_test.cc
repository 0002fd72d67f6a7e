// The pure parts: percent-decoding, query strings, message heads, request lines, and routing.
#include "runtime/common/http/http_syntax.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/common/http/http_router.h"

namespace callmesh::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(PercentDecode, DecodesEscapesAndPlusOnlyWhenAsked) {
  EXPECT_EQ(PercentDecode("a%2Fb%20c+d", false), "a/b c+d");
  EXPECT_EQ(PercentDecode("a%2fb+c", true), "a/b c");
  EXPECT_EQ(PercentDecode("100%", false), std::nullopt);
  EXPECT_EQ(PercentDecode("%4", false), std::nullopt);
  EXPECT_EQ(PercentDecode("%zz", false), std::nullopt);
}

TEST(ParseQuery, FirstValueWins) {
  const auto query = ParseQuery("state=RUNNING&limit=5&state=FAILED&flag&&name=a+b%21");
  ASSERT_TRUE(query.ok()) << query.status();
  EXPECT_EQ(query->at("state"), "RUNNING");
  EXPECT_EQ(query->at("limit"), "5");
  EXPECT_EQ(query->at("flag"), "");
  EXPECT_EQ(query->at("name"), "a b!");
}

TEST(ParseQuery, RefusesMalformedPercentEncodingNamingThePair) {
  EXPECT_EQ(ParseQuery("limit=5&state=%zz").status().message(),
            "malformed percent-encoding in the query: \"state=%zz\"");
  EXPECT_FALSE(ParseQuery("%4=1").ok());
}

TEST(ParseMessageHead, LowerCasesNamesAndJoinsRepeats) {
  auto head = ParseMessageHead("GET / HTTP/1.1\r\nHost: x\r\nAccept:  a \r\naccept: b");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->start_line, "GET / HTTP/1.1");
  EXPECT_EQ(head->fields.at("host"), "x");
  EXPECT_EQ(head->fields.at("accept"), "a, b");
}

TEST(ParseMessageHead, RefusesFieldsWithoutANameOrColon) {
  EXPECT_THAT(ParseMessageHead("GET / HTTP/1.1\r\nno colon here").status().message(),
              HasSubstr("malformed header field \"no colon here\""));
  EXPECT_FALSE(ParseMessageHead("GET / HTTP/1.1\r\nHost : x").ok());
  EXPECT_FALSE(ParseMessageHead("GET / HTTP/1.1\r\n: x").ok());
}

TEST(ParseRequestLine, SplitsPathAndQuery) {
  auto line = ParseRequestLine("GET /ui/api/calls?state=RUNNING&limit=5 HTTP/1.1");
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->method, "GET");
  EXPECT_EQ(line->path, "/ui/api/calls");
  EXPECT_EQ(line->query, "state=RUNNING&limit=5");
  EXPECT_TRUE(ParseRequestLine("POST /x HTTP/1.0").ok());
}

TEST(ParseRequestLine, RefusesWhatIsNotARequestLine) {
  for (const char* bad : {"GET /", "GET / HTTP/2", "GET x HTTP/1.1", "G(T / HTTP/1.1",
                          "GET  / HTTP/1.1", "GET / HTTP/1.1 extra", ""}) {
    EXPECT_THAT(ParseRequestLine(bad).status().message(), HasSubstr("malformed request line"))
        << bad;
  }
}

TEST(ParseContentLength, DigitsUpToTheLimit) {
  EXPECT_EQ(ParseContentLength("0", 10).value(), 0u);
  EXPECT_EQ(ParseContentLength("10", 10).value(), 10u);
  EXPECT_TRUE(absl::IsOutOfRange(ParseContentLength("11", 10).status()));
  EXPECT_TRUE(absl::IsOutOfRange(ParseContentLength("99999999999999999", 10).status()));
  for (const char* bad : {"", "-1", "1 0", "0x10", "+5", "99999999999999999999"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParseContentLength(bad, 10).status())) << bad;
  }
}

TEST(HostPort, BracketsIpv6HostsBothWays) {
  EXPECT_EQ(JoinHostPort("127.0.0.1", 4771), "127.0.0.1:4771");
  EXPECT_EQ(JoinHostPort("::1", 4771), "[::1]:4771");
  auto v6 = SplitHostPort("[::1]:0");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  auto name = SplitHostPort("collector:4318");
  ASSERT_TRUE(name.has_value());
  EXPECT_EQ(name->host, "collector");
  EXPECT_EQ(name->port, 4318);
  for (const char* bad :
       {"nocolon", ":80", "[]:80", "h:", "h:65536", "h:+80", "h:8x", "h:123456"}) {
    EXPECT_FALSE(SplitHostPort(bad).has_value()) << bad;
  }
}

HttpRouter TestRouter() {
  HttpRouter router;
  router.Handle("GET", "/ui/api/calls",
                [](const HttpRequest&, HttpResponse& out) { out.body = "list"; });
  router.Handle("GET", "/ui/api/calls/*", [](const HttpRequest& request, HttpResponse& out) {
    out.body = "one:" + request.captures[0];
  });
  router.Handle("POST", "/ui/api/dead-letters/*/redrive",
                [](const HttpRequest& request, HttpResponse& out) {
                  out.body = "redrive:" + request.captures[0];
                });
  return router;
}

HttpResponse Serve(const HttpRouter& router, std::string method, std::string path) {
  HttpRequest request;
  request.method = std::move(method);
  request.path = std::move(path);
  HttpResponse response;
  router.Serve(&request, &response);
  return response;
}

TEST(HttpRouter, MatchesWholeSegmentsAndDecodesCaptures) {
  const HttpRouter router = TestRouter();
  EXPECT_EQ(Serve(router, "GET", "/ui/api/calls").body, "list");
  EXPECT_EQ(Serve(router, "GET", "/ui/api/calls/a%2Fb").body, "one:a/b");
  EXPECT_EQ(Serve(router, "POST", "/ui/api/dead-letters/c1/redrive").body, "redrive:c1");
  EXPECT_EQ(Serve(router, "GET", "/ui/api/calls/").status, 404);  // an empty segment
  EXPECT_EQ(Serve(router, "GET", "/ui/api/calls/a/b").status, 404);
  EXPECT_EQ(Serve(router, "GET", "/ui/api/callsx").status, 404);
  EXPECT_EQ(Serve(router, "GET", "/ui/api/calls/%zz").status, 400);
  EXPECT_EQ(Serve(router, "GET", "/nothing").body,
            "/nothing not found; served here: GET /ui/api/calls, GET /ui/api/calls/*, "
            "POST /ui/api/dead-letters/*/redrive\n");
}

TEST(HttpRouter, AKnownPathWithAnotherMethodIs405WithAllow) {
  const HttpResponse response = Serve(TestRouter(), "DELETE", "/ui/api/calls/x");
  EXPECT_EQ(response.status, 405);
  EXPECT_THAT(response.headers,
              ElementsAre(std::make_pair(std::string("Allow"), std::string("GET"))));
}

}  // namespace
}  // namespace callmesh::http
