// Upgrading callmeshd across the journal's format: a journal of format "1", written by a real
// callmeshd of the previous release (testdata/journal_format1/make.sh: round eight, killed with
// SIGKILL), opened by today's callmeshd. It holds a completion still owed to its callback service
// and a call whose first attempt was in flight at the kill. The new sidecar must upgrade the
// journal in place, show both calls as they were (payload and reply included), deliver the owed
// completion, run the interrupted call to its end, and after another SIGKILL read the rewritten
// (format "2") records back the same.
#include <grpcpp/client_context.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/sdk/service_host.h"
#include "services/greeter/greeter.pb.h"
#include "services/greeter/greeter_service.h"
#include "tests/support/process.h"
#include "tests/support/recorded_completions.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/wait_until.h"

namespace callmesh {
namespace {

namespace fs = std::filesystem;
using ::callmesh::testing::NewTempDir;
using ::callmesh::testing::RecordedCompletions;
using ::callmesh::testing::RunfilePath;
using ::callmesh::testing::SidecarProcess;
using ::callmesh::testing::WaitUntil;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kFixture[] = "tests/integration/testdata/journal_format1/journal";
// The callback service the old sidecar's calls name (make.sh).
constexpr char kCallback[] = "upgrade-callback";

// A writable copy of the fixture (runfiles are read-only links).
std::string CopyFixture() {
  const std::string data_dir = NewTempDir("upgrade") + "/data";
  fs::create_directories(data_dir);
  for (const fs::directory_entry& entry : fs::directory_iterator(RunfilePath(kFixture))) {
    const fs::path to = fs::path(data_dir) / entry.path().filename();
    fs::copy_file(fs::canonical(entry.path()), to);
    fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write);
  }
  return data_dir;
}

class JournalUpgradeTest : public ::testing::Test {
 protected:
  // The old sidecar's calls by the name in their request ("done", "pending"), as GetCall shows
  // them with their payloads.
  std::map<std::string, v1::Call> CallsByName() {
    v1::ListCallsRequest list;
    v1::ListCallsResponse listed;
    grpc::ClientContext list_context;
    const grpc::Status status = stub_->ListCalls(&list_context, list, &listed);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::map<std::string, v1::Call> calls;
    for (const v1::Call& summary : listed.calls()) {
      v1::GetCallRequest get;
      get.set_cid(summary.envelope().cid());
      get.set_include_payload(true);
      v1::Call call;
      grpc::ClientContext context;
      EXPECT_TRUE(stub_->GetCall(&context, get, &call).ok());
      ::greeter::v1::HelloRequest request;
      EXPECT_TRUE(request.ParseFromString(call.envelope().payload())) << call.envelope().cid();
      calls[request.name()] = call;
    }
    return calls;
  }

  static std::string ReplyMessage(const v1::Call& call) {
    ::greeter::v1::HelloReply reply;
    EXPECT_TRUE(reply.ParseFromString(call.completion().reply())) << call.envelope().cid();
    return reply.message();
  }

  std::unique_ptr<SidecarProcess> sidecar_;
  std::unique_ptr<v1::Sidecar::Stub> stub_;
};

TEST_F(JournalUpgradeTest, TheOldReleasesJournalIsUpgradedAndItsCallsFinish) {
  const std::string data_dir = CopyFixture();
  auto started = SidecarProcess::Start(
      {.config_yaml = "callback_retry: {max_attempts: 1000, initial_backoff: 20ms, "
                      "max_backoff: 100ms}\n",
       .data_dir = data_dir});
  ASSERT_TRUE(started.ok()) << started.status();
  sidecar_ = std::make_unique<SidecarProcess>(*std::move(started));
  stub_ = v1::Sidecar::NewStub(sidecar_->Channel());
  EXPECT_THAT(sidecar_->process().output(),
              HasSubstr("upgrading " + data_dir + " from format 1 to 2"));

  // Both calls as the old sidecar left them, payloads and reply included.
  std::map<std::string, v1::Call> calls = CallsByName();
  ASSERT_EQ(calls.size(), 2u);
  ASSERT_TRUE(calls.count("done") && calls.count("pending"));
  EXPECT_EQ(calls["done"].state(), v1::CALL_STATE_SUCCEEDED);
  EXPECT_EQ(ReplyMessage(calls["done"]), "Hello, done!");
  EXPECT_EQ(calls["done"].callback(), kCallback);
  EXPECT_NE(calls["pending"].state(), v1::CALL_STATE_SUCCEEDED);
  EXPECT_EQ(calls["pending"].envelope().source(), "upgrade-test");

  // The apps come back: the owed completion is delivered, the interrupted call runs again.
  greeter::GreeterService greeter;
  ServiceHost greeter_host(ServiceHostOptions{.name = "greeter", .sidecar = sidecar_->address()});
  greeter_host.AddService(&greeter);
  ASSERT_TRUE(greeter_host.Start().ok());
  RecordedCompletions completions("greeter.v1.Greeter");
  ServiceHost callback_host(ServiceHostOptions{.name = kCallback, .sidecar = sidecar_->address()});
  callback_host.AddCallbacks(&completions);
  ASSERT_TRUE(callback_host.Start().ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        calls = CallsByName();
        return calls["done"].callback_delivery() == v1::DELIVERY_STATE_DELIVERED &&
               calls["pending"].callback_delivery() == v1::DELIVERY_STATE_DELIVERED;
      },
      absl::Seconds(60), absl::Milliseconds(50)))
      << "done: " << calls["done"].ShortDebugString()
      << "\npending: " << calls["pending"].ShortDebugString();
  EXPECT_EQ(calls["pending"].state(), v1::CALL_STATE_SUCCEEDED);
  EXPECT_EQ(ReplyMessage(calls["pending"]), "Hello, pending!");
  EXPECT_GE(calls["pending"].attempts(), 2u);    // attempt 1 died with the old sidecar
  std::map<std::string, std::string> delivered;  // CID -> reply message
  for (const v1::Completion& completion : completions.received()) {
    ::greeter::v1::HelloReply reply;
    ASSERT_TRUE(reply.ParseFromString(completion.reply()));
    delivered[completion.cid()] = reply.message();
  }
  EXPECT_EQ(delivered[calls["done"].envelope().cid()], "Hello, done!");
  EXPECT_EQ(delivered[calls["pending"].envelope().cid()], "Hello, pending!");

  // A crash and a restart on the upgraded journal: the rewritten records read back the same, and
  // it is not upgraded twice.
  sidecar_->Kill();
  ASSERT_TRUE(sidecar_->Restart().ok());
  EXPECT_THAT(sidecar_->process().output(), Not(HasSubstr("upgrading")));
  const std::map<std::string, v1::Call> after = CallsByName();
  ASSERT_EQ(after.size(), 2u);
  for (const auto& [name, call] : calls) {
    const v1::Call& again = after.at(name);
    EXPECT_EQ(again.envelope().payload(), call.envelope().payload()) << name;
    EXPECT_EQ(again.completion().reply(), call.completion().reply()) << name;
    EXPECT_EQ(again.state(), call.state()) << name;
    EXPECT_EQ(again.callback_delivery(), v1::DELIVERY_STATE_DELIVERED) << name;
  }
}

}  // namespace
}  // namespace callmesh
