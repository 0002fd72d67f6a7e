// The tracing pieces against a real HTTP receiver on loopback: the OTLP JSON encoding read back by
// an independent parser, the exporter's batching, flushing and drop counting, and the tracer's
// parent/child links. Time is a FakeClock where spans are timed.
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "runtime/common/clock.h"
#include "runtime/sidecar/tracing/call_tracer.h"
#include "runtime/sidecar/tracing/http_endpoint.h"
#include "runtime/sidecar/tracing/otlp_receiver.h"
#include "runtime/sidecar/tracing/span.h"
#include "runtime/sidecar/tracing/span_exporter.h"

namespace callmesh::tracing {
namespace {

constexpr char kTraceparent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// A URL nothing listens on: a receiver's port after it stopped.
std::string ClosedUrl() {
  OtlpReceiver gone;
  return gone.url();
}

std::unique_ptr<SpanExporter> Exporter(const std::string& url, size_t max_queued = 4096) {
  absl::StatusOr<std::unique_ptr<SpanExporter>> exporter =
      SpanExporter::Create({.endpoint = url,
                            .service_name = "callmeshd/test",
                            .max_queued = max_queued,
                            .max_batch = 100,
                            // Only Flush sends: the tests decide when a batch leaves.
                            .flush_interval = absl::Hours(1)});
  EXPECT_TRUE(exporter.ok()) << exporter.status();
  return *std::move(exporter);
}

TEST(Traceparent, ParsesAndFormatsTheW3CForm) {
  std::optional<SpanContext> parsed = ParseTraceparent(kTraceparent);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(parsed->span_id, "00f067aa0ba902b7");
  EXPECT_TRUE(parsed->sampled);
  EXPECT_EQ(FormatTraceparent(*parsed), kTraceparent);
  EXPECT_FALSE(
      ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")->sampled);
  EXPECT_FALSE(ParseTraceparent("").has_value());
  EXPECT_FALSE(ParseTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  EXPECT_FALSE(ParseTraceparent("garbage").has_value());
}

TEST(HttpEndpoint, SplitsTheUrlAndNamesTheFieldOnError) {
  absl::StatusOr<HttpEndpoint> plain = ParseHttpEndpoint("http://127.0.0.1:4318", "f");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->scheme_host_port, "http://127.0.0.1:4318");
  EXPECT_EQ(plain->path, "/v1/traces");
  EXPECT_EQ(plain->host, "127.0.0.1");
  EXPECT_EQ(plain->port, 4318);
  absl::StatusOr<HttpEndpoint> ipv6 = ParseHttpEndpoint("http://[::1]:4318/", "f");
  ASSERT_TRUE(ipv6.ok()) << ipv6.status();
  EXPECT_EQ(ipv6->host, "::1");
  absl::StatusOr<HttpEndpoint> path =
      ParseHttpEndpoint("http://collector:4318/otlp/v1/traces", "f");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(path->scheme_host_port, "http://collector:4318");
  EXPECT_EQ(path->path, "/otlp/v1/traces");
  EXPECT_EQ(ParseHttpEndpoint("https://c:4318", "tracing.endpoint").status().message(),
            "tracing.endpoint: must be an http:// URL such as http://127.0.0.1:4318/v1/traces, "
            "got \"https://c:4318\"");
  EXPECT_EQ(ParseHttpEndpoint("http://collector/v1/traces", "tracing.endpoint").status().message(),
            "tracing.endpoint: must name host:port after http://, got "
            "\"http://collector/v1/traces\"");
  EXPECT_FALSE(ParseHttpEndpoint("http://:4318", "f").ok());
  EXPECT_FALSE(ParseHttpEndpoint("http://c:43x8", "f").ok());
  EXPECT_FALSE(ParseHttpEndpoint("http://c:70000", "f").ok());
  EXPECT_FALSE(ParseHttpEndpoint("http://c:0", "f").ok());
}

TEST(SpanExporter, SendsSpansAsOtlpJsonThatAParserReadsBack) {
  OtlpReceiver receiver;
  std::unique_ptr<SpanExporter> exporter = Exporter(receiver.url());
  Span span;
  span.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  span.span_id = "00f067aa0ba902b7";
  span.parent_span_id = "1111111111111111";
  span.name = "callmesh.attempt";
  span.kind = SpanKind::kClient;
  span.start = absl::FromUnixNanos(1700000000123456789);
  span.end = absl::FromUnixNanos(1700000001123456789);
  span.attributes = {{"callmesh.cid", "cid-1"}, {"odd", "quote \" backslash \\ newline \n end"}};
  span.int_attributes = {{"callmesh.attempt", 3}};
  span.status = SpanStatus::kError;
  span.status_message = "UNAVAILABLE: down";
  Span root = span;
  root.span_id = "2222222222222222";
  root.parent_span_id.clear();
  exporter->Export(span);
  exporter->Export(root);
  exporter->Flush();
  EXPECT_EQ(exporter->exported(), 2u);
  EXPECT_TRUE(receiver.malformed().empty());
  const std::vector<ReceivedSpan> got = receiver.spans();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].trace_id, span.trace_id);
  EXPECT_EQ(got[0].span_id, span.span_id);
  EXPECT_EQ(got[0].parent_span_id, "1111111111111111");
  EXPECT_EQ(got[0].name, "callmesh.attempt");
  EXPECT_EQ(got[0].kind, 3);
  EXPECT_EQ(got[0].status_code, 2);
  EXPECT_EQ(got[0].start_unix_nanos, "1700000000123456789");
  EXPECT_EQ(got[0].end_unix_nanos, "1700000001123456789");
  EXPECT_EQ(got[0].attributes.at("callmesh.cid"), "cid-1");
  EXPECT_EQ(got[0].attributes.at("odd"), "quote \" backslash \\ newline \n end");
  EXPECT_EQ(got[0].attributes.at("callmesh.attempt"), "3");
  EXPECT_EQ(got[0].service_name, "callmeshd/test");
  EXPECT_EQ(got[1].parent_span_id, "");
}

TEST(SpanExporter, CollectorAwayLosesSpansAndCountsThem) {
  std::unique_ptr<SpanExporter> exporter = Exporter(ClosedUrl());
  for (int i = 0; i < 5; ++i) exporter->Export(Span{.trace_id = "t", .span_id = "s"});
  exporter->Flush();
  EXPECT_EQ(exporter->exported(), 0u);
  EXPECT_EQ(exporter->dropped_export_failed(), 5u);
  EXPECT_EQ(exporter->dropped_queue_full(), 0u);
}

TEST(SpanExporter, FullQueueDropsAndCountsWithoutBlocking) {
  OtlpReceiver receiver;
  std::unique_ptr<SpanExporter> exporter = Exporter(receiver.url(), /*max_queued=*/3);
  for (int i = 0; i < 10; ++i) exporter->Export(Span{.trace_id = "t", .span_id = "s"});
  EXPECT_EQ(exporter->dropped_queue_full(), 7u);
  exporter->Flush();
  EXPECT_EQ(exporter->exported(), 3u);
  EXPECT_EQ(receiver.spans().size(), 3u);
}

class CallTracerTest : public ::testing::Test {
 protected:
  CallTracerTest() : exporter_(Exporter(receiver_.url())), tracer_(exporter_.get(), &clock_) {}

  std::vector<ReceivedSpan> Exported() {
    exporter_->Flush();
    return receiver_.spans();
  }

  FakeClock clock_;
  OtlpReceiver receiver_;
  std::unique_ptr<SpanExporter> exporter_;
  CallTracer tracer_;
};

TEST_F(CallTracerTest, AttemptsCompletionAndDeliveryHangUnderTheAcceptSpan) {
  v1::CallEnvelope envelope;
  envelope.set_service("b");
  envelope.set_method("pkg.B/Do");
  envelope.set_traceparent(kTraceparent);
  envelope.set_tracestate("vendor=1");
  CallTracer::Open accept = tracer_.StartAccept(&envelope);
  const std::optional<SpanContext> call_context = ParseTraceparent(envelope.traceparent());
  ASSERT_TRUE(call_context.has_value());
  EXPECT_EQ(call_context->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_NE(call_context->span_id, "00f067aa0ba902b7");
  EXPECT_EQ(envelope.tracestate(), "vendor=1");
  clock_.Advance(absl::Milliseconds(3));
  tracer_.EndAccept(std::move(accept), "cid-1", absl::OkStatus());
  envelope.set_cid("cid-1");

  CallTracer::Open attempt = tracer_.StartAttempt(envelope, 1);
  const std::optional<SpanContext> sent = ParseTraceparent(attempt.traceparent);
  ASSERT_TRUE(sent.has_value());
  clock_.Advance(absl::Milliseconds(5));
  tracer_.EndAttempt(std::move(attempt), 14, "down");

  v1::Completion completion;
  completion.set_cid("cid-1");
  completion.set_state(v1::CALL_STATE_SUCCEEDED);
  completion.set_traceparent(envelope.traceparent());
  tracer_.RecordCompletion(completion);
  CallTracer::Open delivery = tracer_.StartDelivery(completion, "a-async-callback", 1);
  tracer_.EndDelivery(std::move(delivery), 0, "");

  const std::vector<ReceivedSpan> spans = Exported();
  ASSERT_EQ(spans.size(), 4u);
  std::map<std::string, ReceivedSpan> by_name;
  for (const ReceivedSpan& span : spans) {
    EXPECT_EQ(span.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736") << span.name;
    EXPECT_EQ(span.attributes.at("callmesh.cid"), "cid-1") << span.name;
    by_name[span.name] = span;
  }
  EXPECT_EQ(by_name["callmesh.accept"].parent_span_id, "00f067aa0ba902b7");
  EXPECT_EQ(by_name["callmesh.accept"].span_id, call_context->span_id);
  EXPECT_EQ(by_name["callmesh.accept"].end_unix_nanos,
            std::to_string(std::stoll(by_name["callmesh.accept"].start_unix_nanos) + 3000000));
  EXPECT_EQ(by_name["callmesh.attempt"].parent_span_id, call_context->span_id);
  EXPECT_EQ(by_name["callmesh.attempt"].span_id, sent->span_id);
  EXPECT_EQ(by_name["callmesh.attempt"].status_code, 2);
  EXPECT_EQ(by_name["callmesh.attempt"].attributes.at("rpc.grpc.status_code"), "14");
  EXPECT_EQ(by_name["callmesh.complete"].parent_span_id, call_context->span_id);
  EXPECT_EQ(by_name["callmesh.callback"].parent_span_id, call_context->span_id);
}

TEST_F(CallTracerTest, ACallWithoutTraceContextStartsATrace) {
  v1::CallEnvelope envelope;
  CallTracer::Open accept = tracer_.StartAccept(&envelope);
  const std::optional<SpanContext> started = ParseTraceparent(envelope.traceparent());
  ASSERT_TRUE(started.has_value());
  EXPECT_TRUE(started->sampled);
  tracer_.EndAccept(std::move(accept), "cid-2", absl::OkStatus());
  const std::vector<ReceivedSpan> spans = Exported();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].trace_id, started->trace_id);
  EXPECT_EQ(spans[0].parent_span_id, "");
}

TEST_F(CallTracerTest, AnUnsampledTraceIsCarriedButNotRecorded) {
  v1::CallEnvelope envelope;
  envelope.set_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  CallTracer::Open accept = tracer_.StartAccept(&envelope);
  EXPECT_TRUE(absl::EndsWith(envelope.traceparent(), "-00"));
  EXPECT_TRUE(absl::StartsWith(envelope.traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-"));
  tracer_.EndAccept(std::move(accept), "cid-3", absl::OkStatus());
  EXPECT_TRUE(Exported().empty());
}

}  // namespace
}  // namespace callmesh::tracing
