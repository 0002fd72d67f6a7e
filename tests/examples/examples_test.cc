// The five example services of services/ end to end: a real callmeshd, the example servers and
// clients as separate processes, checked through their exit codes and what they print and log.
#include <algorithm>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/sidecar_process.h"

namespace callmesh {
namespace {

using ::callmesh::testing::NewTempDir;
using ::callmesh::testing::Process;
using ::callmesh::testing::RunfilePath;
using ::callmesh::testing::SidecarProcess;
using ::callmesh::testing::WaitUntil;

// Every match of `pattern`'s first group in `text`.
std::vector<std::string> Captures(const std::string& text, const std::string& pattern) {
  std::vector<std::string> out;
  const std::regex re(pattern);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it) {
    out.push_back((*it)[1].str());
  }
  return out;
}

class ExamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = SidecarProcess::Start({});
    ASSERT_TRUE(started.ok()) << started.status();
    sidecar_ = std::make_unique<SidecarProcess>(*std::move(started));
  }

  // Starts an example server and waits until it serves (registered with the sidecar).
  Process* StartServer(const std::string& binary) {
    const std::string ready = NewTempDir("ready") + "/ready";
    const std::string label = binary.substr(binary.rfind('/') + 1);
    auto process = Process::Start(
        RunfilePath(binary),
        {"--sidecar=" + sidecar_->address(), "--listen=127.0.0.1:0", "--ready-file=" + ready},
        label);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return nullptr;
    servers_.push_back(std::make_unique<Process>(*std::move(process)));
    absl::StatusOr<std::string> address = servers_.back()->WaitReady(ready, absl::Seconds(30));
    EXPECT_TRUE(address.ok()) << label << ": " << address.status();
    return address.ok() ? servers_.back().get() : nullptr;
  }

  // Runs a client to completion; returns its output, and its exit code in `code`.
  std::string RunClient(const std::string& binary, std::vector<std::string> args, int* code) {
    args.push_back("--sidecar=" + sidecar_->address());
    const std::string label = binary.substr(binary.rfind('/') + 1);
    auto process = Process::Start(RunfilePath(binary), args, label);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return "";
    absl::StatusOr<int> exit_code = process->Wait(absl::Seconds(90));
    EXPECT_TRUE(exit_code.ok()) << label << ": " << exit_code.status();
    *code = exit_code.ok() ? *exit_code : -1;
    return process->output();
  }

  std::unique_ptr<SidecarProcess> sidecar_;
  std::vector<std::unique_ptr<Process>> servers_;
};

TEST_F(ExamplesTest, FibRepliesCarryTheCorrelationIdOfTheRequest) {
  Process* server = StartServer("services/fib/fib_server");
  ASSERT_NE(server, nullptr);
  int code = -1;
  const std::string out = RunClient("services/fib/fib_client", {"--n=10,30"}, &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "Got fib(10) = 55")) << out;
  EXPECT_TRUE(absl::StrContains(out, "Got fib(30) = 832040")) << out;
  EXPECT_TRUE(absl::StrContains(out, "fib(20) = 6765")) << out;
  EXPECT_TRUE(absl::StrContains(out, "fib(100) -> INVALID_ARGUMENT")) << out;
  const std::vector<std::string> requested =
      Captures(out, R"(Requesting fib\(\d+\)  correlation id ([0-9a-f-]{36}))");
  const std::vector<std::string> got =
      Captures(out, R"(Got fib\(\d+\) = \d+  correlation id ([0-9a-f-]{36}) \(matches\))");
  ASSERT_EQ(requested.size(), 2u) << out;
  EXPECT_EQ(got, requested) << out;
  // The server computed each under the client's CID.
  for (const std::string& cid : requested) {
    EXPECT_TRUE(absl::StrContains(server->output(), absl::StrCat("[cid=", cid, "] fib(")))
        << server->output();
  }
}

TEST_F(ExamplesTest, HelloGetsWorldsReplyAtOnGreetAndItsErrorAtOnGreetError) {
  Process* world = StartServer("services/hello_world/world_server");
  Process* hello = StartServer("services/hello_world/hello_server");
  ASSERT_NE(world, nullptr);
  ASSERT_NE(hello, nullptr);
  int code = -1;
  const std::string out =
      RunClient("services/hello_world/hello_client", {"--names=earth,nobody"}, &code);
  ASSERT_EQ(code, 0) << out;
  const std::string cid = "([0-9a-f-]{36})";
  const std::vector<std::string> hello_cids = Captures(out, "hello cid=" + cid);
  const std::vector<std::string> world_cids = Captures(out, "world.Greet async cid=" + cid);
  const std::vector<std::string> note_cids = Captures(out, "world.Note cast cid=" + cid);
  ASSERT_EQ(hello_cids.size(), 2u) << out;
  ASSERT_EQ(world_cids.size(), 2u) << out;
  ASSERT_EQ(note_cids.size(), 2u) << out;

  // The reply reaches OnGreet, the error OnGreetError, each naming hello's call as the parent.
  const std::string on_greet =
      absl::StrCat("OnGreet [cid=", world_cids[0], "] \"Hello from the world, earth!\" (parent ",
                   hello_cids[0], ")");
  const std::string on_error =
      absl::StrCat("OnGreetError [cid=", world_cids[1],
                   "] NOT_FOUND: nobody is not in this world (parent ", hello_cids[1], ")");
  EXPECT_TRUE(WaitUntil([&] {
    return absl::StrContains(hello->output(), on_greet) &&
           absl::StrContains(hello->output(), on_error);
  })) << hello->output();
  // World saw the parent of each call, and both casts arrived.
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(absl::StrContains(world->output(), absl::StrCat("[cid=", world_cids[i], "] Greet")))
        << world->output();
    EXPECT_TRUE(absl::StrContains(world->output(), absl::StrCat("(parent ", hello_cids[i])))
        << world->output();
    EXPECT_TRUE(WaitUntil([&] {
      return absl::StrContains(world->output(), absl::StrCat("[cid=", note_cids[i], "] Note"));
    })) << world->output();
  }
  // A cast has no reply: no completion of a Note reaches hello's callbacks (whose default
  // OnNote would log "hello_world.v1.World/Note succeeded").
  EXPECT_FALSE(absl::StrContains(hello->output(), "World/Note")) << hello->output();
}

TEST_F(ExamplesTest, ExplicitAndConventionCallbacksGetTheCallersCid) {
  Process* worker = StartServer("services/callbacks/worker_server");
  ASSERT_NE(worker, nullptr);
  int code = -1;
  const std::string out = RunClient("services/callbacks/callbacks_client", {}, &code);
  EXPECT_EQ(code, 0) << out;
  const std::vector<std::string> sent = Captures(out, "sent cid=([0-9a-f-]{36})");
  ASSERT_EQ(sent.size(), 2u) << out;
  EXPECT_TRUE(absl::StrContains(out, absl::StrCat("callbacks-audit: OnWork cid=", sent[0]))) << out;
  EXPECT_TRUE(
      absl::StrContains(out, absl::StrCat("callbacks-client-async-callback: OnWork cid=", sent[1])))
      << out;
  for (const std::string& cid : sent) {
    EXPECT_TRUE(absl::StrContains(out, "same CID at caller, worker and callback: " + cid)) << out;
    EXPECT_TRUE(absl::StrContains(worker->output(), "worker: received cid=" + cid))
        << worker->output();
  }
}

TEST_F(ExamplesTest, LongJobIsPolledByCidAndPushedToo) {
  Process* reports = StartServer("services/long_job/reports_server");
  ASSERT_NE(reports, nullptr);
  int code = -1;
  const std::string out =
      RunClient("services/long_job/report_client", {"--seconds=2", "--poll_ms=200"}, &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "CALL_STATE_RUNNING")) << out;
  EXPECT_TRUE(absl::StrContains(out, "CALL_STATE_SUCCEEDED")) << out;
  const std::vector<std::string> accepted = Captures(out, "accepted cid=([0-9a-f-]{36})");
  ASSERT_EQ(accepted.size(), 1u) << out;
  EXPECT_TRUE(absl::StrContains(out, "pushed: OnBuild cid=" + accepted[0])) << out;
  EXPECT_TRUE(absl::StrContains(out, "poll and push agree on cid=" + accepted[0] + ": yes")) << out;
  EXPECT_TRUE(absl::StrContains(reports->output(), "[cid=" + accepted[0] + "] building"))
      << reports->output();
}

TEST_F(ExamplesTest, OrdersFanOutToBillingAndToOneOfTheShippingInstances) {
  Process* billing = StartServer("services/orders/billing_server");
  Process* shipping_1 = StartServer("services/orders/shipping_server");
  Process* shipping_2 = StartServer("services/orders/shipping_server");
  ASSERT_NE(billing, nullptr);
  ASSERT_NE(shipping_1, nullptr);
  ASSERT_NE(shipping_2, nullptr);
  int code = -1;
  const std::string out = RunClient("services/orders/orders_client", {"--count=6"}, &code);
  EXPECT_EQ(code, 0) << out;
  const std::vector<std::string> published =
      Captures(out, R"(orders: published (o-\d+) as event \S+ \(sequence \d+, to 2 subscribing)");
  ASSERT_EQ(published.size(), 6u) << out;
  auto shipped = [&] {
    return Captures(shipping_1->output(), R"(shipping: shipping (o-\d+) )").size() +
           Captures(shipping_2->output(), R"(shipping: shipping (o-\d+) )").size();
  };
  ASSERT_TRUE(WaitUntil([&] {
    return Captures(billing->output(), R"(billing: invoice for (o-\d+) )").size() >= 6 &&
           shipped() >= 6;
  })) << billing->output()
      << shipping_1->output() << shipping_2->output();
  // Billing got every order once; each order was shipped by exactly one shipping instance.
  // (PARALLEL: in any order.)
  std::vector<std::string> billed = Captures(billing->output(), R"(billing: invoice for (o-\d+) )");
  std::vector<std::string> expected = published;
  std::sort(billed.begin(), billed.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(billed, expected);
  for (const std::string& order : published) {
    const std::string line = "shipping: shipping " + order + " ";
    EXPECT_NE(absl::StrContains(shipping_1->output(), line),
              absl::StrContains(shipping_2->output(), line))
        << order << "\n"
        << shipping_1->output() << shipping_2->output();
  }
  EXPECT_EQ(shipped(), 6u);
}

}  // namespace
}  // namespace callmesh
