// The admin listener of a real callmeshd: a workload of sync and async calls through the Sidecar
// API, then /metrics scraped over HTTP must show the counts of that workload, pass Prometheus'
// own `promtool check metrics`, and /healthz and /readyz must answer.
#include <httplib.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/sdk/service_host.h"
#include "services/greeter/greeter_service.h"
#include "tests/support/greeter_calls.h"
#include "tests/support/process.h"
#include "tests/support/sidecar_process.h"

namespace callmesh {
namespace {

using ::callmesh::testing::SidecarProcess;
using ::callmesh::testing::WaitUntil;
using ::greeter::v1::HelloRequest;

constexpr char kSayHello[] = "greeter.v1.Greeter/SayHello";

// The value of the sample `series` (name and labels exactly as rendered) in `text`; -1 if absent.
double Sample(const std::string& text, const std::string& series) {
  const std::string prefix = absl::StrCat("\n", series, " ");
  const size_t at = text.find(prefix);
  if (at == std::string::npos) return -1;
  const size_t start = at + prefix.size();
  double value = -1;
  if (!absl::SimpleAtod(text.substr(start, text.find('\n', start) - start), &value)) return -1;
  return value;
}

// Runs `command` with a shell; its exit code and its output (stdout and stderr).
std::pair<int, std::string> RunShell(const std::string& command) {
  std::string output;
  FILE* pipe = popen(absl::StrCat(command, " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = SidecarProcess::Start({.config_yaml = "admin_listen: 127.0.0.1:0\n"});
    ASSERT_TRUE(started.ok()) << started.status();
    sidecar_ = std::make_unique<SidecarProcess>(*std::move(started));
    stub_ = v1::Sidecar::NewStub(sidecar_->Channel());
    // callmeshd logs where the admin listener is (port 0 picked a free one).
    const std::regex logged("admin listener on ([0-9.]+:[0-9]+)");
    std::smatch match;
    ASSERT_TRUE(WaitUntil([&] {
      output_ = sidecar_->process().output();
      return std::regex_search(output_, match, logged);
    })) << output_;
    admin_ = std::make_unique<httplib::Client>(absl::StrCat("http://", match[1].str()));
    greeter_host_ = std::make_unique<ServiceHost>(
        ServiceHostOptions{.name = "greeter", .sidecar = sidecar_->address()});
    greeter_host_->AddService(&greeter_);
    ASSERT_TRUE(greeter_host_->Start().ok());
  }

  grpc::Status Invoke(const std::string& service) {
    HelloRequest hello;
    hello.set_name("metrics");
    v1::InvokeRequest request;
    request.set_service(service);
    request.set_method(kSayHello);
    request.set_payload(hello.SerializeAsString());
    v1::InvokeResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub_->Invoke(&context, request, &response);
  }

  std::string InvokeAsync() {
    HelloRequest hello;
    hello.set_name("metrics-async");
    v1::InvokeAsyncRequest request = testing::SayHelloAsync(hello);
    v1::InvokeAsyncResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status status = stub_->InvokeAsync(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.cid();
  }

  v1::Call Wait(const std::string& cid) {
    v1::WaitCallRequest request;
    request.set_cid(cid);
    request.mutable_timeout()->set_seconds(30);
    v1::Call call;
    grpc::ClientContext context;
    grpc::Status status = stub_->WaitCall(&context, request, &call);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return call;
  }

  std::string Scrape() {
    httplib::Result result = admin_->Get("/metrics");
    EXPECT_TRUE(result) << "GET /metrics failed: " << httplib::to_string(result.error());
    if (!result) return "";
    EXPECT_EQ(result->status, 200);
    return absl::StrCat("\n", result->body);  // so that every sample line follows a newline
  }

  std::unique_ptr<SidecarProcess> sidecar_;
  std::unique_ptr<v1::Sidecar::Stub> stub_;
  std::string output_;
  std::unique_ptr<httplib::Client> admin_;
  greeter::GreeterService greeter_;
  std::unique_ptr<ServiceHost> greeter_host_;
};

TEST_F(MetricsTest, ScrapedCountersMatchTheWorkload) {
  constexpr int kSyncCalls = 3;
  constexpr int kAsyncCalls = 2;
  for (int i = 0; i < kSyncCalls; ++i) ASSERT_TRUE(Invoke("greeter").ok());
  const grpc::Status unknown = Invoke("no-such-service");
  ASSERT_FALSE(unknown.ok());
  for (int i = 0; i < kAsyncCalls; ++i) {
    EXPECT_EQ(Wait(InvokeAsync()).state(), v1::CALL_STATE_SUCCEEDED);
  }

  const std::string invoke_labels =
      "grpc_type=\"unary\",grpc_service=\"callmesh.v1.Sidecar\",grpc_method=\"Invoke\"";
  std::string text;
  // A handled RPC is counted when gRPC releases it, just after the client has its answer.
  ASSERT_TRUE(WaitUntil([&] {
    text = Scrape();
    return Sample(text, absl::StrCat("grpc_server_handled_total{", invoke_labels,
                                     ",grpc_code=\"OK\"}")) == kSyncCalls;
  })) << text;
  EXPECT_EQ(Sample(text, absl::StrCat("grpc_server_started_total{", invoke_labels, "}")),
            kSyncCalls + 1);
  const std::string unknown_code =
      absl::StatusCodeToString(static_cast<absl::StatusCode>(unknown.error_code()));
  EXPECT_EQ(Sample(text, absl::StrCat("grpc_server_handled_total{", invoke_labels, ",grpc_code=\"",
                                      unknown_code, "\"}")),
            1);
  EXPECT_EQ(Sample(text, absl::StrCat("grpc_server_handling_seconds_count{", invoke_labels, "}")),
            kSyncCalls + 1);
  EXPECT_EQ(Sample(text,
                   "grpc_server_started_total{grpc_type=\"unary\",grpc_service=\"callmesh.v1."
                   "Sidecar\",grpc_method=\"InvokeAsync\"}"),
            kAsyncCalls);
  EXPECT_EQ(Sample(text, "callmesh_sync_calls_total{outcome=\"ok\"}"), kSyncCalls);
  EXPECT_EQ(Sample(text, "callmesh_async_accepted_total"), kAsyncCalls);
  EXPECT_EQ(Sample(text, "callmesh_attempts_total{code=\"OK\"}"), kAsyncCalls);
  EXPECT_EQ(Sample(text, "callmesh_retries_total{code=\"UNAVAILABLE\"}"), 0);
  EXPECT_EQ(Sample(text, "callmesh_completions_total{state=\"SUCCEEDED\"}"), kAsyncCalls);
  EXPECT_EQ(Sample(text, "callmesh_pending_calls"), 0);
  EXPECT_EQ(Sample(text, "callmesh_target_in_flight{service=\"greeter\"}"), 0);
  EXPECT_EQ(Sample(text, "callmesh_registry_instances{service=\"greeter\",health=\"healthy\"}"), 1);
  EXPECT_EQ(Sample(text, "callmesh_journal_healthy"), 1);
  // Accepts and completions were journaled with fsyncs.
  EXPECT_GE(Sample(text, "callmesh_journal_write_seconds_count{synced=\"true\"}"), kAsyncCalls);
  EXPECT_GE(Sample(text, "callmesh_journal_batch_size_count"), kAsyncCalls);
  EXPECT_GT(Sample(text, "process_resident_memory_bytes"), 0);
  EXPECT_GT(Sample(text, "process_cpu_seconds_total"), 0);
  // No CID in any label.
  EXPECT_EQ(text.find("cid"), std::string::npos);

  // Prometheus' own check of the exposition format and naming conventions.
  const std::string file = absl::StrCat(::testing::TempDir(), "/metrics.txt");
  std::ofstream(file) << text.substr(1);
  const auto [code, output] = RunShell(absl::StrCat("promtool check metrics < ", file));
  EXPECT_EQ(code, 0) << "promtool check metrics (Debian package prometheus; make deps): " << output;
}

TEST_F(MetricsTest, HealthzAndReadyzAnswer) {
  httplib::Result healthz = admin_->Get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
  httplib::Result readyz = admin_->Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 200) << readyz->body;
}

}  // namespace
}  // namespace callmesh
