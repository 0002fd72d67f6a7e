#include "runtime/sidecar/calls/envelope.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/common/proto_time.h"

namespace callmesh::calls {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

bool OnlyGreeterAndAppCallback(absl::string_view s) {
  return s == "greeter" || s == "app-async-callback";
}

absl::StatusOr<v1::CallEnvelope> Build(const v1::InvokeAsyncRequest& request,
                                       const CallContext& context = {.source = "app"}) {
  return BuildEnvelope(DurableRequest::Of(request), context,
                       {.max_payload_bytes = 8, .default_call_timeout = absl::Minutes(5)},
                       OnlyGreeterAndAppCallback, kNow, [] { return std::string("cid-1"); });
}

v1::InvokeAsyncRequest Valid() {
  v1::InvokeAsyncRequest request;
  request.set_service("greeter");
  request.set_method("greeter.v1.Greeter/SayHello");
  request.set_payload("abc");
  return request;
}

TEST(BuildEnvelope, FillsTheEnvelopeFromRequestContextAndClock) {
  v1::InvokeAsyncRequest request = Valid();
  request.set_idempotency_key("k");
  (*request.mutable_headers())["x-tenant"] = "t1";
  absl::StatusOr<v1::CallEnvelope> envelope =
      Build(request, {.source = "app", .parent_cid = "p", .traceparent = "00-aa-bb-01"});
  ASSERT_TRUE(envelope.ok()) << envelope.status();
  EXPECT_EQ(envelope->cid(), "cid-1");
  EXPECT_EQ(envelope->kind(), v1::CALL_KIND_INVOKE_ASYNC);
  EXPECT_EQ(envelope->method(), "greeter.v1.Greeter/SayHello");
  EXPECT_EQ(envelope->payload(), "abc");
  EXPECT_EQ(envelope->source(), "app");
  EXPECT_EQ(envelope->parent_cid(), "p");
  EXPECT_EQ(envelope->traceparent(), "00-aa-bb-01");
  EXPECT_EQ(envelope->callback(), "app-async-callback");  // by convention, registered
  EXPECT_EQ(envelope->idempotency_key(), "k");
  EXPECT_EQ(envelope->headers().at("x-tenant"), "t1");
  EXPECT_EQ(FromProtoTimestamp(envelope->accepted_at()), kNow);
  EXPECT_EQ(FromProtoTimestamp(envelope->deadline()), kNow + absl::Minutes(5));
  EXPECT_EQ(CallDeadline(*envelope, absl::Hours(1), kNow), kNow + absl::Minutes(5));
}

TEST(BuildEnvelope, TimeoutSetsTheDeadlineAndCastsHaveNoCallback) {
  v1::CastRequest cast;
  cast.set_service("greeter");
  cast.set_method("/greeter.v1.Greeter/SayHello");
  cast.set_source("app");
  cast.mutable_timeout()->set_seconds(7);
  absl::StatusOr<v1::CallEnvelope> envelope =
      BuildEnvelope(DurableRequest::Of(cast), {.source = "app"}, {}, OnlyGreeterAndAppCallback,
                    kNow, [] { return std::string("c"); });
  ASSERT_TRUE(envelope.ok()) << envelope.status();
  EXPECT_EQ(envelope->kind(), v1::CALL_KIND_CAST);
  EXPECT_EQ(envelope->callback(), "");
  EXPECT_EQ(FromProtoTimestamp(envelope->deadline()), kNow + absl::Seconds(7));
}

TEST(BuildEnvelope, BadRequestsAreRefusedNamingTheProblem) {
  const struct {
    const char* why;
    void (*edit)(v1::InvokeAsyncRequest&);
    absl::StatusCode code;
    const char* names;
  } kCases[] = {
      {"bad service", [](v1::InvokeAsyncRequest& r) { r.set_service("my$host"); },
       absl::StatusCode::kInvalidArgument, "service"},
      {"bad method", [](v1::InvokeAsyncRequest& r) { r.set_method("NoSlash"); },
       absl::StatusCode::kInvalidArgument, "method"},
      {"payload too large", [](v1::InvokeAsyncRequest& r) { r.set_payload("123456789"); },
       absl::StatusCode::kResourceExhausted, "max_payload_bytes"},
      {"bad callback", [](v1::InvokeAsyncRequest& r) { r.set_callback("a b"); },
       absl::StatusCode::kInvalidArgument, "callback"},
      {"long idempotency key",
       [](v1::InvokeAsyncRequest& r) { r.set_idempotency_key(std::string(300, 'k')); },
       absl::StatusCode::kInvalidArgument, "idempotency_key"},
      {"reserved header",
       [](v1::InvokeAsyncRequest& r) { (*r.mutable_headers())["callmesh-cid"] = "x"; },
       absl::StatusCode::kInvalidArgument, "callmesh-cid"},
      {"negative timeout", [](v1::InvokeAsyncRequest& r) { r.mutable_timeout()->set_seconds(-1); },
       absl::StatusCode::kInvalidArgument, "timeout"},
      {"unregistered service", [](v1::InvokeAsyncRequest& r) { r.set_service("nobody"); },
       absl::StatusCode::kNotFound, "nobody"},
  };
  for (const auto& c : kCases) {
    v1::InvokeAsyncRequest request = Valid();
    c.edit(request);
    bool cid_taken = false;
    absl::StatusOr<v1::CallEnvelope> envelope =
        BuildEnvelope(DurableRequest::Of(request), {.source = "app"}, {.max_payload_bytes = 8},
                      OnlyGreeterAndAppCallback, kNow, [&] {
                        cid_taken = true;
                        return std::string("c");
                      });
    EXPECT_EQ(envelope.status().code(), c.code) << c.why << ": " << envelope.status();
    EXPECT_TRUE(absl::StrContains(envelope.status().message(), c.names))
        << c.why << ": " << envelope.status();
    EXPECT_FALSE(cid_taken) << c.why;
  }
}

}  // namespace
}  // namespace callmesh::calls
