// The admin listener of a real callmeshd: a workload of sync and async calls through the Sidecar
// API, then /metrics scraped over HTTP must show the counts of that workload, pass Prometheus'
// own `promtool check metrics`, and /healthz and /readyz must answer. A real Prometheus (Debian
// `prometheus`) scrapes the sidecar during a workload and its query API returns the workload's
// counts.
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "runtime/sdk/mesh.h"
#include "runtime/sdk/service_host.h"
#include "services/greeter/greeter_service.h"
#include "tests/support/greeter_calls.h"
#include "tests/support/process.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/wait_call.h"

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
    admin_address_ = match[1].str();
    admin_ = std::make_unique<httplib::Client>(absl::StrCat("http://", admin_address_));
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

  v1::Call Wait(const std::string& cid) { return testing::WaitCall(*stub_, cid); }

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
  std::string admin_address_;
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

// The SDK's Mesh makes the InvokeAsync calls of all its threads on one InvokeAsyncStream (one RPC
// started for all of them), or one unary RPC each with stream_async_calls off.
TEST_F(MetricsTest, MeshInvokeAsyncCallsOfManyThreadsGoOnOneStream) {
  constexpr int kThreads = 4;
  constexpr int kCallsEach = 10;
  auto call_from_threads = [&](Mesh& mesh) {
    std::vector<std::thread> threads;
    std::atomic<int> accepted{0};
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        HelloRequest hello;
        hello.set_name("streamed");
        for (int i = 0; i < kCallsEach; ++i) {
          absl::StatusOr<Cid> cid =
              mesh.InvokeAsync("greeter", kSayHello, hello.SerializeAsString());
          EXPECT_TRUE(cid.ok()) << cid.status();
          if (cid.ok()) ++accepted;
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    return accepted.load();
  };
  const std::string sidecar_method = "grpc_service=\"callmesh.v1.Sidecar\",grpc_method=";
  const std::string streams = absl::StrCat("grpc_server_started_total{grpc_type=\"bidi_stream\",",
                                           sidecar_method, "\"InvokeAsyncStream\"}");
  const std::string unary = absl::StrCat("grpc_server_started_total{grpc_type=\"unary\",",
                                         sidecar_method, "\"InvokeAsync\"}");
  {
    Mesh mesh({.sidecar = sidecar_->address(), .source = "streamer"});
    ASSERT_EQ(call_from_threads(mesh), kThreads * kCallsEach);
  }
  std::string text = Scrape();
  EXPECT_EQ(Sample(text, streams), 1) << text;
  EXPECT_EQ(Sample(text, unary), 0);
  EXPECT_EQ(Sample(text, "callmesh_async_accepted_total"), kThreads * kCallsEach);
  {
    Mesh mesh({.sidecar = sidecar_->address(), .source = "unary", .stream_async_calls = false});
    ASSERT_EQ(call_from_threads(mesh), kThreads * kCallsEach);
  }
  text = Scrape();
  EXPECT_EQ(Sample(text, streams), 1);
  EXPECT_EQ(Sample(text, unary), kThreads * kCallsEach);
}

// The value of an instant query's only series ("" if it has none or several), from Prometheus'
// HTTP API.
std::string QueryValue(httplib::Client& prometheus, const std::string& query) {
  httplib::Result result =
      prometheus.Get("/api/v1/query", httplib::Params{{"query", query}}, httplib::Headers{});
  if (!result || result->status != 200) return "";
  google::protobuf::Value body;
  if (!google::protobuf::util::JsonStringToMessage(result->body, &body).ok()) return "";
  const auto& data = body.struct_value().fields();
  if (data.count("data") == 0) return "";
  const auto& series = data.at("data").struct_value().fields().at("result").list_value();
  if (series.values_size() != 1) return "";
  // {"metric": {...}, "value": [<time>, "<value>"]}
  return series.values(0).struct_value().fields().at("value").list_value().values(1).string_value();
}

TEST_F(MetricsTest, PrometheusScrapesTheWorkloadAndQueriesReturnItsCounts) {
  ASSERT_EQ(access("/usr/bin/prometheus", X_OK), 0)
      << "prometheus is not installed (Debian package prometheus; make deps installs it)";
  const std::string dir = testing::NewTempDir("prometheus");
  std::ofstream(absl::StrCat(dir, "/prometheus.yml"))
      << "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
         "scrape_configs:\n"
         "  - job_name: callmeshd\n"
         "    static_configs: [{targets: ['"
      << admin_address_ << "']}]\n";
  const int port = testing::FreeLoopbackPort();
  ASSERT_GT(port, 0);
  absl::StatusOr<testing::Process> prometheus =
      testing::Process::Start("/usr/bin/prometheus",
                              {absl::StrCat("--config.file=", dir, "/prometheus.yml"),
                               absl::StrCat("--storage.tsdb.path=", dir, "/data"),
                               absl::StrCat("--web.listen-address=127.0.0.1:", port)},
                              "prometheus");
  ASSERT_TRUE(prometheus.ok()) << prometheus.status();
  httplib::Client api(absl::StrCat("http://127.0.0.1:", port));

  // The workload, while Prometheus scrapes every second.
  constexpr int kSyncCalls = 4;
  constexpr int kAsyncCalls = 3;
  for (int i = 0; i < kSyncCalls; ++i) ASSERT_TRUE(Invoke("greeter").ok());
  for (int i = 0; i < kAsyncCalls; ++i) {
    EXPECT_EQ(Wait(InvokeAsync()).state(), v1::CALL_STATE_SUCCEEDED);
  }

  // Prometheus has the series once a scrape after the workload has landed.
  const std::map<std::string, std::string> expected = {
      {"up{job=\"callmeshd\"}", "1"},
      {"callmesh_async_accepted_total{job=\"callmeshd\"}", absl::StrCat(kAsyncCalls)},
      {"callmesh_completions_total{job=\"callmeshd\",state=\"SUCCEEDED\"}",
       absl::StrCat(kAsyncCalls)},
      {"callmesh_attempts_total{job=\"callmeshd\",code=\"OK\"}", absl::StrCat(kAsyncCalls)},
      {"callmesh_sync_calls_total{job=\"callmeshd\",outcome=\"ok\"}", absl::StrCat(kSyncCalls)},
      {"grpc_server_handled_total{job=\"callmeshd\",grpc_method=\"Invoke\",grpc_code=\"OK\"}",
       absl::StrCat(kSyncCalls)},
      {"sum(grpc_server_started_total{job=\"callmeshd\",grpc_method=\"InvokeAsync\"})",
       absl::StrCat(kAsyncCalls)},
      {"callmesh_pending_calls{job=\"callmeshd\"}", "0"},
  };
  std::map<std::string, std::string> got;
  // Scrapes every second; a minute is a hang guard, not a timing assertion.
  const bool all = WaitUntil(
      [&] {
        for (const auto& [query, value] : expected) got[query] = QueryValue(api, query);
        return got == expected;
      },
      absl::Minutes(1));
  for (const auto& [query, value] : expected) EXPECT_EQ(got[query], value) << query;
  EXPECT_TRUE(all) << prometheus->output();
  // A rate over the workload is a number Prometheus can compute (dashboards use these).
  // (Once Prometheus holds two scrapes after the workload.)
  EXPECT_TRUE(WaitUntil(
      [&] { return !QueryValue(api, "sum(rate(callmesh_async_accepted_total[1m]))").empty(); },
      absl::Minutes(1)));
  prometheus->Signal(SIGTERM);
  (void)prometheus->Wait(absl::Seconds(30));
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
