// world_server: serves hello_world.v1.World as mesh service "world".
#include "absl/flags/flag.h"
#include "runtime/sdk/context.h"
#include "runtime/sdk/service_host.h"
#include "services/common/example_main.h"
#include "services/hello_world/hello_world.grpc.pb.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to serve on (port 0 = any free port).");
ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");
ABSL_FLAG(std::string, ready_file, "", "Once serving, write the bound address to this file.");

namespace {

class WorldService final : public hello_world::v1::World::Service {
 public:
  grpc::Status Greet(grpc::ServerContext* server_context,
                     const hello_world::v1::GreetRequest* request,
                     hello_world::v1::GreetReply* reply) override {
    const callmesh::Context context = callmesh::Context::From(*server_context);
    spdlog::info("world: [cid={}] Greet {} from {} (parent {}, traceparent {})", context.cid(),
                 request->name(), context.source(), context.parent_cid(),
                 context.traceparent().empty() ? "-" : context.traceparent());
    if (request->name() == "nobody") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "nobody is not in this world");
    }
    reply->set_greeting("Hello from the world, " + request->name() + "!");
    reply->set_parent_cid(context.parent_cid());
    return grpc::Status::OK;
  }

  grpc::Status Note(grpc::ServerContext* server_context,
                    const hello_world::v1::NoteRequest* request,
                    hello_world::v1::NoteReply*) override {
    const callmesh::Context context = callmesh::Context::From(*server_context);
    spdlog::info("world: [cid={}] Note \"{}\" from {} (a cast: nobody waits for the reply)",
                 context.cid(), request->text(), context.source());
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  callmesh::examples::InitExample(argc, argv, "world_server [--sidecar ADDR] [--listen ADDR]");
  WorldService world;
  callmesh::ServiceHost host({.name = "world",
                              .listen = absl::GetFlag(FLAGS_listen),
                              .sidecar = absl::GetFlag(FLAGS_sidecar)});
  host.AddService(&world);
  return callmesh::examples::ServeUntilStopped(host, absl::GetFlag(FLAGS_ready_file));
}
