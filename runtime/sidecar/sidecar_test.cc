// callmesh::Sidecar in-process on a FakeClock: the wiring (server, store, dispatcher, delivery,
// recovery, purge) exercised through the Sidecar API, with time moved by the test.
#include "runtime/sidecar/sidecar.h"

#include <grpcpp/create_channel.h>

#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gtest/gtest.h"
#include "runtime/sidecar/testing/in_process_sidecar.h"
#include "runtime/sidecar/testing/scripted_target.h"
#include "runtime/sidecar/testing/wait_call.h"

namespace callmesh {
namespace {

using ::callmesh::testing::InProcessSidecar;
using ::callmesh::testing::ScriptedTarget;

constexpr char kMethod[] = "callmesh.v1.Callback/OnCompletion";

class SidecarTest : public ::testing::Test {
 protected:
  void StartSidecar(const std::string& yaml) {
    auto started = InProcessSidecar::Start(
        {.config_yaml = absl::StrCat("services: [{name: target, addresses: ['", target_.address(),
                                     "']}]\n", yaml),
         .env = {.clock = &clock_, .jitter_seed = 1}});
    ASSERT_TRUE(started.ok()) << started.status();
    sidecar_ = *std::move(started);
    stub_ = v1::Sidecar::NewStub(sidecar_->Channel());
  }

  std::string InvokeAsync(absl::Duration timeout = absl::ZeroDuration()) {
    grpc::ClientContext context;
    v1::InvokeAsyncRequest request;
    request.set_service("target");
    request.set_method(kMethod);
    if (timeout > absl::ZeroDuration()) {
      request.mutable_timeout()->set_seconds(absl::ToInt64Seconds(timeout));
    }
    v1::InvokeAsyncResponse response;
    grpc::Status status = stub_->InvokeAsync(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.cid();
  }

  grpc::Status GetCall(const std::string& cid, v1::Call* call) {
    grpc::ClientContext context;
    v1::GetCallRequest request;
    request.set_cid(cid);
    return stub_->GetCall(&context, request, call);
  }

  // WaitCall: answers once the call is terminal (its timeout is on the fake clock, which the
  // tests do not move while they wait).
  v1::Call WaitCall(const std::string& cid) { return testing::WaitCallOk(*stub_, cid); }

  FakeClock clock_{absl::FromUnixSeconds(1800000000)};
  ScriptedTarget target_;
  std::unique_ptr<InProcessSidecar> sidecar_;
  std::unique_ptr<v1::Sidecar::Stub> stub_;
};

TEST_F(SidecarTest, ServesOnTheBoundPortAndRunsAnAsyncCall) {
  StartSidecar("");
  EXPECT_TRUE(absl::StartsWith(sidecar_->address(), "127.0.0.1:"));
  EXPECT_NE(sidecar_->address(), "127.0.0.1:0");
  const std::string cid = InvokeAsync();
  ASSERT_TRUE(target_.AwaitCalls(1));
  EXPECT_EQ(target_.calls()[0].cid, cid);
  const v1::Call call = WaitCall(cid);
  EXPECT_EQ(call.state(), v1::CALL_STATE_SUCCEEDED);
  EXPECT_EQ(absl::FromUnixSeconds(call.accepted_at().seconds()), clock_.Now());  // fake time
}

TEST_F(SidecarTest, CancelCallAnswersOnceTheOutcomeIsDurable) {
  StartSidecar("");
  target_.Script({ScriptedTarget::Hold()});
  const std::string cid = InvokeAsync();
  ASSERT_TRUE(target_.AwaitCalls(1));
  grpc::ClientContext context;
  v1::CancelCallRequest request;
  request.set_cid(cid);
  request.set_reason("test");
  v1::Call cancelled;
  ASSERT_TRUE(stub_->CancelCall(&context, request, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::CALL_STATE_CANCELLED);
  EXPECT_EQ(cancelled.completion().status_message(), "cancelled: test");
  ASSERT_TRUE(target_.AwaitHeldCallsCancelled(1));
  grpc::ClientContext unknown_context;
  request.set_cid("01890000-0000-7000-8000-000000000000");
  EXPECT_EQ(stub_->CancelCall(&unknown_context, request, &cancelled).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(SidecarTest, CallWhoseDeadlinePassedWhileStoppedExpiresAtRestart) {
  StartSidecar("");
  target_.Script({ScriptedTarget::Hold()});
  const std::string cid = InvokeAsync(absl::Seconds(10));
  ASSERT_TRUE(target_.AwaitCalls(1));
  sidecar_->Stop();
  clock_.Advance(absl::Minutes(1));  // "downtime"
  ASSERT_TRUE(sidecar_->Restart().ok());
  const v1::Call done = WaitCall(cid);
  EXPECT_EQ(done.state(), v1::CALL_STATE_EXPIRED);
  EXPECT_EQ(done.completion().status_code(), static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED));
  EXPECT_EQ(target_.calls().size(), 1u);  // no attempt after the deadline
}

TEST_F(SidecarTest, PurgesResultsOnceTheirRetentionHasPassed) {
  StartSidecar("result_retention: 100s\n");
  const std::string cid = InvokeAsync();
  ASSERT_EQ(WaitCall(cid).state(), v1::CALL_STATE_SUCCEEDED);
  // Purge runs every retention/10 = 10 s of clock time; the result is kept for 100 s.
  for (int i = 0; i < 9; ++i) {
    clock_.Advance(absl::Seconds(10));
    ASSERT_TRUE(sidecar_->sidecar().runner().AwaitIdle());
  }
  v1::Call call;
  EXPECT_TRUE(GetCall(cid, &call).ok());
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(sidecar_->sidecar().runner().AwaitIdle());
  EXPECT_EQ(GetCall(cid, &call).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(SidecarTest, WaitCallTimesOutOnTheSidecarsClock) {
  StartSidecar("");
  target_.Script({ScriptedTarget::Hold()});
  const std::string cid = InvokeAsync();
  ASSERT_TRUE(target_.AwaitCalls(1));
  grpc::ClientContext context;
  v1::WaitCallRequest request;
  request.set_cid(cid);
  // Shorter than the attempt timeout (30 s by default), so that the attempt is still running.
  request.mutable_timeout()->set_seconds(20);
  v1::Call call;
  grpc::Status status;
  absl::Notification answered;
  stub_->async()->WaitCall(&context, &request, &call, [&](grpc::Status s) {
    status = std::move(s);
    answered.Notify();
  });
  // The wait ends when the fake clock says so, with the state as it is then.
  const absl::Time timeout = clock_.Now() + absl::Seconds(20);
  ASSERT_TRUE(clock_.AwaitTimerAt(timeout));
  clock_.AdvanceTo(timeout - absl::Milliseconds(1));
  ASSERT_TRUE(sidecar_->sidecar().runner().AwaitIdle());
  EXPECT_FALSE(answered.HasBeenNotified());
  clock_.AdvanceTo(timeout);
  answered.WaitForNotification();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(call.state(), v1::CALL_STATE_RUNNING);
}

TEST_F(SidecarTest, CallContextFromBodyThenMetadataThenTheSidecarsName) {
  StartSidecar("name: home\n");
  const struct {
    const char* body_source;
    const char* metadata_source;
    const char* want;
  } kCases[] = {{"body", "meta", "body"}, {"", "meta", "meta"}, {"", "", "home"}};
  for (const auto& c : kCases) {
    grpc::ClientContext context;
    if (*c.metadata_source != '\0') context.AddMetadata("callmesh-source", c.metadata_source);
    context.AddMetadata("callmesh-parent-cid", "parent-from-metadata");
    context.AddMetadata("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    v1::InvokeAsyncRequest request;
    request.set_service("target");
    request.set_method(kMethod);
    request.set_source(c.body_source);
    v1::InvokeAsyncResponse response;
    ASSERT_TRUE(stub_->InvokeAsync(&context, request, &response).ok());
    const v1::Call call = WaitCall(response.cid());
    EXPECT_EQ(call.envelope().source(), c.want);
    EXPECT_EQ(call.envelope().parent_cid(), "parent-from-metadata");
    EXPECT_EQ(call.envelope().traceparent(),
              "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  }
}

TEST_F(SidecarTest, TraceContextIsCheckedThenCarriedToTheTarget) {
  StartSidecar("");
  constexpr char kTrace[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const struct {
    const char* traceparent;
    const char* tracestate;
    const char* want_traceparent;
    const char* want_tracestate;
  } kCases[] = {
      {kTrace, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", kTrace,
       "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"},
      {kTrace, "not a list member", kTrace, ""},              // a bad tracestate alone is dropped
      {"00-not-a-trace-id-01", "congo=t61rcWkgMzE", "", ""},  // a bad traceparent drops both
  };
  for (size_t i = 0; i < std::size(kCases); ++i) {
    const auto& c = kCases[i];
    SCOPED_TRACE(c.traceparent);
    grpc::ClientContext context;
    context.AddMetadata("traceparent", c.traceparent);
    context.AddMetadata("tracestate", c.tracestate);
    v1::InvokeAsyncRequest request;
    request.set_service("target");
    request.set_method(kMethod);
    v1::InvokeAsyncResponse response;
    ASSERT_TRUE(stub_->InvokeAsync(&context, request, &response).ok());
    // Journaled with the call, so every attempt (and a restart) sends the same context ...
    const v1::Call call = WaitCall(response.cid());
    EXPECT_EQ(call.envelope().traceparent(), c.want_traceparent);
    EXPECT_EQ(call.envelope().tracestate(), c.want_tracestate);
    // ... and the target received it as metadata.
    ASSERT_TRUE(target_.AwaitCalls(i + 1));
    const ScriptedTarget::Seen seen = target_.calls()[i];
    EXPECT_EQ(seen.cid, response.cid());
    EXPECT_EQ(seen.traceparent, c.want_traceparent);
    EXPECT_EQ(seen.tracestate, c.want_tracestate);
  }
}

TEST_F(SidecarTest, ParentCidFromBodyThenParentMetadataThenTheCallersOwnCid) {
  StartSidecar("");
  const struct {
    const char* body;
    const char* parent_metadata;
    const char* cid_metadata;
    const char* want;
  } kCases[] = {{"body", "parent", "cid", "body"},
                {"", "parent", "cid", "parent"},
                {"", "", "cid", "cid"},
                {"", "", "", ""}};
  for (const auto& c : kCases) {
    grpc::ClientContext context;
    if (*c.parent_metadata != '\0') context.AddMetadata("callmesh-parent-cid", c.parent_metadata);
    if (*c.cid_metadata != '\0') context.AddMetadata("callmesh-cid", c.cid_metadata);
    v1::InvokeAsyncRequest request;
    request.set_service("target");
    request.set_method(kMethod);
    request.set_parent_cid(c.body);
    v1::InvokeAsyncResponse response;
    ASSERT_TRUE(stub_->InvokeAsync(&context, request, &response).ok());
    EXPECT_EQ(WaitCall(response.cid()).envelope().parent_cid(), c.want) << c.want;
  }
}

TEST_F(SidecarTest, ListenAddressInUseIsRefusedNamingIt) {
  StartSidecar("");
  auto second = InProcessSidecar::Start({.listen = sidecar_->address()});
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::StrContains(second.status().message(), "cannot listen there"))
      << second.status();
}

// The registry removes an instance unreachable for remove_unreachable_after; the registrant's
// quota (limits) must be given back, as after DeregisterService.
TEST_F(SidecarTest, AnInstanceRemovedAsUnreachableGivesItsQuotaBack) {
  StartSidecar(
      "limits: {max_registered_instances: 1}\nremove_unreachable_after: 10s\n"
      "health_check_interval: 0.05s\n");
  std::string dead;
  {
    ScriptedTarget gone;
    dead = gone.address();
  }
  const auto register_worker = [&](const std::string& address) {
    grpc::ClientContext context;
    v1::RegisterServiceRequest request;
    request.set_name("worker");
    request.set_address(address);
    v1::RegisterServiceResponse response;
    return stub_->RegisterService(&context, request, &response);
  };
  const auto listed = [&] {
    grpc::ClientContext context;
    v1::ListServicesResponse services;
    EXPECT_TRUE(stub_->ListServices(&context, v1::ListServicesRequest(), &services).ok());
    for (const v1::ServiceInfo& service : services.services()) {
      if (service.name() == "worker") return true;
    }
    return false;
  };
  ASSERT_TRUE(register_worker(dead).ok());
  ASSERT_EQ(register_worker(target_.address()).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  // The health thread probes on real time; the removal reads the fake clock. The bound on the
  // rounds is a safety net for a broken sidecar, not a measurement.
  for (int round = 0; round < 3000 && listed(); ++round) {
    clock_.Advance(absl::Seconds(1));
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_FALSE(listed()) << "the unreachable instance was never removed";
  const grpc::Status again = register_worker(target_.address());
  EXPECT_TRUE(again.ok()) << again.error_message();
}

}  // namespace
}  // namespace callmesh
