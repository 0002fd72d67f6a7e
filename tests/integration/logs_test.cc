// Logs of a real callmeshd with `log_format: json` and `access_log_sample_rate: 1`: every line it
// writes is one JSON object, each synchronous call has an access line with its cid, service,
// method, code and duration, and the lines of an async call carry its cid as a field.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "runtime/sdk/service_host.h"
#include "services/greeter/greeter_service.h"
#include "tests/support/process.h"
#include "tests/support/sidecar_process.h"

namespace callmesh {
namespace {

using ::callmesh::testing::SidecarProcess;
using ::callmesh::testing::WaitUntil;
using ::google::protobuf::Struct;

constexpr char kSayHello[] = "greeter.v1.Greeter/SayHello";

// The lines of `output` that are JSON log objects; a line that is not fails the test.
std::vector<Struct> JsonLines(const std::string& output) {
  std::vector<Struct> lines;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    Struct parsed;
    const auto status = google::protobuf::util::JsonStringToMessage(std::string(line), &parsed);
    EXPECT_TRUE(status.ok()) << "not a JSON log line: " << line;
    if (status.ok()) lines.push_back(std::move(parsed));
  }
  return lines;
}

std::string Field(const Struct& line, const std::string& key) {
  auto it = line.fields().find(key);
  return it == line.fields().end() ? "" : it->second.string_value();
}

TEST(Logs, JsonLinesAndAccessLogsOfSyncCalls) {
  // At debug: an async call's per-call lines (its attempts, its end) are debug lines.
  auto sidecar =
      SidecarProcess::Start({.config_yaml = "log_format: json\naccess_log_sample_rate: 1\n",
                             .extra_args = {"--log-level=debug"}});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  auto stub = v1::Sidecar::NewStub(sidecar->Channel());
  greeter::GreeterService greeter;
  ServiceHost host(ServiceHostOptions{.name = "greeter", .sidecar = sidecar->address()});
  host.AddService(&greeter);
  ASSERT_TRUE(host.Start().ok());

  ::greeter::v1::HelloRequest hello;
  hello.set_name("logs");
  const auto invoke = [&](const std::string& service, v1::InvokeResponse* response) {
    v1::InvokeRequest request;
    request.set_service(service);
    request.set_method(kSayHello);
    request.set_source("tester");
    request.set_payload(hello.SerializeAsString());
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub->Invoke(&context, request, response);
  };
  v1::InvokeResponse ok_response, failed_response;
  ASSERT_TRUE(invoke("greeter", &ok_response).ok());
  const grpc::Status failed = invoke("no-such-service", &failed_response);
  ASSERT_FALSE(failed.ok());

  v1::InvokeAsyncRequest async_request;
  async_request.set_service("greeter");
  async_request.set_method(kSayHello);
  async_request.set_payload(hello.SerializeAsString());
  v1::InvokeAsyncResponse accepted;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->InvokeAsync(&context, async_request, &accepted).ok());
  }
  v1::WaitCallRequest wait;
  wait.set_cid(accepted.cid());
  wait.mutable_timeout()->set_seconds(30);
  v1::Call call;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->WaitCall(&context, wait, &call).ok());
  }

  // The access line is written as the reply goes out; wait for both.
  std::vector<Struct> lines;
  const auto access_of = [&lines](const std::string& cid) -> const Struct* {
    for (const Struct& line : lines) {
      if (Field(line, "message") == "access" && Field(line, "cid") == cid) return &line;
    }
    return nullptr;
  };
  ASSERT_TRUE(WaitUntil([&] {
    lines = JsonLines(sidecar->process().output());
    return access_of(ok_response.cid()) != nullptr;
  })) << sidecar->process().output();

  const Struct* ok_line = access_of(ok_response.cid());
  EXPECT_EQ(Field(*ok_line, "level"), "info");
  EXPECT_EQ(Field(*ok_line, "source"), "tester");
  EXPECT_EQ(Field(*ok_line, "service"), "greeter");
  EXPECT_EQ(Field(*ok_line, "method"), "/greeter.v1.Greeter/SayHello");
  EXPECT_EQ(Field(*ok_line, "code"), "OK");
  EXPECT_GE(ok_line->fields().at("duration_ms").number_value(), 0);
  EXPECT_FALSE(Field(*ok_line, "time").empty());

  // The call to an unknown service has its access line too, with the code it got.
  int failed_lines = 0;
  for (const Struct& line : lines) {
    if (Field(line, "message") == "access" && Field(line, "service") == "no-such-service") {
      ++failed_lines;
      EXPECT_EQ(Field(line, "code"),
                absl::StatusCodeToString(static_cast<absl::StatusCode>(failed.error_code())));
    }
  }
  EXPECT_EQ(failed_lines, 1);
  // The async call's own lines carry its cid as a field, not in the message.
  bool async_line = false;
  for (const Struct& line : lines) {
    if (Field(line, "cid") == accepted.cid()) {
      async_line = true;
      EXPECT_EQ(Field(line, "message").find("[cid="), std::string::npos);
    }
  }
  EXPECT_TRUE(async_line) << sidecar->process().output();
}

}  // namespace
}  // namespace callmesh
