// fib_server: serves fib.v1.Fib as mesh service "fib" (or --name), registered with the sidecar.
#include "absl/flags/flag.h"
#include "runtime/sdk/context.h"
#include "runtime/sdk/service_host.h"
#include "services/common/example_main.h"
#include "services/fib/fib.grpc.pb.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to serve on (port 0 = any free port).");
ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");
ABSL_FLAG(std::string, name, "fib", "Mesh name to register under.");
ABSL_FLAG(std::string, ready_file, "", "Once serving, write the bound address to this file.");

namespace {

class FibService final : public fib::v1::Fib::Service {
 public:
  grpc::Status Compute(grpc::ServerContext* server_context, const fib::v1::FibRequest* request,
                       fib::v1::FibReply* reply) override {
    const callmesh::Context context = callmesh::Context::From(*server_context);
    if (request->n() > 93) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "n must be at most 93 (fib(94) does not fit 64 bits)");
    }
    uint64_t a = 0, b = 1;
    for (uint32_t i = 0; i < request->n(); ++i) {
      const uint64_t next = a + b;
      a = b;
      b = next;
    }
    spdlog::info("[cid={}] fib({}) = {} for {}", context.cid(), request->n(), a, context.source());
    reply->set_n(request->n());
    reply->set_value(a);
    reply->set_cid(context.cid());
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  callmesh::examples::InitExample(argc, argv, "fib_server [--sidecar ADDR] [--listen ADDR]");
  FibService fib;
  callmesh::ServiceHost host({.name = absl::GetFlag(FLAGS_name),
                              .listen = absl::GetFlag(FLAGS_listen),
                              .sidecar = absl::GetFlag(FLAGS_sidecar)});
  host.AddService(&fib);
  return callmesh::examples::ServeUntilStopped(host, absl::GetFlag(FLAGS_ready_file));
}
