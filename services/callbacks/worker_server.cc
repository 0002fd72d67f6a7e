// worker_server: serves callbacks.v1.Worker as mesh service "worker" and logs the CID of each call.
#include "absl/flags/flag.h"
#include "runtime/sdk/context.h"
#include "runtime/sdk/service_host.h"
#include "services/callbacks/callbacks.grpc.pb.h"
#include "services/common/example_main.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to serve on (port 0 = any free port).");
ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");
ABSL_FLAG(std::string, ready_file, "", "Once serving, write the bound address to this file.");

namespace {

class WorkerService final : public callbacks::v1::Worker::Service {
 public:
  grpc::Status Work(grpc::ServerContext* server_context, const callbacks::v1::WorkRequest* request,
                    callbacks::v1::WorkReply* reply) override {
    const callmesh::Context context = callmesh::Context::From(*server_context);
    spdlog::info("worker: received cid={} job={} from {}", context.cid(), request->job(),
                 context.source());
    reply->set_job(request->job());
    reply->set_cid(context.cid());
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  callmesh::examples::InitExample(argc, argv, "worker_server [--sidecar ADDR] [--listen ADDR]");
  WorkerService worker;
  callmesh::ServiceHost host({.name = "worker",
                              .listen = absl::GetFlag(FLAGS_listen),
                              .sidecar = absl::GetFlag(FLAGS_sidecar)});
  host.AddService(&worker);
  return callmesh::examples::ServeUntilStopped(host, absl::GetFlag(FLAGS_ready_file));
}
