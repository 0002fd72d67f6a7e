// hello_client: calls hello.SayHello synchronously for each --names entry and prints the CIDs it
// got back (world's answers show up in hello_server's log as OnGreet / OnGreetError).
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "runtime/sdk/mesh.h"
#include "services/common/example_main.h"
#include "services/hello_world/hello_world.callmesh.h"

ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");
ABSL_FLAG(std::string, names, "world,nobody", "Comma-separated names to greet.");

int main(int argc, char** argv) {
  callmesh::examples::InitExample(argc, argv, "hello_client [--sidecar ADDR] [--names a,b]");
  callmesh::Mesh mesh({.sidecar = absl::GetFlag(FLAGS_sidecar), .source = "hello-client"});
  hello_world::v1::HelloClient hello(mesh, "hello");
  for (absl::string_view name :
       absl::StrSplit(absl::GetFlag(FLAGS_names), ',', absl::SkipEmpty())) {
    hello_world::v1::HelloRequest request;
    request.set_name(std::string(name));
    absl::StatusOr<hello_world::v1::HelloReply> reply =
        hello.SayHello(request, {.timeout = absl::Seconds(10)});
    if (!reply.ok()) {
      std::cerr << "hello_client: SayHello(" << name << ") failed: " << reply.status() << "\n";
      return 1;
    }
    std::cout << "SayHello(" << name << "): hello cid=" << reply->cid()
              << " -> world.Greet async cid=" << reply->world_cid()
              << ", world.Note cast cid=" << reply->note_cid() << "\n";
  }
  return 0;
}
