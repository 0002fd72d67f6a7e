// Completions pushed on the OnCompletions stream end to end: a real callmeshd with its journal,
// the greeter and the callback services hosted in this process.
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

class StreamedCallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = SidecarProcess::Start(
        {.config_yaml =
             "callback_retry: {max_attempts: 3, initial_backoff: 50ms, max_backoff: 100ms}\n"});
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

}  // namespace
}  // namespace callmesh
