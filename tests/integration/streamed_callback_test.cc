// Completions pushed on the OnCompletions stream end to end: a real callmeshd with its journal,
// the greeter and the callback services hosted in this process (through the SDK, and as a plain
// gRPC server that implements the generated Callback service itself).
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "callmesh/v1/callback.grpc.pb.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gtest/gtest.h"
#include "runtime/sdk/service_host.h"
#include "services/greeter/greeter_service.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/wait_until.h"

namespace callmesh {
namespace {

using ::callmesh::testing::SidecarProcess;
using ::callmesh::testing::WaitUntil;

constexpr char kSayHello[] = "greeter.v1.Greeter/SayHello";

// Completions of greeter calls, taken through the SDK's CallbackRouter (ServiceHost::AddCallbacks).
// The first delivery of a call whose reply names "flaky" is refused.
class GreeterCallbacks final : public CallbackHandler {
 public:
  const char* callmesh_grpc_service() const override { return "greeter.v1.Greeter"; }
  absl::Status HandleCompletion(const v1::Completion& completion) override {
    absl::MutexLock lock(&mu_);
    received_.push_back(completion);
    if (absl::StrContains(completion.reply(), "flaky") && completion.delivery_attempt() == 1) {
      return absl::UnavailableError("not ready yet");
    }
    return absl::OkStatus();
  }
  std::vector<v1::Completion> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::Completion> received_ ABSL_GUARDED_BY(mu_);
};

// A callback service written without the SDK: a plain gRPC server built from the generated
// callmesh::v1::Callback service that implements OnCompletions itself (one ack per completion, as
// callback.proto asks) and OnCompletion (to see that it is not used). No health service: see
// APlainGrpcServerTakesCompletionsOnItsOwnOnCompletions.
class PlainCallbackServer final : public v1::Callback::Service {
 public:
  PlainCallbackServer() {
    // gRPC's default, as in a process that never turns the health service on. (The ServiceHosts
    // of this test turn it on for the whole process, which would give this server one too.)
    grpc::EnableDefaultHealthCheckService(false);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    address_ = absl::StrCat("127.0.0.1:", port);
  }
  // The sidecar keeps its stream open: end it now rather than wait for the sidecar.
  ~PlainCallbackServer() override {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
  }

  const std::string& address() const { return address_; }
  std::vector<v1::Completion> streamed() {
    absl::MutexLock lock(&mu_);
    return streamed_;
  }
  std::vector<v1::Completion> unary() {
    absl::MutexLock lock(&mu_);
    return unary_;
  }

  grpc::Status OnCompletion(grpc::ServerContext*, const v1::Completion* completion,
                            v1::OnCompletionResponse*) override {
    absl::MutexLock lock(&mu_);
    unary_.push_back(*completion);
    return grpc::Status::OK;
  }

  grpc::Status OnCompletions(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::CompletionAck, v1::Completion>* stream) override {
    v1::Completion completion;
    while (stream->Read(&completion)) {
      {
        absl::MutexLock lock(&mu_);
        streamed_.push_back(completion);
      }
      v1::CompletionAck ack;
      ack.set_cid(completion.cid());
      ack.set_delivery_attempt(completion.delivery_attempt());
      if (!stream->Write(ack)) break;
    }
    return grpc::Status::OK;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::Completion> streamed_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Completion> unary_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

class StreamedCallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Health probes every 100 ms, so that a test can see what the probe made of an instance.
    auto started = SidecarProcess::Start(
        {.config_yaml =
             "callback_retry: {max_attempts: 3, initial_backoff: 50ms, max_backoff: 100ms}\n"
             "health_check_interval: 100ms\n"});
    ASSERT_TRUE(started.ok()) << started.status();
    sidecar_ = std::make_unique<SidecarProcess>(*std::move(started));
    stub_ = v1::Sidecar::NewStub(sidecar_->Channel());
    greeter_host_ = std::make_unique<ServiceHost>(
        ServiceHostOptions{.name = "greeter", .sidecar = sidecar_->address()});
    greeter_host_->AddService(&greeter_);
    ASSERT_TRUE(greeter_host_->Start().ok());
  }

  std::string InvokeAsync(const std::string& name, const std::string& callback) {
    ::greeter::v1::HelloRequest hello;
    hello.set_name(name);
    v1::InvokeAsyncRequest request;
    request.set_service("greeter");
    request.set_method(kSayHello);
    request.set_payload(hello.SerializeAsString());
    request.set_source("tester");
    request.set_callback(callback);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::InvokeAsyncResponse response;
    const grpc::Status status = stub_->InvokeAsync(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.cid();
  }

  // Waits (up to 60 s, a safety net) until `cid`'s completion is marked delivered; the call as
  // last read.
  v1::Call AwaitDelivered(const std::string& cid) {
    v1::Call call;
    WaitUntil(
        [&] {
          v1::GetCallRequest request;
          request.set_cid(cid);
          grpc::ClientContext context;
          EXPECT_TRUE(stub_->GetCall(&context, request, &call).ok());
          return call.callback_delivery() == v1::DELIVERY_STATE_DELIVERED;
        },
        absl::Seconds(60), absl::Milliseconds(20));
    return call;
  }

  std::unique_ptr<SidecarProcess> sidecar_;
  std::unique_ptr<v1::Sidecar::Stub> stub_;
  greeter::GreeterService greeter_;
  std::unique_ptr<ServiceHost> greeter_host_;
};

TEST_F(StreamedCallbackTest, AServiceHostTakesCompletionsAndARefusedOneIsRedelivered) {
  GreeterCallbacks callbacks;
  ServiceHost host(ServiceHostOptions{.name = "audit", .sidecar = sidecar_->address()});
  host.AddCallbacks(&callbacks);
  ASSERT_TRUE(host.Start().ok());
  const std::string fine = InvokeAsync("fine", "audit");
  const std::string flaky = InvokeAsync("flaky", "audit");
  EXPECT_EQ(AwaitDelivered(fine).callback_delivery(), v1::DELIVERY_STATE_DELIVERED);
  EXPECT_EQ(AwaitDelivered(flaky).callback_delivery(), v1::DELIVERY_STATE_DELIVERED);
  std::map<std::string, std::vector<uint32_t>> attempts;
  for (const v1::Completion& completion : callbacks.received()) {
    EXPECT_EQ(completion.state(), v1::CALL_STATE_SUCCEEDED);
    attempts[completion.cid()].push_back(completion.delivery_attempt());
  }
  EXPECT_EQ(attempts[fine], std::vector<uint32_t>({1}));
  // Refused at its first delivery (an error ack): delivered again, and marked delivered only
  // after the second was acknowledged.
  EXPECT_EQ(attempts[flaky], std::vector<uint32_t>({1, 2}));
}

// What registering a plain gRPC server takes: RegisterService with the exact address it listens
// on, once it listens. The registry then probes the instance with grpc.health.v1 Check every
// health_check_interval; a server without the health service answers UNIMPLEMENTED, which counts
// as healthy ("no health service"), so a health service is not required. What makes an instance
// unhealthy is an address nothing answers on ("health check failed: ... Connection refused"):
// e.g. registering before the server is started, or a name ("localhost") that resolves to another
// address than the one bound. The instance is then skipped by every delivery until it answers.
TEST_F(StreamedCallbackTest, APlainGrpcServerTakesCompletionsOnItsOwnOnCompletions) {
  PlainCallbackServer ledger;
  {
    v1::RegisterServiceRequest registration;
    registration.set_name("ledger");
    registration.set_address(ledger.address());
    registration.add_grpc_services("callmesh.v1.Callback");
    v1::RegisterServiceResponse registered;
    grpc::ClientContext context;
    const grpc::Status status = stub_->RegisterService(&context, registration, &registered);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  v1::ServiceInstance instance;
  ASSERT_TRUE(WaitUntil([&] {
    v1::ListServicesResponse services;
    grpc::ClientContext context;
    if (!stub_->ListServices(&context, {}, &services).ok()) return false;
    for (const v1::ServiceInfo& service : services.services()) {
      if (service.name() == "ledger" && service.instances_size() == 1) {
        instance = service.instances(0);
      }
    }
    return instance.has_last_checked_at();
  })) << "the registry never probed the instance";
  EXPECT_TRUE(instance.healthy()) << instance.health_detail();
  EXPECT_EQ(instance.health_detail(), "no health service");

  const std::string cid = InvokeAsync("plain", "ledger");
  EXPECT_EQ(AwaitDelivered(cid).callback_delivery(), v1::DELIVERY_STATE_DELIVERED);
  const std::vector<v1::Completion> streamed = ledger.streamed();
  ASSERT_EQ(streamed.size(), 1u);
  EXPECT_EQ(streamed[0].cid(), cid);
  EXPECT_EQ(streamed[0].delivery_attempt(), 1u);
  EXPECT_EQ(streamed[0].state(), v1::CALL_STATE_SUCCEEDED);
  EXPECT_EQ(streamed[0].source(), "tester");
  ::greeter::v1::HelloReply reply;
  ASSERT_TRUE(reply.ParseFromString(streamed[0].reply()));
  EXPECT_TRUE(absl::StrContains(reply.message(), "plain")) << reply.message();
  EXPECT_EQ(reply.cid(), cid);
  EXPECT_TRUE(ledger.unary().empty());  // on the stream, not OnCompletion
}

}  // namespace
}  // namespace callmesh
