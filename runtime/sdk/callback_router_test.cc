// CallbackRouter served by a real gRPC server on loopback: OnCompletions answers each completion
// with its handler's status, handles completions of one stream concurrently, and OnCompletion is
// still served.
#include "runtime/sdk/callback_router.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <map>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace callmesh {
namespace {

// Completions of "world.v1.World/...": a CID starting with "bad" fails with INTERNAL; a CID
// starting with "pair" waits until two such completions are being handled at once.
class WorldCallbacks final : public CallbackHandler {
 public:
  const char* callmesh_grpc_service() const override { return "world.v1.World"; }
  absl::Status HandleCompletion(const v1::Completion& completion) override {
    if (absl::StartsWith(completion.cid(), "bad")) return absl::InternalError("cannot take it");
    if (absl::StartsWith(completion.cid(), "pair")) {
      absl::MutexLock lock(&mu_);
      ++pairs_inside_;
      auto both = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pairs_inside_ >= 2; };
      // A safety net for a broken router (handlers one at a time), not a measurement.
      if (!mu_.AwaitWithTimeout(absl::Condition(&both), absl::Seconds(60))) {
        return absl::DeadlineExceededError("handled one at a time");
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Mutex mu_;
  int pairs_inside_ ABSL_GUARDED_BY(mu_) = 0;
};

class CallbackRouterTest : public ::testing::Test {
 protected:
  CallbackRouterTest() {
    router_.Add(&callbacks_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&router_);
    server_ = builder.BuildAndStart();
    stub_ = v1::Callback::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }
  ~CallbackRouterTest() override { server_->Shutdown(); }

  static v1::Completion Completion(const std::string& cid, const std::string& method) {
    v1::Completion completion;
    completion.set_cid(cid);
    completion.set_method(method);
    completion.set_state(v1::CALL_STATE_SUCCEEDED);
    completion.set_delivery_attempt(3);
    return completion;
  }

  // Sends `completions` on one stream, half-closes it and returns the acks by CID.
  std::map<std::string, v1::CompletionAck> Stream(const std::vector<v1::Completion>& completions) {
    grpc::ClientContext context;
    auto stream = stub_->OnCompletions(&context);
    for (const v1::Completion& completion : completions) EXPECT_TRUE(stream->Write(completion));
    EXPECT_TRUE(stream->WritesDone());
    std::map<std::string, v1::CompletionAck> acks;
    v1::CompletionAck ack;
    while (stream->Read(&ack)) acks[ack.cid()] = ack;
    const grpc::Status status = stream->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return acks;
  }

  WorldCallbacks callbacks_;
  CallbackRouter router_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Callback::Stub> stub_;
};

TEST_F(CallbackRouterTest, StreamAcksEachCompletionWithItsHandlersStatus) {
  std::map<std::string, v1::CompletionAck> acks = Stream(
      {Completion("ok-1", "/world.v1.World/Greet"), Completion("bad-1", "world.v1.World/Greet"),
       Completion("ok-2", "other.v1.Other/Do")});
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(acks["ok-1"].status_code(), 0);
  EXPECT_EQ(acks["ok-1"].delivery_attempt(), 3u);
  EXPECT_EQ(acks["bad-1"].status_code(), static_cast<int>(grpc::StatusCode::INTERNAL));
  EXPECT_EQ(acks["bad-1"].status_message(), "cannot take it");
  EXPECT_EQ(acks["bad-1"].delivery_attempt(), 3u);
  EXPECT_EQ(acks["ok-2"].status_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_TRUE(absl::StrContains(acks["ok-2"].status_message(), "other.v1.Other/Do"))
      << acks["ok-2"].status_message();
}

TEST_F(CallbackRouterTest, StreamHandlesCompletionsConcurrently) {
  // Each handler returns only once both are inside: one at a time, both would fail.
  std::map<std::string, v1::CompletionAck> acks = Stream(
      {Completion("pair-1", "world.v1.World/Greet"), Completion("pair-2", "world.v1.World/Greet")});
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks["pair-1"].status_code(), 0) << acks["pair-1"].status_message();
  EXPECT_EQ(acks["pair-2"].status_code(), 0) << acks["pair-2"].status_message();
}

TEST_F(CallbackRouterTest, UnaryOnCompletionIsStillServed) {
  grpc::ClientContext ok_context;
  v1::OnCompletionResponse response;
  EXPECT_TRUE(
      stub_->OnCompletion(&ok_context, Completion("ok-3", "world.v1.World/Greet"), &response).ok());
  grpc::ClientContext bad_context;
  const grpc::Status bad =
      stub_->OnCompletion(&bad_context, Completion("bad-2", "world.v1.World/Greet"), &response);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INTERNAL);
}

}  // namespace
}  // namespace callmesh
