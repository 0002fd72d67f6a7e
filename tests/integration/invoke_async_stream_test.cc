// Sidecar.InvokeAsyncStream against a real callmeshd (RocksDB journal) and the greeter: each
// call on the stream, alone or several to a message, is accepted as a unary InvokeAsync would be
// and answered by its tag; a refused one is answered with its status while the stream goes on;
// more calls than the server reads ahead are all answered; a client that goes away mid-stream
// leaves a working sidecar.
#include <grpcpp/create_channel.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gtest/gtest.h"
#include "runtime/sdk/service_host.h"
#include "services/greeter/greeter_service.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/wait_call.h"

namespace callmesh {
namespace {

using ::callmesh::testing::SidecarProcess;
using ::greeter::v1::HelloReply;
using ::greeter::v1::HelloRequest;

using Stream =
    grpc::ClientReaderWriter<v1::InvokeAsyncStreamRequest, v1::InvokeAsyncStreamResponse>;

constexpr char kSayHello[] = "greeter.v1.Greeter/SayHello";

v1::InvokeAsyncStreamCall StreamCall(uint64_t tag, const std::string& name,
                                     const std::string& service = "greeter") {
  HelloRequest hello;
  hello.set_name(name);
  v1::InvokeAsyncStreamCall request;
  request.set_tag(tag);
  request.mutable_request()->set_service(service);
  request.mutable_request()->set_method(kSayHello);
  request.mutable_request()->set_payload(hello.SerializeAsString());
  request.mutable_request()->set_source("tester");
  return request;
}

class InvokeAsyncStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // "parked": nothing listens at its address (loopback port 1), so its calls are accepted and
    // then wait.
    auto started = SidecarProcess::Start(
        {.config_yaml = "services:\n  - name: parked\n    addresses: [\"127.0.0.1:1\"]\n"});
    ASSERT_TRUE(started.ok()) << started.status();
    sidecar_ = std::make_unique<SidecarProcess>(*std::move(started));
    stub_ = v1::Sidecar::NewStub(sidecar_->Channel());
    greeter_host_ = testing::HostService("greeter", sidecar_->address(), &greeter_);
    ASSERT_NE(greeter_host_, nullptr);
  }

  // Writes `calls` on one stream, `per_message` to a message (while a second thread reads),
  // closes it and returns every answer by tag, and the stream's status in `status`.
  std::map<uint64_t, v1::InvokeAsyncStreamAnswer> RoundTrip(
      const std::vector<v1::InvokeAsyncStreamCall>& calls, grpc::Status* status,
      size_t per_message = 1) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    std::unique_ptr<Stream> stream = stub_->InvokeAsyncStream(&context);
    std::map<uint64_t, v1::InvokeAsyncStreamAnswer> answers;
    size_t answered = 0;
    std::thread reader([&] {
      v1::InvokeAsyncStreamResponse message;
      while (stream->Read(&message)) {
        for (const v1::InvokeAsyncStreamAnswer& answer : message.answers()) {
          ++answered;
          answers[answer.tag()] = answer;
        }
      }
    });
    for (size_t i = 0; i < calls.size(); i += per_message) {
      v1::InvokeAsyncStreamRequest message;
      for (size_t j = i; j < std::min(calls.size(), i + per_message); ++j) {
        *message.add_calls() = calls[j];
      }
      if (!stream->Write(message)) break;
    }
    stream->WritesDone();
    reader.join();
    *status = stream->Finish();
    EXPECT_EQ(answered, answers.size()) << "a tag was answered twice";
    return answers;
  }

  v1::Call Wait(const std::string& cid) { return testing::WaitCall(*stub_, cid); }

  std::unique_ptr<SidecarProcess> sidecar_;
  std::unique_ptr<v1::Sidecar::Stub> stub_;
  greeter::GreeterService greeter_;
  std::unique_ptr<ServiceHost> greeter_host_;
};

// 200 calls, 7 to a message (the last message carries 4).
TEST_F(InvokeAsyncStreamTest, EachCallIsAcceptedAnsweredByItsTagAndRuns) {
  std::vector<v1::InvokeAsyncStreamCall> calls;
  for (uint64_t tag = 1; tag <= 200; ++tag) calls.push_back(StreamCall(tag, absl::StrCat(tag)));
  grpc::Status status;
  std::map<uint64_t, v1::InvokeAsyncStreamAnswer> answers = RoundTrip(calls, &status, 7);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(answers.size(), 200u);
  std::set<std::string> cids;
  for (const auto& [tag, answer] : answers) {
    EXPECT_EQ(answer.code(), 0) << tag << ": " << answer.message();
    EXPECT_EQ(answer.response().cid().size(), 36u) << tag;
    EXPECT_FALSE(answer.response().deduplicated());
    cids.insert(answer.response().cid());
  }
  EXPECT_EQ(cids.size(), 200u);
  // Each tag's CID is the call of that request: it ran with that request's payload.
  for (uint64_t tag : {1, 100, 200}) {
    const v1::Call call = Wait(answers[tag].response().cid());
    ASSERT_EQ(call.state(), v1::CALL_STATE_SUCCEEDED) << tag;
    HelloReply reply;
    ASSERT_TRUE(reply.ParseFromString(call.completion().reply()));
    EXPECT_EQ(reply.message(), absl::StrCat("Hello, ", tag, "!"));
    EXPECT_EQ(call.envelope().source(), "tester");
  }
}

// Two calls to a message: a refused call does not take the other call of its message with it.
TEST_F(InvokeAsyncStreamTest, RefusedCallIsAnsweredWithItsStatusAndTheStreamGoesOn) {
  v1::InvokeAsyncStreamCall negative_timeout = StreamCall(2, "late");
  negative_timeout.mutable_request()->mutable_timeout()->set_seconds(-1);
  v1::InvokeAsyncStreamCall no_method = StreamCall(3, "nowhere");
  no_method.mutable_request()->clear_method();
  grpc::Status status;
  std::map<uint64_t, v1::InvokeAsyncStreamAnswer> answers = RoundTrip(
      {StreamCall(1, "first"), negative_timeout, no_method, StreamCall(4, "last")}, &status, 2);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_EQ(answers[1].code(), 0) << answers[1].message();
  EXPECT_EQ(answers[4].code(), 0) << answers[4].message();
  EXPECT_EQ(answers[2].code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(answers[2].message(), "timeout")) << answers[2].message();
  EXPECT_TRUE(answers[2].response().cid().empty());
  EXPECT_EQ(answers[3].code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(answers[3].message(), "method")) << answers[3].message();
  // Nothing of the refused requests was kept.
  v1::ListCallsRequest list;
  v1::ListCallsResponse listed;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->ListCalls(&context, list, &listed).ok());
  EXPECT_EQ(listed.calls_size(), 2);
}

TEST_F(InvokeAsyncStreamTest, IdempotencyKeyMatchesACallMadeByUnaryInvokeAsync) {
  v1::InvokeAsyncRequest unary = StreamCall(0, "once").request();
  unary.set_idempotency_key("order-42");
  v1::InvokeAsyncResponse first;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->InvokeAsync(&context, unary, &first).ok());
  v1::InvokeAsyncStreamCall again = StreamCall(7, "once");
  again.mutable_request()->set_idempotency_key("order-42");
  grpc::Status status;
  std::map<uint64_t, v1::InvokeAsyncStreamAnswer> answers = RoundTrip({again}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(answers[7].code(), 0) << answers[7].message();
  EXPECT_EQ(answers[7].response().cid(), first.cid());
  EXPECT_TRUE(answers[7].response().deduplicated());
}

// More calls than the server reads ahead of their answers (1,024): it stops reading until
// answers drain, and every call is still answered once.
TEST_F(InvokeAsyncStreamTest, MoreCallsThanTheReadAheadAreAllAnswered) {
  std::vector<v1::InvokeAsyncStreamCall> calls;
  for (uint64_t tag = 1; tag <= 3000; ++tag) calls.push_back(StreamCall(tag, "bulk", "parked"));
  grpc::Status status;
  std::map<uint64_t, v1::InvokeAsyncStreamAnswer> answers = RoundTrip(calls, &status, 50);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(answers.size(), 3000u);
  for (const auto& [tag, answer] : answers) {
    ASSERT_EQ(answer.code(), 0) << tag << ": " << answer.message();
  }
}

TEST_F(InvokeAsyncStreamTest, ClientThatGoesAwayMidStreamLeavesAWorkingSidecar) {
  for (int round = 0; round < 3; ++round) {
    grpc::ClientContext context;
    std::unique_ptr<Stream> stream = stub_->InvokeAsyncStream(&context);
    for (uint64_t tag = 1; tag <= 300; ++tag) {
      v1::InvokeAsyncStreamRequest message;
      *message.add_calls() = StreamCall(tag, "gone", "parked");
      if (!stream->Write(message)) break;
    }
    context.TryCancel();
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  grpc::Status status;
  std::map<uint64_t, v1::InvokeAsyncStreamAnswer> answers =
      RoundTrip({StreamCall(1, "after")}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(answers[1].code(), 0) << answers[1].message();
  EXPECT_EQ(Wait(answers[1].response().cid()).state(), v1::CALL_STATE_SUCCEEDED);
}

}  // namespace
}  // namespace callmesh
