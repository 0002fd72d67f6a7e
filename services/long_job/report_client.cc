// report_client: asks "reports" for a slow report with BuildAsync, polls the call by CID with
// GetCall until it is done, and also receives the pushed completion at OnBuild (its host,
// "report-client", serves "report-client-async-callback"). Exits 1 unless both arrive with the
// same CID and the same report.
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/synchronization/notification.h"
#include "runtime/sdk/mesh.h"
#include "runtime/sdk/service_host.h"
#include "services/common/example_main.h"
#include "services/long_job/long_job.callmesh.h"

ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");
ABSL_FLAG(uint32_t, seconds, 3, "How long the report takes.");
ABSL_FLAG(uint32_t, poll_ms, 500, "Interval between polls.");

namespace {

constexpr char kSource[] = "report-client";

class Pushed final : public long_job::v1::ReportsCallbacks {
 public:
  void OnBuild(const callmesh::CallInfo& call, const long_job::v1::Report& report) override {
    if (done_.HasBeenNotified()) return;  // a redelivery
    std::cout << "  pushed: OnBuild cid=" << call.cid << " \"" << report.title() << "\" "
              << report.rows_size() << " rows (attempts " << call.attempts << ")\n"
              << std::flush;
    cid_ = call.cid;
    report_ = report;
    done_.Notify();
  }
  void OnBuildError(const callmesh::CallInfo& call, const absl::Status& error) override {
    if (done_.HasBeenNotified()) return;
    std::cout << "  pushed: OnBuildError cid=" << call.cid << " " << error << "\n" << std::flush;
    cid_ = call.cid;
    done_.Notify();
  }
  bool Wait() { return done_.WaitForNotificationWithTimeout(absl::Seconds(60)); }
  const std::string& cid() const { return cid_; }
  const long_job::v1::Report& report() const { return report_; }

 private:
  absl::Notification done_;
  std::string cid_;
  long_job::v1::Report report_;
};

}  // namespace

int main(int argc, char** argv) {
  callmesh::examples::InitExample(argc, argv, "report_client [--sidecar ADDR] [--seconds N]");
  const std::string sidecar = absl::GetFlag(FLAGS_sidecar);
  Pushed pushed;
  callmesh::ServiceHost host({.name = kSource, .sidecar = sidecar});
  host.AddCallbacks(&pushed);
  if (absl::Status s = host.Start(); !s.ok()) {
    std::cerr << "report_client: " << s << "\n";
    return 1;
  }
  callmesh::Mesh mesh({.sidecar = sidecar, .source = kSource});
  long_job::v1::ReportsClient reports(mesh, "reports");
  long_job::v1::ReportRequest request;
  request.set_title("quarterly numbers");
  request.set_seconds(absl::GetFlag(FLAGS_seconds));
  request.set_rows(4);
  absl::StatusOr<callmesh::Cid> cid = reports.BuildAsync(request, {.timeout = absl::Minutes(2)});
  if (!cid.ok()) {
    std::cerr << "report_client: BuildAsync failed: " << cid.status() << "\n";
    return 1;
  }
  std::cout << "  accepted cid=" << *cid << " (a " << request.seconds() << " s report)\n"
            << std::flush;

  // Pull: poll by CID until the call is terminal.
  callmesh::v1::Call call;
  for (int polls = 0;; ++polls) {
    absl::StatusOr<callmesh::v1::Call> got = mesh.GetCall(*cid);
    if (!got.ok()) {
      std::cerr << "report_client: GetCall failed: " << got.status() << "\n";
      return 1;
    }
    call = *got;
    std::cout << "  poll " << polls + 1 << ": " << callmesh::v1::CallState_Name(call.state())
              << " (attempts " << call.attempts() << ")\n"
              << std::flush;
    if (call.completion().state() != callmesh::v1::CALL_STATE_UNSPECIFIED) break;
    absl::SleepFor(absl::Milliseconds(absl::GetFlag(FLAGS_poll_ms)));
  }
  absl::StatusOr<long_job::v1::Report> polled =
      callmesh::TypedReply<long_job::v1::Report>(call.completion(), "long_job.v1.Reports/Build");
  std::cout << "  polled result: "
            << (polled.ok() ? absl::StrCat("\"", polled->title(), "\" ", polled->rows_size(),
                                           " rows, built under cid=", polled->cid())
                            : polled.status().ToString())
            << "\n";

  // Push: the completion also arrived (or arrives) at OnBuild.
  if (!pushed.Wait()) {
    std::cerr << "report_client: no pushed completion within 60 s\n";
    return 1;
  }
  host.Shutdown();
  const bool ok = polled.ok() && polled->cid() == *cid && pushed.cid() == *cid &&
                  pushed.report().SerializeAsString() == polled->SerializeAsString();
  std::cout << "  poll and push agree on cid=" << *cid << ": " << (ok ? "yes" : "NO") << "\n";
  return ok ? 0 : 1;
}
