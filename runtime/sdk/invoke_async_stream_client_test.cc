// InvokeAsyncStreamClient against stand-ins for sidecars it cannot get from a real callmeshd: one
// that does not serve InvokeAsyncStream (an older sidecar), and one whose stream breaks before it
// answers. The ordinary path (a real callmeshd) is covered by //tests/integration:metrics_test
// (one stream for many threads) and :mesh_test (every Mesh::InvokeAsync).
#include "runtime/sdk/invoke_async_stream_client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace callmesh {
namespace {

// Serves nothing but what a test overrides (every other RPC answers UNIMPLEMENTED).
class StandIn final : public v1::Sidecar::Service {
 public:
  // Without serve_stream every stream answers UNIMPLEMENTED. With it, the first stream reads one
  // message and ends UNAVAILABLE without an answer; later streams answer every call with CID
  // "cid-<tag>".
  bool serve_stream = false;
  // Streams opened so far.
  std::atomic<int> streams{0};

  grpc::Status InvokeAsyncStream(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::InvokeAsyncStreamResponse, v1::InvokeAsyncStreamRequest>* stream)
      override {
    const bool first = streams.fetch_add(1) == 0;
    if (!serve_stream) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not here");
    v1::InvokeAsyncStreamRequest request;
    while (stream->Read(&request)) {
      if (first) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "sidecar going away");
      v1::InvokeAsyncStreamResponse answers;
      for (const v1::InvokeAsyncStreamCall& call : request.calls()) {
        v1::InvokeAsyncStreamAnswer* answer = answers.add_answers();
        answer->set_tag(call.tag());
        answer->mutable_response()->set_cid(absl::StrCat("cid-", call.tag()));
      }
      stream->Write(answers);
    }
    return grpc::Status::OK;
  }
};

class InvokeAsyncStreamClientTest : public ::testing::Test {
 protected:
  void Start() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&stand_in_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Sidecar::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
    client_ = std::make_unique<InvokeAsyncStreamClient>(stub_.get());
  }
  void TearDown() override {
    client_.reset();
    if (server_) server_->Shutdown();
  }

  static v1::InvokeAsyncStreamCall Call() {
    v1::InvokeAsyncStreamCall call;
    call.mutable_request()->set_service("greeter");
    return call;
  }

  StandIn stand_in_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Sidecar::Stub> stub_;
  std::unique_ptr<InvokeAsyncStreamClient> client_;
};

// An older sidecar: UNIMPLEMENTED, and from then on at once (the caller makes unary RPCs).
TEST_F(InvokeAsyncStreamClientTest, SidecarWithoutTheStreamAnswersUnimplemented) {
  Start();
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<v1::InvokeAsyncResponse> answer = client_->Call(Call(), absl::Seconds(30));
    EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnimplemented) << answer.status();
  }
  EXPECT_EQ(stand_in_.streams.load(), 1) << "asked a sidecar without the stream again";
}

// The calls waiting on a stream that breaks get UNAVAILABLE saying they may have been accepted;
// the next call opens a new stream and is answered there.
TEST_F(InvokeAsyncStreamClientTest, BrokenStreamFailsItsCallsAndTheNextCallReopens) {
  stand_in_.serve_stream = true;
  Start();
  absl::StatusOr<v1::InvokeAsyncResponse> lost = client_->Call(Call(), absl::Seconds(30));
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_TRUE(absl::StrContains(lost.status().message(), "may still have been accepted"))
      << lost.status();
  std::vector<std::thread> threads;
  std::atomic<int> answered{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        absl::StatusOr<v1::InvokeAsyncResponse> answer = client_->Call(Call(), absl::Seconds(30));
        if (answer.ok() && absl::StartsWith(answer->cid(), "cid-")) ++answered;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(answered.load(), 100);
  EXPECT_EQ(stand_in_.streams.load(), 2);
}

}  // namespace
}  // namespace callmesh
