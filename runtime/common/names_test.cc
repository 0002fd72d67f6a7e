#include "runtime/common/names.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace callmesh {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A refused input and the start of its problem.
struct Refused {
  std::string text;
  std::string problem;
};

TEST(ServiceName, AcceptedNames) {
  for (const std::string& name :
       {std::string("greeter"), std::string("billing-async-callback"), std::string("a.b_c-1"),
        std::string("A"), std::string("123"), std::string(128, 'a')}) {
    EXPECT_EQ(ServiceNameProblem(name), std::nullopt) << name;
    EXPECT_TRUE(ValidateServiceName(name, "service").ok()) << name;
  }
}

TEST(ServiceName, RefusedNamesSayWhy) {
  const std::vector<Refused> cases = {
      {"", "is required"},
      {std::string(129, 'a'), "must be at most 128 characters, got 129"},
      {"has space", "may only contain letters, digits, '.', '_' and '-', got \"has space\""},
      {"slash/name", "may only contain letters"},
      {"my$host", "may only contain letters"},
      {"tab\tname", "may only contain letters, digits, '.', '_' and '-', got \"tab\\tname\""},
      {"caf\xc3\xa9", "may only contain letters"},
  };
  for (const Refused& c : cases) {
    SCOPED_TRACE(c.text);
    const absl::Status status = ValidateServiceName(c.text, "request.service");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), StartsWith("request.service: " + c.problem));
  }
}

TEST(Method, AcceptedMethodsNormalizeToTheWirePath) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"greeter.v1.Greeter/SayHello", "/greeter.v1.Greeter/SayHello"},
      {"/greeter.v1.Greeter/SayHello", "/greeter.v1.Greeter/SayHello"},
      {"Svc/M", "/Svc/M"},
      {"_pkg.S_2/m_1", "/_pkg.S_2/m_1"},
  };
  for (const auto& [method, path] : cases) {
    EXPECT_EQ(MethodProblem(method), std::nullopt) << method;
    absl::StatusOr<std::string> normalized = MethodPath(method, "method");
    ASSERT_TRUE(normalized.ok()) << normalized.status();
    EXPECT_EQ(*normalized, path);
  }
}

TEST(Method, RefusedMethodsNameTheFieldAndTheMethod) {
  const std::vector<Refused> cases = {
      {"", "is required (\"package.Service/Method\")"},
      {"SayHello", "must be a gRPC method \"package.Service/Method\", got \"SayHello\""},
      {"a/b/c", "must be a gRPC method"},
      {"pkg.Svc/", "must be a gRPC method"},
      {"/", "must be a gRPC method"},
      {"//M", "must be a gRPC method"},
      {"/pkg.Svc/Me thod", "must be a gRPC method"},
      {"pkg..Svc/M", "must be a gRPC method \"package.Service/Method\", got \"pkg..Svc/M\""},
      {".pkg.Svc/M", "must be a gRPC method"},
      {"pkg.Svc./M", "must be a gRPC method"},
      {"1pkg.Svc/M", "must be a gRPC method"},
      {"pkg.Svc/1M", "must be a gRPC method"},
      {"pkg-x.Svc/M", "must be a gRPC method"},
  };
  for (const Refused& c : cases) {
    SCOPED_TRACE(c.text);
    const absl::Status status = MethodPath(c.text, "request.method").status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), StartsWith("request.method: " + c.problem));
  }
}

TEST(Topic, EmptyIsRefused) {
  EXPECT_TRUE(ValidateTopic("orders.created", "topic").ok());
  const absl::Status status = ValidateTopic("", "subscriptions[0].topic");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "subscriptions[0].topic: is required");
}

TEST(Topic, FollowsTheServiceNameRules) {
  const absl::Status status = ValidateTopic("orders/created", "topic");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "topic: may only contain letters, digits, '.', '_' and '-', got \"orders/created\"");
  EXPECT_FALSE(ValidateTopic(std::string(129, 't'), "topic").ok());
}

TEST(Address, AcceptedAddresses) {
  for (const char* address :
       {"127.0.0.1:4770", "localhost:1", "ledger.internal:443", "a:65535", "0.0.0.0:80",
        "255.255.255.255:1", "my-host.example.com.:8080", "xn--bcher-kva.example:1", "[::1]:50051",
        "[::]:1", "[fe80::1%eth0]:9", "[::ffff:127.0.0.1]:80", "1host:2", "h0st-1:2"}) {
    SCOPED_TRACE(address);
    EXPECT_EQ(AddressProblem(address, PortUse::kDial), std::nullopt);
    EXPECT_TRUE(ValidateAddress(address, "address").ok());
    EXPECT_TRUE(ValidateListenAddress(address, "listen").ok());
  }
}

TEST(Address, PortZeroIsForListeningOnly) {
  EXPECT_TRUE(ValidateListenAddress("localhost:0", "listen").ok());
  EXPECT_TRUE(ValidateListenAddress("[::1]:0", "listen").ok());
  const absl::Status dial = ValidateAddress("host:0", "address");
  EXPECT_EQ(dial.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dial.message(),
            "address: must be host:port with a port from 1 to 65535, got \"host:0\"");
  EXPECT_THAT(std::string(ValidateListenAddress("h:70000", "listen").message()),
              StartsWith("listen: must be host:port with a port from 0 to 65535"));
}

TEST(Address, RefusedAddressesSayWhy) {
  const std::vector<Refused> cases = {
      {"", "is required (host:port)"},
      {"127.0.0.1", "must be host:port, got \"127.0.0.1\""},
      {"nocolon", "must be host:port, got \"nocolon\""},
      {":50051", "must be host:port, got \":50051\" (no host)"},
      {"127.0.0.1:", "must be host:port with a port from 1 to 65535"},
      {"127.0.0.1:65536", "must be host:port with a port from 1 to 65535"},
      {"127.0.0.1:-1", "must be host:port with a port from 1 to 65535"},
      {"127.0.0.1:+80", "must be host:port with a port from 1 to 65535"},
      {"h:080000", "must be host:port with a port from 1 to 65535"},
      {"h:8o", "must be host:port with a port from 1 to 65535"},
      {"::1:50051", "must be host:port with IPv6 hosts in brackets"},
      {"[::1", "must be host:port, got \"[::1\" (no ']' after the IPv6 host)"},
      {"[::1]", "must be host:port, got \"[::1]\""},
      {"[::1]80", "must be host:port, got \"[::1]80\""},
      {"[]:80", "has an invalid IPv6 host in \"[]:80\""},
      {"[localhost]:80", "has an invalid IPv6 host"},
      {"[::g]:80", "has an invalid IPv6 host"},
      {"[fe80::1%]:80", "has an invalid IPv6 host"},
      {"my$host:80",
       "has an invalid host \"my$host\" in \"my$host:80\": a host name may only contain letters, "
       "digits, '-' and '.'"},
      {"bad host:1", "has an invalid host \"bad host\""},
      {"under_score:1", "has an invalid host"},
      {"a..b:1", "has an invalid host \"a..b\" in \"a..b:1\": a host name has no empty labels"},
      {".a:1", "a host name has no empty labels"},
      {"-a.b:1", "a host name label may not start or end with '-'"},
      {"a-.b:1", "a host name label may not start or end with '-'"},
      {std::string(64, 'a') + ".b:1", "a host name label has at most 63 characters"},
      {std::string(254, 'a') + ":1", "a host name has at most 253 characters"},
      {"256.1.1.1:80", "an IPv4 address is four numbers from 0 to 255"},
      {"1.2.3:80", "an IPv4 address is four numbers from 0 to 255"},
      {"1.2.3.4.5:80", "an IPv4 address is four numbers from 0 to 255"},
      {"1..2.3:80", "an IPv4 address is four numbers from 0 to 255"},
      {"unix:/tmp/socket", "must be host:port with a port from 1 to 65535"},
  };
  for (const Refused& c : cases) {
    SCOPED_TRACE(c.text);
    const absl::Status status = ValidateAddress(c.text, "MeshOptions.sidecar");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.problem));
    EXPECT_THAT(std::string(status.message()), StartsWith("MeshOptions.sidecar: "));
  }
}

TEST(Address, LongInputIsShortenedInTheMessage) {
  const std::string address = std::string(300, 'a') + ":1";
  const absl::Status status = ValidateAddress(address, "address");
  EXPECT_LT(status.message().size(), 300u) << status;
}

TEST(CallContext, AcceptsNamesAndPrintableCidsOnly) {
  EXPECT_TRUE(ValidateCallContext("", "").ok());
  EXPECT_TRUE(ValidateCallContext("billing", "01a209ce-40bb-74ba-831e-19a7a6942247").ok());
  absl::Status source = ValidateCallContext("bill ing", "");
  EXPECT_EQ(source.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(source.message()), StartsWith("source: may only contain"));
  absl::Status parent = ValidateCallContext("billing", "a\x01b");
  EXPECT_EQ(parent.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(parent.message()), StartsWith("parent_cid: "));
  EXPECT_FALSE(ValidateCallContext("", std::string(129, 'c')).ok());
  EXPECT_TRUE(ValidateCallContext("", std::string(128, 'c')).ok());
  EXPECT_FALSE(ValidateCallContext("", "with space").ok());
}

TEST(ConventionCallback, AppendsTheSuffix) {
  EXPECT_EQ(ConventionCallback("billing"), "billing-async-callback");
  EXPECT_EQ(ServiceNameProblem(ConventionCallback(std::string(113, 'a'))), std::nullopt);
}

}  // namespace
}  // namespace callmesh
