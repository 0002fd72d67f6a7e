// hello_server: serves hello_world.v1.Hello as mesh service "hello". Each SayHello calls world's
// Greet asynchronously (with this call as the parent) and casts a Note; world's outcome comes back
// to OnGreet / OnGreetError below, pushed to "hello-async-callback", which this host also serves.
#include "absl/flags/flag.h"
#include "runtime/sdk/context.h"
#include "runtime/sdk/mesh.h"
#include "runtime/sdk/service_host.h"
#include "services/common/example_main.h"
#include "services/hello_world/hello_world.callmesh.h"
#include "services/hello_world/hello_world.grpc.pb.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to serve on (port 0 = any free port).");
ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");
ABSL_FLAG(std::string, ready_file, "", "Once serving, write the bound address to this file.");

namespace {

using hello_world::v1::GreetReply;

class HelloService final : public hello_world::v1::Hello::Service {
 public:
  explicit HelloService(callmesh::Mesh& mesh) : world_(mesh, "world") {}

  grpc::Status SayHello(grpc::ServerContext* server_context,
                        const hello_world::v1::HelloRequest* request,
                        hello_world::v1::HelloReply* reply) override {
    const callmesh::Context context = callmesh::Context::From(*server_context);
    spdlog::info("hello: [cid={}] SayHello {}", context.cid(), request->name());
    hello_world::v1::GreetRequest greet;
    greet.set_name(request->name());
    // No explicit callback: the outcome goes to "hello-async-callback" by convention.
    absl::StatusOr<callmesh::Cid> world_cid = world_.GreetAsync(greet, {.parent = &context});
    if (!world_cid.ok())
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, world_cid.status().ToString());
    hello_world::v1::NoteRequest note;
    note.set_text("hello greeted " + request->name());
    absl::StatusOr<callmesh::Cid> note_cid = world_.NoteCast(note, {.parent = &context});
    if (!note_cid.ok())
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, note_cid.status().ToString());
    spdlog::info("hello: [cid={}] called world.Greet async (cid={}) and cast world.Note (cid={})",
                 context.cid(), *world_cid, *note_cid);
    reply->set_cid(context.cid());
    reply->set_world_cid(*world_cid);
    reply->set_note_cid(*note_cid);
    return grpc::Status::OK;
  }

 private:
  hello_world::v1::WorldClient world_;
};

// World's answers to hello's Greet calls.
class WorldOutcomes final : public hello_world::v1::WorldCallbacks {
 public:
  void OnGreet(const callmesh::CallInfo& call, const GreetReply& reply) override {
    spdlog::info("hello: OnGreet [cid={}] \"{}\" (parent {})", call.cid, reply.greeting(),
                 call.parent_cid);
  }
  void OnGreetError(const callmesh::CallInfo& call, const absl::Status& error) override {
    spdlog::info("hello: OnGreetError [cid={}] {} (parent {})", call.cid, error.ToString(),
                 call.parent_cid);
  }
};

}  // namespace

int main(int argc, char** argv) {
  callmesh::examples::InitExample(argc, argv, "hello_server [--sidecar ADDR] [--listen ADDR]");
  const std::string sidecar = absl::GetFlag(FLAGS_sidecar);
  // The host's name is also the Mesh's source, so world's outcomes find hello-async-callback.
  callmesh::Mesh mesh({.sidecar = sidecar, .source = "hello"});
  HelloService hello(mesh);
  WorldOutcomes outcomes;
  callmesh::ServiceHost host(
      {.name = "hello", .listen = absl::GetFlag(FLAGS_listen), .sidecar = sidecar});
  host.AddService(&hello);
  host.AddCallbacks(&outcomes);
  return callmesh::examples::ServeUntilStopped(host, absl::GetFlag(FLAGS_ready_file));
}
