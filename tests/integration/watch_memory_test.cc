// Memory of WatchCompletions under stalled watchers (RELIABILITY #7): streams that never read
// must not make the sidecar hold every completion for each of them. A real callmeshd, its RSS read
// from /proc, a few hundred streams that never read and completions of 16 KiB each.
#include <grpcpp/create_channel.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gtest/gtest.h"
#include "services/greeter/greeter_service.h"
#include "spdlog/spdlog.h"
#include "tests/support/greeter_calls.h"
#include "tests/support/sidecar_process.h"

namespace callmesh {
namespace {

using ::callmesh::testing::SidecarProcess;

constexpr int kStalledWatchers = 200;
constexpr int kCompletions = 300;
constexpr size_t kReplyBytes = 16 << 10;

// Resident set size of `pid` in bytes (VmRSS of /proc/<pid>/status), or 0 if unreadable.
size_t ResidentBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (!absl::StartsWith(line, "VmRSS:")) continue;
    std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    size_t kib = 0;
    if (fields.size() >= 2 && absl::SimpleAtoi(fields[1], &kib)) return kib << 10;
  }
  return 0;
}

TEST(WatchMemory, StalledWatchersHoldABoundedAmountEachAndACatchingUpStreamReadsEverything) {
  spdlog::set_level(spdlog::level::warn);  // the greeter logs every 16 KiB name at info
  auto started = SidecarProcess::Start(
      {.config_yaml = "limits: {max_watchers: 1024}\nmax_payload_bytes: 1048576\n"});
  ASSERT_TRUE(started.ok()) << started.status();
  SidecarProcess sidecar = *std::move(started);
  greeter::GreeterService greeter;
  auto host = testing::HostService("greeter", sidecar.address(), &greeter);
  ASSERT_NE(host, nullptr);

  // The completions first: kCompletions × 16 KiB, all retained.
  auto stub = v1::Sidecar::NewStub(sidecar.Channel());
  ::greeter::v1::HelloRequest hello;
  hello.set_name(std::string(kReplyBytes, 'x'));
  std::vector<std::string> cids;
  for (int i = 0; i < kCompletions; ++i) {
    v1::InvokeAsyncRequest request = testing::SayHelloAsync(hello);
    v1::InvokeAsyncResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(stub->InvokeAsync(&context, request, &response).ok());
    cids.push_back(response.cid());
  }
  for (const std::string& cid : cids) {
    v1::WaitCallRequest wait;
    wait.set_cid(cid);
    wait.mutable_timeout()->set_seconds(120);
    v1::Call call;
    grpc::ClientContext wait_context;
    ASSERT_TRUE(stub->WaitCall(&wait_context, wait, &call).ok());
    ASSERT_EQ(call.state(), v1::CALL_STATE_SUCCEEDED);
  }
  const size_t before = ResidentBytes(sidecar.process().pid());
  ASSERT_GT(before, 0u);

  // Watchers that resume from the start of the log (sequence 1 of kCompletions) and never read,
  // each on a channel of its own so that one stream's flow-control window is not shared with the
  // others, with a window that does not grow: the client takes in 64 KiB per stream and no more,
  // so what the sidecar is offered beyond that stays its own problem.
  struct Stalled {
    std::unique_ptr<v1::Sidecar::Stub> stub;
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::Completion>> reader;
  };
  std::vector<std::unique_ptr<Stalled>> stalled;
  for (int i = 0; i < kStalledWatchers; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("callmesh.test.channel", i);  // distinct channels, not one shared subchannel
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    auto watcher = std::make_unique<Stalled>();
    watcher->stub = v1::Sidecar::NewStub(
        grpc::CreateCustomChannel(sidecar.address(), grpc::InsecureChannelCredentials(), args));
    v1::WatchCompletionsRequest request;
    request.set_after_sequence(1);
    watcher->reader = watcher->stub->WatchCompletions(&watcher->context, request);
    watcher->reader->WaitForInitialMetadata();
    stalled.push_back(std::move(watcher));
  }

  // A stream that does read gets every completion, in order, while the others stall (and, being
  // opened after them, it is served after their first reads from the journal).
  {
    v1::WatchCompletionsRequest request;
    request.set_after_sequence(1);
    grpc::ClientContext context;
    auto reader = stub->WatchCompletions(&context, request);
    v1::Completion completion;
    uint64_t expected = 2;
    while (expected <= kCompletions && reader->Read(&completion)) {
      ASSERT_EQ(completion.sequence(), expected);
      ++expected;
    }
    EXPECT_EQ(expected, kCompletions + 1u);
    context.TryCancel();
  }

  // Every stalled stream was offered all of it (kCompletions × 16 KiB = 4.7 MiB each, 0.9 GiB in
  // all); what the sidecar holds per stream is its read-ahead (64 KiB), the message being written
  // and what gRPC lets into the transport. 256 KiB per stream is a generous bound on that; reading
  // ahead 64 completions, as it once did, held 1 MiB per stream.
  const size_t during = ResidentBytes(sidecar.process().pid());
  const size_t bound = static_cast<size_t>(kStalledWatchers) * (256 << 10) + (64 << 20);
  std::cout << "sidecar RSS " << (before >> 20) << " MiB -> " << (during >> 20) << " MiB with "
            << kStalledWatchers << " stalled watchers\n";
  EXPECT_LT(during - std::min(during, before), bound)
      << "RSS " << (before >> 20) << " MiB -> " << (during >> 20) << " MiB with "
      << kStalledWatchers << " stalled watchers";

  for (auto& watcher : stalled) watcher->context.TryCancel();
  stalled.clear();
  // The sidecar serves new watchers again at once (their slots were released).
  grpc::ClientContext context;
  v1::WatchCompletionsRequest request;
  request.add_cids(cids.back());
  auto reader = stub->WatchCompletions(&context, request);
  v1::Completion completion;
  ASSERT_TRUE(reader->Read(&completion));
  EXPECT_EQ(completion.cid(), cids.back());
  context.TryCancel();
}

}  // namespace
}  // namespace callmesh
