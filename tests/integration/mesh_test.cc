// callmesh::Mesh and the SDK's callback routing against a real sidecar (callmesh::Sidecar, in this
// process) and the greeter: Await resolved by the completion stream, outcomes mapped to statuses,
// the stream resumed after a sidecar restart, completions pushed to `<source>-async-callback` and
// routed by method. (kill -9 of a callmeshd process is covered by tests/chaos.)
#include "runtime/sdk/mesh.h"

#include <grpcpp/create_channel.h>

#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "runtime/sdk/callback_router.h"
#include "runtime/sdk/service_host.h"
#include "runtime/sidecar/testing/in_process_sidecar.h"
#include "services/greeter/greeter_service.h"
#include "tests/support/recorded_completions.h"
#include "tests/support/sidecar_process.h"

namespace callmesh {
namespace {

using ::callmesh::testing::InProcessSidecar;
using ::callmesh::testing::RecordedCompletions;
using ::callmesh::testing::WaitUntil;
using ::greeter::v1::HelloReply;
using ::greeter::v1::HelloRequest;

constexpr char kSayHello[] = "greeter.v1.Greeter/SayHello";

std::string Hello(const std::string& name, uint32_t delay_ms = 0, int fail_code = 0) {
  HelloRequest request;
  request.set_name(name);
  request.set_delay_ms(delay_ms);
  request.set_fail_code(fail_code);
  return request.SerializeAsString();
}

std::string MessageOf(const std::string& reply_bytes) {
  HelloReply reply;
  EXPECT_TRUE(reply.ParseFromString(reply_bytes));
  return reply.message();
}

class MeshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = InProcessSidecar::Start(
        {.config_yaml = "default_retry: {max_attempts: 3, initial_backoff: 50ms, "
                        "max_backoff: 100ms}\n"
                        "callback_retry: {max_attempts: 3, initial_backoff: 50ms, "
                        "max_backoff: 100ms}\n"});
    ASSERT_TRUE(started.ok()) << started.status();
    sidecar_ = *std::move(started);
    greeter_host_ = testing::HostService("greeter", sidecar_->address(), &greeter_);
    ASSERT_NE(greeter_host_, nullptr);
  }
  MeshOptions Options(const std::string& source = "tester") {
    return {.sidecar = sidecar_->address(), .source = source};
  }

  std::unique_ptr<InProcessSidecar> sidecar_;
  greeter::GreeterService greeter_;
  std::unique_ptr<ServiceHost> greeter_host_;
};

TEST_F(MeshTest, InvokeReturnsReplyOrTargetStatus) {
  Mesh mesh(Options());
  absl::StatusOr<std::string> reply = mesh.Invoke("greeter", kSayHello, Hello("sync"));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(MessageOf(*reply), "Hello, sync!");

  absl::StatusOr<std::string> failed = mesh.Invoke("greeter", kSayHello, Hello("x", 0, 9));
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kFailedPrecondition) << failed.status();

  absl::StatusOr<std::string> unknown = mesh.Invoke("nobody", kSayHello, Hello("x"));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound) << unknown.status();
}

TEST_F(MeshTest, InvalidOptionsAreRefusedNamingTheOption) {
  Mesh mesh({.sidecar = sidecar_->address(), .source = ""});
  absl::StatusOr<Cid> cid = mesh.InvokeAsync("greeter", kSayHello, Hello("x"));
  EXPECT_EQ(cid.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(cid.status().message(), "MeshOptions.source")) << cid.status();
}

TEST_F(MeshTest, AwaitIsResolvedByTheCompletionStream) {
  Mesh mesh(Options());
  absl::StatusOr<Cid> cid = mesh.InvokeAsync("greeter", kSayHello, Hello("async", 300));
  ASSERT_TRUE(cid.ok()) << cid.status();
  absl::StatusOr<v1::Completion> done = mesh.Await(*cid, absl::Seconds(30));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->cid(), *cid);
  EXPECT_EQ(done->state(), v1::CALL_STATE_SUCCEEDED);
  absl::StatusOr<std::string> reply = ReplyOf(*done);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(MessageOf(*reply), "Hello, async!");
  // It came over the stream (a CID this Mesh issued never falls back to WaitCall).
  EXPECT_GE(mesh.completions_received(), 1u);
}

TEST_F(MeshTest, AwaitAfterTheCompletionArrivedReturnsTheKeptCompletion) {
  Mesh mesh(Options());
  absl::StatusOr<Cid> cid = mesh.InvokeAsync("greeter", kSayHello, Hello("early"));
  ASSERT_TRUE(cid.ok()) << cid.status();
  ASSERT_TRUE(WaitUntil([&] { return mesh.completions_received() >= 1; }));
  absl::StatusOr<v1::Completion> done = mesh.Await(*cid, absl::Seconds(5));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(MessageOf(done->reply()), "Hello, early!");
  // Awaiting again gives the same outcome.
  absl::StatusOr<v1::Completion> again = mesh.Await(*cid, absl::Seconds(5));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->sequence(), done->sequence());
}

TEST_F(MeshTest, ManyConcurrentAwaitsAreResolvedByOneStream) {
  Mesh mesh(Options());
  std::vector<Cid> cids;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<Cid> cid =
        mesh.InvokeAsync("greeter", kSayHello, Hello(absl::StrCat("n", i), 100));
    ASSERT_TRUE(cid.ok()) << cid.status();
    cids.push_back(*cid);
  }
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<v1::Completion> done = mesh.Await(cids[i], absl::Seconds(60));
      if (done.ok() && MessageOf(done->reply()) == absl::StrCat("Hello, n", i, "!")) ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 20);
}

TEST_F(MeshTest, AwaitOfADeduplicatedCallResolvesInANewMesh) {
  Cid first;
  {
    Mesh mesh(Options());
    absl::StatusOr<Cid> cid =
        mesh.InvokeAsync("greeter", kSayHello, Hello("once"), {.idempotency_key = "k-1"});
    ASSERT_TRUE(cid.ok()) << cid.status();
    ASSERT_TRUE(mesh.Await(*cid, absl::Seconds(30)).ok());
    first = *cid;
  }
  // Another Mesh (as after a restart of the caller) repeats the key: same CID, already done.
  Mesh again(Options());
  absl::StatusOr<Cid> cid =
      again.InvokeAsync("greeter", kSayHello, Hello("once"), {.idempotency_key = "k-1"});
  ASSERT_TRUE(cid.ok()) << cid.status();
  EXPECT_EQ(*cid, first);
  absl::StatusOr<v1::Completion> done = again.Await(*cid, absl::Seconds(30));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(MessageOf(done->reply()), "Hello, once!");
  EXPECT_EQ(greeter_.started_calls(), 1u);
}

TEST_F(MeshTest, AwaitTimesOutWithDeadlineExceededAndCanAwaitAgain) {
  Mesh mesh(Options());
  absl::StatusOr<Cid> cid = mesh.InvokeAsync("greeter", kSayHello, Hello("slow", 2000));
  ASSERT_TRUE(cid.ok()) << cid.status();
  absl::StatusOr<v1::Completion> early = mesh.Await(*cid, absl::Milliseconds(100));
  EXPECT_EQ(early.status().code(), absl::StatusCode::kDeadlineExceeded) << early.status();
  absl::StatusOr<v1::Completion> done = mesh.Await(*cid, absl::Seconds(30));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(MessageOf(done->reply()), "Hello, slow!");
}

TEST_F(MeshTest, OutcomesMapToStatuses) {
  Mesh mesh(Options());
  // FAILED: the target's code and message.
  absl::StatusOr<Cid> failed = mesh.InvokeAsync("greeter", kSayHello, Hello("x", 0, 9));
  ASSERT_TRUE(failed.ok());
  absl::StatusOr<v1::Completion> failed_done = mesh.Await(*failed, absl::Seconds(30));
  ASSERT_TRUE(failed_done.ok()) << failed_done.status();
  EXPECT_EQ(failed_done->state(), v1::CALL_STATE_FAILED);
  EXPECT_EQ(ReplyOf(*failed_done).status().code(), absl::StatusCode::kFailedPrecondition);

  // EXPIRED: DEADLINE_EXCEEDED saying it expired.
  absl::StatusOr<Cid> expired = mesh.InvokeAsync("greeter", kSayHello, Hello("late", 3000),
                                                 {.timeout = absl::Milliseconds(300)});
  ASSERT_TRUE(expired.ok());
  absl::StatusOr<v1::Completion> expired_done = mesh.Await(*expired, absl::Seconds(30));
  ASSERT_TRUE(expired_done.ok()) << expired_done.status();
  EXPECT_EQ(expired_done->state(), v1::CALL_STATE_EXPIRED);
  absl::Status expired_status = ReplyOf(*expired_done).status();
  EXPECT_EQ(expired_status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StrContains(expired_status.message(), "expired")) << expired_status;

  // CANCELLED.
  absl::StatusOr<Cid> cancelled = mesh.InvokeAsync("greeter", kSayHello, Hello("stop", 5000));
  ASSERT_TRUE(cancelled.ok());
  auto stub = v1::Sidecar::NewStub(sidecar_->Channel());
  grpc::ClientContext context;
  v1::CancelCallRequest cancel;
  cancel.set_cid(*cancelled);
  v1::Call call;
  ASSERT_TRUE(stub->CancelCall(&context, cancel, &call).ok());
  absl::StatusOr<v1::Completion> cancelled_done = mesh.Await(*cancelled, absl::Seconds(30));
  ASSERT_TRUE(cancelled_done.ok()) << cancelled_done.status();
  EXPECT_EQ(ReplyOf(*cancelled_done).status().code(), absl::StatusCode::kCancelled);
}

TEST_F(MeshTest, AwaitOfACidIssuedElsewhereUsesWaitCall) {
  Mesh issuer(Options("issuer"));
  Mesh other(Options("other"));
  absl::StatusOr<Cid> cid = issuer.InvokeAsync("greeter", kSayHello, Hello("foreign", 200));
  ASSERT_TRUE(cid.ok());
  absl::StatusOr<v1::Completion> done = other.Await(*cid, absl::Seconds(30));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(MessageOf(done->reply()), "Hello, foreign!");
  absl::StatusOr<v1::Completion> unknown =
      other.Await("01890000-0000-7000-8000-000000000000", absl::Seconds(1));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound) << unknown.status();
}

TEST_F(MeshTest, OnCompleteCallsTheFunctionOnceWithTheOutcome) {
  Mesh mesh(Options());
  absl::StatusOr<Cid> cid = mesh.InvokeAsync("greeter", kSayHello, Hello("fn", 100));
  ASSERT_TRUE(cid.ok());
  absl::Notification called;
  std::string message;
  mesh.OnComplete(*cid, [&](absl::StatusOr<v1::Completion> done) {
    if (done.ok()) message = MessageOf(done->reply());
    called.Notify();
  });
  ASSERT_TRUE(called.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(message, "Hello, fn!");
  // Already complete: called at once on this thread.
  bool again = false;
  mesh.OnComplete(*cid, [&](absl::StatusOr<v1::Completion> done) { again = done.ok(); });
  EXPECT_TRUE(again);
  // Not issued here.
  absl::Status foreign;
  mesh.OnComplete("01890000-0000-7000-8000-000000000000",
                  [&](absl::StatusOr<v1::Completion> done) { foreign = done.status(); });
  EXPECT_EQ(foreign.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(MeshTest, DestroyingTheMeshCancelsWaiters) {
  auto mesh = std::make_unique<Mesh>(Options());
  absl::StatusOr<Cid> cid = mesh->InvokeAsync("greeter", kSayHello, Hello("never", 10000));
  ASSERT_TRUE(cid.ok());
  absl::Status function_status;
  mesh->OnComplete(*cid,
                   [&](absl::StatusOr<v1::Completion> done) { function_status = done.status(); });
  absl::Status await_status;
  std::thread waiter([&] { await_status = mesh->Await(*cid, absl::Seconds(60)).status(); });
  ASSERT_TRUE(WaitUntil([&] { return mesh->awaiting() == 1; }));
  mesh.reset();
  waiter.join();
  EXPECT_EQ(await_status.code(), absl::StatusCode::kCancelled) << await_status;
  EXPECT_EQ(function_status.code(), absl::StatusCode::kCancelled) << function_status;
}

TEST_F(MeshTest, StreamResumesAfterSidecarRestart) {
  Mesh mesh(Options());
  absl::StatusOr<Cid> first = mesh.InvokeAsync("greeter", kSayHello, Hello("before"));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(mesh.Await(*first, absl::Seconds(30)).ok());

  // A call in flight while the sidecar stops (no grace): it resumes from the journal after the
  // restart, and its completion reaches the waiter over the reconnected stream.
  absl::StatusOr<Cid> during = mesh.InvokeAsync("greeter", kSayHello, Hello("during", 1500));
  ASSERT_TRUE(during.ok());
  ASSERT_TRUE(WaitUntil([&] { return greeter_.started_calls() >= 2; }));
  ASSERT_TRUE(sidecar_->Restart().ok());
  absl::StatusOr<v1::Completion> done = mesh.Await(*during, absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(MessageOf(done->reply()), "Hello, during!");

  absl::StatusOr<Cid> after = mesh.InvokeAsync("greeter", kSayHello, Hello("after"));
  ASSERT_TRUE(after.ok()) << after.status();
  absl::StatusOr<v1::Completion> after_done = mesh.Await(*after, absl::Seconds(60));
  ASSERT_TRUE(after_done.ok()) << after_done.status();
  EXPECT_EQ(MessageOf(after_done->reply()), "Hello, after!");
}

// Records the Context of every call; with a Mesh, calls `next` onward, once synchronously and once
// asynchronously (answering with the async CID), as a handler that is part of a chain.
class RelayService final : public ::greeter::v1::Greeter::Service {
 public:
  RelayService(Mesh* mesh, std::string next) : mesh_(mesh), next_(std::move(next)) {}
  grpc::Status SayHello(grpc::ServerContext* server_context, const HelloRequest* request,
                        HelloReply* reply) override {
    const Context context = Context::From(*server_context);
    {
      absl::MutexLock lock(&mu_);
      seen_.push_back(context);
    }
    reply->set_cid(context.cid());
    if (mesh_ == nullptr) return grpc::Status::OK;
    const std::string payload = request->SerializeAsString();
    absl::StatusOr<std::string> sync =
        mesh_->Invoke(next_, kSayHello, payload, {.parent = &context});
    if (!sync.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, sync.status().ToString());
    absl::StatusOr<Cid> async = mesh_->InvokeAsync(next_, kSayHello, payload, {.parent = &context});
    if (!async.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, async.status().ToString());
    reply->set_message(*async);
    return grpc::Status::OK;
  }
  std::vector<Context> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  Mesh* const mesh_;
  const std::string next_;
  absl::Mutex mu_;
  std::vector<Context> seen_ ABSL_GUARDED_BY(mu_);
};

TEST_F(MeshTest, HandlerCallsOnwardWithItsCidAsParentAndTheTraceparent) {
  constexpr char kTrace[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  RelayService last(nullptr, "");
  std::unique_ptr<ServiceHost> last_host =
      testing::HostService("relay-b", sidecar_->address(), &last);
  Mesh relay_mesh(Options("relay-a"));
  RelayService first(&relay_mesh, "relay-b");
  std::unique_ptr<ServiceHost> first_host =
      testing::HostService("relay-a", sidecar_->address(), &first);
  ASSERT_NE(last_host, nullptr);
  ASSERT_NE(first_host, nullptr);

  Mesh mesh(Options());
  absl::StatusOr<std::string> reply_bytes =
      mesh.Invoke("relay-a", kSayHello, Hello("chain"), {.traceparent = kTrace});
  ASSERT_TRUE(reply_bytes.ok()) << reply_bytes.status();
  HelloReply reply;
  ASSERT_TRUE(reply.ParseFromString(*reply_bytes));
  const std::string first_cid = reply.cid();
  ASSERT_FALSE(first_cid.empty());
  ASSERT_EQ(first.seen().size(), 1u);
  EXPECT_EQ(first.seen()[0].traceparent(), kTrace);

  // Both onward calls (sync and async) name the handler's call as their parent, same trace.
  ASSERT_TRUE(WaitUntil([&] { return last.seen().size() == 2; }));
  for (const Context& seen : last.seen()) {
    EXPECT_EQ(seen.parent_cid(), first_cid);
    EXPECT_EQ(seen.traceparent(), kTrace);
    EXPECT_EQ(seen.source(), "relay-a");
  }
  absl::StatusOr<v1::Completion> async_done = relay_mesh.Await(reply.message(), absl::Seconds(30));
  ASSERT_TRUE(async_done.ok()) << async_done.status();
  EXPECT_EQ(async_done->parent_cid(), first_cid);
}

TEST_F(MeshTest, HostWithCallbacksReceivesCompletionsByConvention) {
  RecordedCompletions completions("greeter.v1.Greeter");
  ServiceHost host({.name = "caller", .sidecar = sidecar_->address()});
  host.AddCallbacks(&completions);
  EXPECT_EQ(host.mesh_names(), (std::vector<std::string>{"caller", "caller-async-callback"}));
  ASSERT_TRUE(host.Start().ok());

  Mesh mesh(Options("caller"));
  absl::StatusOr<Cid> cid = mesh.InvokeAsync("greeter", kSayHello, Hello("pushed"));
  ASSERT_TRUE(cid.ok()) << cid.status();
  ASSERT_TRUE(WaitUntil([&] { return !completions.received().empty(); }));
  v1::Completion got = completions.received().front();
  EXPECT_EQ(got.cid(), *cid);
  EXPECT_EQ(CallInfo::From(got).source, "caller");
  EXPECT_EQ(MessageOf(got.reply()), "Hello, pushed!");
  host.Shutdown();
}

TEST(CallbackRouter, UnknownMethodIsNotFoundNamingIt) {
  CallbackRouter router;
  RecordedCompletions completions("greeter.v1.Greeter");
  router.Add(&completions);
  v1::Completion completion;
  completion.set_method("other.v1.Other/Do");
  v1::OnCompletionResponse response;
  grpc::Status status = router.OnCompletion(nullptr, &completion, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "other.v1.Other/Do"));
  completion.set_method("/greeter.v1.Greeter/SayHello");
  EXPECT_TRUE(router.OnCompletion(nullptr, &completion, &response).ok());
  EXPECT_EQ(completions.received().size(), 1u);
}

TEST(CompletionStatus, MapsEveryTerminalState) {
  v1::Completion completion;
  completion.set_cid("c");
  completion.set_state(v1::CALL_STATE_SUCCEEDED);
  completion.set_reply("bytes");
  EXPECT_EQ(*ReplyOf(completion), "bytes");
  completion.set_state(v1::CALL_STATE_FAILED);
  completion.set_status_code(5);
  completion.set_status_message("no such thing");
  EXPECT_EQ(ReplyOf(completion).status(), absl::NotFoundError("no such thing"));
  completion.set_state(v1::CALL_STATE_CANCELLED);
  EXPECT_EQ(ReplyOf(completion).status().code(), absl::StatusCode::kCancelled);
  completion.set_state(v1::CALL_STATE_EXPIRED);
  EXPECT_EQ(ReplyOf(completion).status().code(), absl::StatusCode::kDeadlineExceeded);
  completion.set_state(v1::CALL_STATE_RUNNING);
  EXPECT_EQ(ReplyOf(completion).status().code(), absl::StatusCode::kUnknown);
}

}  // namespace
}  // namespace callmesh
