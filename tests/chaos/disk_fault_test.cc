// Durability honesty (RELIABILITY.md #9) on an unmodified callmeshd: the disk starts failing its
// syncs while the sidecar runs (libfiu's POSIX preload, driven with fiu-ctrl from Debian's
// fiu-utils). From then on no async call may be acknowledged, the sidecar reports NOT_SERVING,
// and after a restart on a healthy disk every call acknowledged before the fault is still there.
#include <grpcpp/create_channel.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/sidecar_process.h"

namespace callmesh {
namespace {

using ::callmesh::testing::Process;

constexpr char kFiuRun[] = "/usr/bin/fiu-run";
constexpr char kFiuCtrl[] = "/usr/bin/fiu-ctrl";

// An InvokeAsync to a statically configured service nobody serves, so accepted calls stay pending.
// `*cid` is the acknowledged CID, or on a refusal the one the trailers name (if any).
grpc::Status Submit(v1::Sidecar::Stub& stub, const std::string& name, std::string* cid) {
  v1::InvokeAsyncRequest request;
  request.set_service("absent");
  request.set_method("absent.v1.Absent/Call");
  request.set_payload(name);
  v1::InvokeAsyncResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::Status status = stub.InvokeAsync(&context, request, &response);
  *cid = response.cid();
  if (!status.ok()) {
    auto trailer = context.GetServerTrailingMetadata().find("callmesh-cid");
    if (trailer != context.GetServerTrailingMetadata().end()) {
      cid->assign(trailer->second.data(), trailer->second.size());
    }
  }
  return status;
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(grpc::Channel* channel) {
  auto health = grpc::health::v1::Health::NewStub(
      std::shared_ptr<grpc::Channel>(channel, [](grpc::Channel*) {}));
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!health->Check(&context, {}, &response).ok()) {
    return grpc::health::v1::HealthCheckResponse::UNKNOWN;
  }
  return response.status();
}

TEST(DiskFault, FailingSyncRefusesNewCallsReportsNotServingAndKeepsAcknowledgedOnes) {
  ASSERT_EQ(access(kFiuRun, X_OK), 0) << "fiu-run is missing: apt-get install fiu-utils";
  const std::string dir = testing::NewTempDir("diskfault");
  const std::string config = dir + "/callmeshd.yaml";
  std::ofstream(config) << "services:\n  - name: absent\n    addresses: [127.0.0.1:1]\n";
  const std::string data_dir = dir + "/data";
  const std::string ctrl = dir + "/fiu-ctrl";
  const std::string ready = dir + "/ready";
  // callmeshd with glibc's malloc: fiu-run's preload wraps malloc and crashes with jemalloc.
  const std::string callmeshd = testing::RunfilePath("runtime/sidecar/callmeshd_glibc_malloc");
  absl::StatusOr<Process> sidecar =
      Process::Start(kFiuRun,
                     {"-x", "-f", ctrl, callmeshd, "--config=" + config, "--listen=127.0.0.1:0",
                      "--data-dir=" + data_dir, "--ready-file=" + ready},
                     "callmeshd-fiu");
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  absl::StatusOr<std::string> address = sidecar->WaitReady(ready, absl::Seconds(30));
  ASSERT_TRUE(address.ok()) << address.status();
  auto channel = grpc::CreateChannel(*address, grpc::InsecureChannelCredentials());
  auto stub = v1::Sidecar::NewStub(channel);

  std::vector<std::string> acknowledged;
  for (int i = 0; i < 5; ++i) {
    std::string cid;
    ASSERT_TRUE(Submit(*stub, "before-" + std::to_string(i), &cid).ok());
    acknowledged.push_back(cid);
  }
  EXPECT_EQ(Health(channel.get()), grpc::health::v1::HealthCheckResponse::SERVING);

  // Every fsync/fdatasync of the process fails from now on (EIO and friends).
  for (const char* point : {"posix/io/sync/fdatasync", "posix/io/sync/fsync"}) {
    absl::StatusOr<Process> control = Process::Start(
        kFiuCtrl,
        {"-f", ctrl, "-c", absl::StrCat("enable name=", point), std::to_string(sidecar->pid())},
        "fiu-ctrl");
    ASSERT_TRUE(control.ok());
    absl::StatusOr<int> code = control->Wait(absl::Seconds(10));
    ASSERT_TRUE(code.ok());
    ASSERT_EQ(*code, 0) << control->output();
  }

  // The submit whose sync fails is refused, naming its CID: the write may still reach the disk.
  std::set<std::string> refused;
  std::string refused_cid;
  grpc::Status status = Submit(*stub, "during", &refused_cid);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "journal write failed"))
      << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "idempotency_key"))
      << status.error_message();
  ASSERT_EQ(refused_cid.size(), 36u);
  refused.insert(refused_cid);
  // The journal stays failed: later submits are refused as well, none is acknowledged.
  for (int i = 0; i < 3; ++i) {
    std::string cid;
    EXPECT_EQ(Submit(*stub, "after", &cid).error_code(), grpc::StatusCode::UNAVAILABLE);
    refused.insert(cid);
  }
  EXPECT_TRUE(testing::WaitUntil(
      [&] { return Health(channel.get()) == grpc::health::v1::HealthCheckResponse::NOT_SERVING; }));
  v1::SidecarStats stats;
  grpc::ClientContext stats_context;
  ASSERT_TRUE(stub->GetStats(&stats_context, {}, &stats).ok());
  EXPECT_FALSE(stats.journal_healthy());
  EXPECT_TRUE(absl::StrContains(sidecar->output(), "journal cannot write")) << sidecar->output();

  // A crash now, then a restart on a healthy disk: what was acknowledged is all there, and
  // anything else is a refused call whose write reached the disk anyway (this process crash
  // leaves the OS's unsynced pages in place) — never a CID the caller was not told about.
  sidecar->Signal(SIGKILL);
  ASSERT_TRUE(sidecar->Wait(absl::Seconds(10)).ok());
  auto restarted = testing::SidecarProcess::Start(
      {.config_yaml = "services:\n  - name: absent\n    addresses: [127.0.0.1:1]\n",
       .data_dir = data_dir});
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  auto fresh = v1::Sidecar::NewStub(restarted->Channel());
  for (const std::string& cid : acknowledged) {
    v1::GetCallRequest get;
    get.set_cid(cid);
    v1::Call call;
    grpc::ClientContext context;
    EXPECT_TRUE(fresh->GetCall(&context, get, &call).ok()) << cid;
  }
  v1::ListCallsRequest list;
  v1::ListCallsResponse listed;
  grpc::ClientContext list_context;
  ASSERT_TRUE(fresh->ListCalls(&list_context, list, &listed).ok());
  for (const v1::Call& call : listed.calls()) {
    const std::string& cid = call.envelope().cid();
    const bool known = refused.count(cid) > 0 || std::find(acknowledged.begin(), acknowledged.end(),
                                                           cid) != acknowledged.end();
    EXPECT_TRUE(known) << "phantom call " << cid;
  }
  EXPECT_GE(listed.calls_size(), static_cast<int>(acknowledged.size()));
}

}  // namespace
}  // namespace callmesh
