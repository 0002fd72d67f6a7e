// reports_server: serves long_job.v1.Reports as mesh service "reports": slow on purpose.
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "runtime/sdk/context.h"
#include "runtime/sdk/service_host.h"
#include "services/common/example_main.h"
#include "services/long_job/long_job.grpc.pb.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to serve on (port 0 = any free port).");
ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");
ABSL_FLAG(std::string, ready_file, "", "Once serving, write the bound address to this file.");

namespace {

class ReportsService final : public long_job::v1::Reports::Service {
 public:
  grpc::Status Build(grpc::ServerContext* server_context,
                     const long_job::v1::ReportRequest* request,
                     long_job::v1::Report* report) override {
    const callmesh::Context context = callmesh::Context::From(*server_context);
    if (request->seconds() > 60) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "seconds must be at most 60");
    }
    spdlog::info("reports: [cid={}] building \"{}\" ({} s, attempt {})", context.cid(),
                 request->title(), request->seconds(), context.attempt());
    const absl::Time done = absl::Now() + absl::Seconds(request->seconds());
    while (absl::Now() < done) {
      if (server_context->IsCancelled()) {
        spdlog::info("reports: [cid={}] cancelled", context.cid());
        return grpc::Status(grpc::StatusCode::CANCELLED, "report cancelled");
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    report->set_title(request->title());
    for (uint32_t i = 1; i <= request->rows(); ++i) report->add_rows(absl::StrCat("row ", i));
    report->set_cid(context.cid());
    spdlog::info("reports: [cid={}] \"{}\" done", context.cid(), request->title());
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  callmesh::examples::InitExample(argc, argv, "reports_server [--sidecar ADDR] [--listen ADDR]");
  ReportsService reports;
  callmesh::ServiceHost host({.name = "reports",
                              .listen = absl::GetFlag(FLAGS_listen),
                              .sidecar = absl::GetFlag(FLAGS_sidecar)});
  host.AddService(&reports);
  return callmesh::examples::ServeUntilStopped(host, absl::GetFlag(FLAGS_ready_file));
}
