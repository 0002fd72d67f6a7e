// Traces of a call chain through a real sidecar (in process, FakeClock) to a test OTLP collector
// (a real HTTP server on loopback): A calls B asynchronously, B fails once and then answers, the
// completion goes to A's callback. One trace, linked by parent ids and the CID; the collector
// going away costs spans (counted), never calls.
#include <grpcpp/client_context.h>

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gtest/gtest.h"
#include "runtime/sidecar/sidecar.h"
#include "runtime/sidecar/testing/in_process_sidecar.h"
#include "runtime/sidecar/testing/scripted_target.h"
#include "runtime/sidecar/testing/wait_call.h"
#include "runtime/sidecar/tracing/otlp_receiver.h"
#include "runtime/sidecar/tracing/span.h"

namespace callmesh {
namespace {

using ::callmesh::testing::InProcessSidecar;
using ::callmesh::testing::ScriptedTarget;
using ::callmesh::tracing::OtlpReceiver;
using ::callmesh::tracing::ParseTraceparent;
using ::callmesh::tracing::ReceivedSpan;

constexpr char kMethod[] = "callmesh.v1.Callback/OnCompletion";
constexpr char kTraceId[] = "0af7651916cd43dd8448eb211c80319c";
constexpr char kCallerSpan[] = "b7ad6b7169203331";

class SidecarTracingTest : public ::testing::Test {
 protected:
  void StartSidecar(const std::string& endpoint) {
    auto started = InProcessSidecar::Start(
        {.config_yaml = absl::StrCat("name: a\n"
                                     "services:\n"
                                     "  - {name: b, addresses: ['",
                                     b_.address(),
                                     "']}\n"
                                     "  - {name: a-async-callback, addresses: ['",
                                     a_callback_.address(),
                                     "']}\n"
                                     "default_retry: {initial_backoff: 1s}\n"
                                     "tracing: {endpoint: '",
                                     endpoint, "'}\n"),
         .env = {.clock = &clock_, .jitter_seed = 1}});
    ASSERT_TRUE(started.ok()) << started.status();
    sidecar_ = *std::move(started);
    stub_ = v1::Sidecar::NewStub(sidecar_->Channel());
  }

  // InvokeAsync from A to B with the caller's trace context.
  std::string InvokeAsync() {
    grpc::ClientContext context;
    context.AddMetadata("traceparent", absl::StrCat("00-", kTraceId, "-", kCallerSpan, "-01"));
    v1::InvokeAsyncRequest request;
    request.set_service("b");
    request.set_method(kMethod);
    request.set_source("a");
    v1::InvokeAsyncResponse response;
    grpc::Status status = stub_->InvokeAsync(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.cid();
  }

  v1::Call WaitCall(const std::string& cid) { return testing::WaitCallOk(*stub_, cid); }

  FakeClock clock_{absl::FromUnixSeconds(1800000000)};
  ScriptedTarget b_;
  ScriptedTarget a_callback_;
  std::unique_ptr<InProcessSidecar> sidecar_;
  std::unique_ptr<v1::Sidecar::Stub> stub_;
};

TEST_F(SidecarTracingTest, OneTracePerCallChainLinkedByParentsAndCid) {
  OtlpReceiver collector;
  StartSidecar(collector.url());
  b_.Script({ScriptedTarget::Answer(grpc::StatusCode::UNAVAILABLE)});
  const std::string cid = InvokeAsync();
  // Attempt 1 failed and its retry is scheduled (the back-off is at most 1.2 s): then move time.
  absl::StatusOr<v1::Call> backing_off = sidecar_->sidecar().store().GetCall(cid);
  while (backing_off.ok() && !backing_off->has_next_attempt_at()) {
    absl::SleepFor(absl::Milliseconds(5));
    backing_off = sidecar_->sidecar().store().GetCall(cid);
  }
  ASSERT_TRUE(backing_off.ok()) << backing_off.status();
  ASSERT_TRUE(sidecar_->sidecar().runner().AwaitIdle());
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(b_.AwaitCalls(2));
  const v1::Call call = WaitCall(cid);
  EXPECT_EQ(call.state(), v1::CALL_STATE_SUCCEEDED);
  ASSERT_TRUE(a_callback_.AwaitCalls(1));

  // accept, two attempts, completion, one callback delivery.
  ASSERT_TRUE(collector.AwaitSpans(5));
  sidecar_->sidecar().FlushTraces();
  const std::vector<ReceivedSpan> spans = collector.spans();
  EXPECT_TRUE(collector.malformed().empty());
  ASSERT_EQ(spans.size(), 5u);
  std::multimap<std::string, ReceivedSpan> by_name;
  for (const ReceivedSpan& span : spans) {
    EXPECT_EQ(span.trace_id, kTraceId) << span.name;
    EXPECT_EQ(span.attributes.at("callmesh.cid"), cid) << span.name;
    EXPECT_EQ(span.service_name, "callmeshd/a");
    by_name.emplace(span.name, span);
  }
  ASSERT_EQ(by_name.count("callmesh.accept"), 1u);
  ASSERT_EQ(by_name.count("callmesh.attempt"), 2u);
  ASSERT_EQ(by_name.count("callmesh.complete"), 1u);
  ASSERT_EQ(by_name.count("callmesh.callback"), 1u);
  const ReceivedSpan accept = by_name.find("callmesh.accept")->second;
  EXPECT_EQ(accept.parent_span_id, kCallerSpan);
  // The journaled envelope carries the accept span: what a restart hangs later spans under.
  EXPECT_EQ(ParseTraceparent(call.envelope().traceparent())->span_id, accept.span_id);

  // Each attempt is a child of the accept span, and B received that attempt's span as parent.
  const std::vector<ScriptedTarget::Seen> seen_by_b = b_.calls();
  ASSERT_EQ(seen_by_b.size(), 2u);
  std::map<std::string, std::string> attempt_span_by_number;
  for (auto [it, end] = by_name.equal_range("callmesh.attempt"); it != end; ++it) {
    EXPECT_EQ(it->second.parent_span_id, accept.span_id);
    attempt_span_by_number[it->second.attributes.at("callmesh.attempt")] = it->second.span_id;
  }
  for (const ScriptedTarget::Seen& seen : seen_by_b) {
    std::optional<tracing::SpanContext> sent = ParseTraceparent(seen.traceparent);
    ASSERT_TRUE(sent.has_value()) << seen.traceparent;
    EXPECT_EQ(sent->trace_id, kTraceId);
    EXPECT_EQ(sent->span_id, attempt_span_by_number[seen.attempt]) << "attempt " << seen.attempt;
  }
  EXPECT_EQ(by_name.find("callmesh.complete")->second.parent_span_id, accept.span_id);
  EXPECT_EQ(by_name.find("callmesh.complete")->second.attributes.at("callmesh.state"),
            "CALL_STATE_SUCCEEDED");

  // A's callback joins the same trace, under the delivery span.
  const ReceivedSpan delivery = by_name.find("callmesh.callback")->second;
  EXPECT_EQ(delivery.parent_span_id, accept.span_id);
  const ScriptedTarget::Seen pushed = a_callback_.calls()[0];
  std::optional<tracing::SpanContext> callback_parent = ParseTraceparent(pushed.traceparent);
  ASSERT_TRUE(callback_parent.has_value()) << pushed.traceparent;
  EXPECT_EQ(callback_parent->trace_id, kTraceId);
  EXPECT_EQ(callback_parent->span_id, delivery.span_id);
  EXPECT_EQ(pushed.request.traceparent(), call.envelope().traceparent());
}

TEST_F(SidecarTracingTest, SyncInvokeIsOneSpanUnderTheCallersAndTheTargetsParent) {
  OtlpReceiver collector;
  StartSidecar(collector.url());
  grpc::ClientContext context;
  context.AddMetadata("traceparent", absl::StrCat("00-", kTraceId, "-", kCallerSpan, "-01"));
  v1::InvokeRequest request;
  request.set_service("b");
  request.set_method(kMethod);
  request.set_source("a");
  v1::InvokeResponse response;
  grpc::Status status = stub_->Invoke(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  ASSERT_TRUE(collector.AwaitSpans(1));
  const std::vector<ReceivedSpan> spans = collector.spans();
  ASSERT_EQ(spans.size(), 1u);
  const ReceivedSpan& invoke = spans[0];
  EXPECT_EQ(invoke.name, "callmesh.invoke");
  EXPECT_EQ(invoke.trace_id, kTraceId);
  EXPECT_EQ(invoke.parent_span_id, kCallerSpan);
  EXPECT_EQ(invoke.attributes.at("callmesh.cid"), response.cid());
  EXPECT_EQ(invoke.attributes.at("callmesh.service"), "b");
  // B received the sidecar's span as its parent, in the caller's trace.
  ASSERT_EQ(b_.calls().size(), 1u);
  std::optional<tracing::SpanContext> sent = ParseTraceparent(b_.calls()[0].traceparent);
  ASSERT_TRUE(sent.has_value()) << b_.calls()[0].traceparent;
  EXPECT_EQ(sent->trace_id, kTraceId);
  EXPECT_EQ(sent->span_id, invoke.span_id);
}

TEST_F(SidecarTracingTest, CollectorAwayLosesSpansNeverCalls) {
  std::string closed;
  {
    OtlpReceiver gone;
    closed = gone.url();
  }
  StartSidecar(closed);
  for (int i = 0; i < 3; ++i) {
    const std::string cid = InvokeAsync();
    EXPECT_EQ(WaitCall(cid).state(), v1::CALL_STATE_SUCCEEDED);
  }
  ASSERT_TRUE(a_callback_.AwaitCalls(3));
  sidecar_->sidecar().FlushTraces();
  const std::string metrics = sidecar_->sidecar().metrics().Render();
  EXPECT_TRUE(absl::StrContains(metrics, "callmesh_trace_spans_exported_total 0\n")) << metrics;
  // Each call: accept, attempt, completion, and its callback delivery (if ended by now).
  const size_t at = metrics.find("callmesh_trace_spans_dropped_total{reason=\"export_failed\"} ");
  ASSERT_NE(at, std::string::npos) << metrics;
  const int dropped = std::stoi(metrics.substr(metrics.find("} ", at) + 2));
  EXPECT_GE(dropped, 9);
  EXPECT_LE(dropped, 12);
}

}  // namespace
}  // namespace callmesh
