// The web view of a real callmeshd in headless Chromium (Debian `chromium`, driven over the
// DevTools protocol): the page loads, shows calls made during the test as they run and as they
// complete, filters by CID, shows a call's page with its trace id, and its Redrive button re-drives
// a dead letter. A screenshot is kept under the test's outputs (web_view.png).
#include <httplib.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <string>

#include "absl/strings/str_cat.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gtest/gtest.h"
#include "runtime/common/proto_time.h"
#include "runtime/sdk/service_host.h"
#include "services/greeter/greeter_service.h"
#include "tests/support/greeter_calls.h"
#include "tests/support/headless_chromium.h"
#include "tests/support/process.h"
#include "tests/support/sidecar_process.h"

namespace callmesh {
namespace {

using ::callmesh::testing::HeadlessChromium;
using ::callmesh::testing::SidecarProcess;
using ::callmesh::testing::WaitUntil;
using ::greeter::v1::HelloRequest;

constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";

// The state shown in the calls table for `cid` ("" while the row is absent).
std::string RowState(const std::string& cid) {
  return absl::StrCat("(document.querySelector('#calls tr[data-cid=\"", cid,
                      "\"] .state')?.textContent ?? '')");
}

class WebViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = SidecarProcess::Start(
        {.config_yaml = absl::StrCat(
             "name: web\n"
             "admin_listen: 127.0.0.1:0\n"
             "callback_retry: {max_attempts: 2, initial_backoff: 50ms, max_backoff: 100ms}\n"
             "services:\n"
             "  - name: ghost\n"
             "    addresses: [127.0.0.1:",
             testing::FreeLoopbackPort(), "]\n")});
    ASSERT_TRUE(started.ok()) << started.status();
    sidecar_ = std::make_unique<SidecarProcess>(*std::move(started));
    stub_ = v1::Sidecar::NewStub(sidecar_->Channel());
    const std::regex logged("admin listener on ([0-9.]+:[0-9]+)");
    std::smatch match;
    std::string output;
    ASSERT_TRUE(WaitUntil([&] {
      output = sidecar_->process().output();
      return std::regex_search(output, match, logged);
    })) << output;
    ui_ = absl::StrCat("http://", match[1].str(), "/ui");
    greeter_host_ = std::make_unique<ServiceHost>(
        ServiceHostOptions{.name = "greeter", .sidecar = sidecar_->address()});
    greeter_host_->AddService(&greeter_);
    ASSERT_TRUE(greeter_host_->Start().ok());
    auto browser = HeadlessChromium::Start();
    ASSERT_TRUE(browser.ok()) << browser.status();
    browser_ = *std::move(browser);
  }

  std::string InvokeAsync(const std::string& name, uint32_t delay_ms = 0,
                          const std::string& callback = "") {
    HelloRequest hello;
    hello.set_name(name);
    hello.set_delay_ms(delay_ms);
    v1::InvokeAsyncRequest request = testing::SayHelloAsync(hello);
    request.set_source("webtest");
    request.set_callback(callback);
    v1::InvokeAsyncResponse response;
    grpc::ClientContext context;
    context.AddMetadata("traceparent", absl::StrCat("00-", kTraceId, "-00f067aa0ba902b7-01"));
    grpc::Status status = stub_->InvokeAsync(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.cid();
  }

  // When `cid` was (last) dead-lettered; InfinitePast while it is not a dead letter.
  absl::Time DeadLetteredAt(const std::string& cid) {
    grpc::ClientContext context;
    v1::ListDeadLettersResponse response;
    EXPECT_TRUE(stub_->ListDeadLetters(&context, v1::ListDeadLettersRequest(), &response).ok());
    for (const v1::DeadLetter& letter : response.dead_letters()) {
      if (letter.completion().cid() == cid) return FromProtoTimestamp(letter.dead_lettered_at());
    }
    return absl::InfinitePast();
  }

  std::unique_ptr<SidecarProcess> sidecar_;
  std::unique_ptr<v1::Sidecar::Stub> stub_;
  std::string ui_;
  greeter::GreeterService greeter_;
  std::unique_ptr<ServiceHost> greeter_host_;
  std::unique_ptr<HeadlessChromium> browser_;
};

TEST_F(WebViewTest, ShowsCallsLiveTheirPagesAndRedrivesADeadLetter) {
  ASSERT_TRUE(browser_->Open(ui_).ok());
  ASSERT_TRUE(browser_
                  ->WaitFor("document.querySelector('#services').innerText.includes('greeter') && "
                            "document.querySelector('#live').textContent === 'live'")
                  .ok());

  // A call made while the page is open appears running, then completes: both through the
  // event stream, without reloading the page.
  const std::string slow = InvokeAsync("slow", /*delay_ms=*/4000);
  absl::Status shown = browser_->WaitFor(RowState(slow) + " === 'RUNNING'");
  ASSERT_TRUE(shown.ok()) << shown;
  EXPECT_TRUE(browser_
                  ->WaitFor(absl::StrCat("document.querySelector('#calls tr[data-cid=\"", slow,
                                         "\"]').innerText.includes('the reply of attempt 1')"))
                  .ok());
  shown = browser_->WaitFor(RowState(slow) + " === 'SUCCEEDED'");
  ASSERT_TRUE(shown.ok()) << shown;
  const std::string quick = InvokeAsync("quick");
  ASSERT_TRUE(browser_->WaitFor(RowState(quick) + " === 'SUCCEEDED'").ok());

  // Filter by CID: only that call is listed.
  ASSERT_TRUE(browser_
                  ->Evaluate(absl::StrCat("(() => { const f = document.querySelector('#f-cid'); "
                                          "f.value = '",
                                          quick,
                                          "'; f.dispatchEvent(new Event('input')); "
                                          "return 'set'; })()"))
                  .ok());
  shown = browser_->WaitFor(
      absl::StrCat("(() => { const rows = [...document.querySelectorAll('#calls tbody tr')]; "
                   "return rows.length === 1 && rows[0].dataset.cid === '",
                   quick, "'; })()"));
  EXPECT_TRUE(shown.ok()) << shown;

  // The call's page: outcome, attempts and its trace id.
  ASSERT_TRUE(browser_->Evaluate(absl::StrCat("location.hash = '#call=", slow, "'")).ok());
  shown = browser_->WaitFor(absl::StrCat(
      "(() => { const t = document.querySelector('#call').textContent; return !document."
      "querySelector('#call').hidden && t.includes('",
      slow, "') && t.includes('", kTraceId, "') && t.includes('SUCCEEDED'); })()"));
  EXPECT_TRUE(shown.ok()) << shown;

  // A completion whose callback cannot be delivered becomes a dead letter with a Redrive button.
  const std::string lost = InvokeAsync("lost", 0, /*callback=*/"ghost");
  ASSERT_TRUE(
      WaitUntil([&] { return DeadLetteredAt(lost) != absl::InfinitePast(); }, absl::Seconds(60)));
  const absl::Time first = DeadLetteredAt(lost);
  const std::string button =
      absl::StrCat("document.querySelector('button.redrive[data-cid=\"", lost, "\"]')");
  shown = browser_->WaitFor(button + " !== null");
  ASSERT_TRUE(shown.ok()) << shown;
  ASSERT_TRUE(browser_->Evaluate(button + ".click(), 'clicked'").ok());
  // Re-driven: delivered again from attempt 1, and (the callback still being away) dead-lettered
  // anew, later.
  EXPECT_TRUE(WaitUntil([&] { return DeadLetteredAt(lost) > first; }, absl::Seconds(60)));
  EXPECT_EQ(*browser_->Evaluate("document.querySelector('#message').textContent"), "");

  // A screenshot for people (and the README), kept with the test's outputs: every call listed
  // again, the call's page open, the dead letter shown.
  ASSERT_TRUE(browser_
                  ->Evaluate("(() => { const f = document.querySelector('#f-cid'); f.value = ''; "
                             "f.dispatchEvent(new Event('input')); return 'cleared'; })()")
                  .ok());
  shown =
      browser_->WaitFor(absl::StrCat("document.querySelectorAll('#calls tbody tr').length >= 3 && "
                                     "document.querySelector('#dead-letters tr[data-cid=\"",
                                     lost, "\"]') !== null"));
  EXPECT_TRUE(shown.ok()) << shown;
  const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  const std::string screenshot =
      absl::StrCat(outputs != nullptr ? outputs : ::testing::TempDir(), "/web_view.png");
  ASSERT_TRUE(browser_->Screenshot(screenshot).ok());
}

// With callers authenticating, the web view (no login of its own) is not served; metrics are.
TEST(WebViewUnderSecurity, IsNotServedWhileCallersAuthenticate) {
  const std::string token = testing::NewTempDir("webview") + "/ops.token";
  std::ofstream(token) << "s3cret-token-of-ops\n";
  auto started = SidecarProcess::Start({.config_yaml = absl::StrCat("name: web\n"
                                                                    "admin_listen: 127.0.0.1:0\n"
                                                                    "security:\n"
                                                                    "  tokens: [{app: ops, file: ",
                                                                    token,
                                                                    "}]\n"
                                                                    "  admins: [ops]\n")});
  ASSERT_TRUE(started.ok()) << started.status();
  SidecarProcess sidecar = *std::move(started);
  const std::regex logged("admin listener on ([0-9.]+:[0-9]+)");
  std::smatch match;
  std::string output;
  ASSERT_TRUE(WaitUntil([&] {
    output = sidecar.process().output();
    return std::regex_search(output, match, logged);
  })) << output;
  EXPECT_NE(output.find("the web view (/ui) is off"), std::string::npos) << output;
  httplib::Client admin(absl::StrCat("http://", match[1].str()));
  httplib::Result ui = admin.Get("/ui");
  ASSERT_TRUE(ui) << httplib::to_string(ui.error());
  EXPECT_EQ(ui->status, 404);
  httplib::Result redrive = admin.Post("/ui/api/dead-letters/x/redrive");
  ASSERT_TRUE(redrive) << httplib::to_string(redrive.error());
  EXPECT_EQ(redrive->status, 404);
  httplib::Result metrics = admin.Get("/metrics");
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_EQ(metrics->status, 200);
}

}  // namespace
}  // namespace callmesh
