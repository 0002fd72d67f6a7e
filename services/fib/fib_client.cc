// fib_client: RabbitMQ's RPC tutorial over callmesh. For each n it sends an async request to "fib",
// gets its correlation ID (CID) at once, and waits for the reply on a future resolved by the
// Mesh's completion stream. Then one synchronous call, and one error. Exits 1 on any surprise.
#include <future>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "runtime/sdk/mesh.h"
#include "services/common/example_main.h"
#include "services/fib/fib.callmesh.h"

ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");
ABSL_FLAG(std::string, source, "fib-client", "Mesh name to call as.");
ABSL_FLAG(std::string, n, "10,30,90", "Comma-separated values of n.");

int main(int argc, char** argv) {
  callmesh::examples::InitExample(argc, argv, "fib_client [--sidecar ADDR] [--n 10,30]");
  callmesh::Mesh mesh(
      {.sidecar = absl::GetFlag(FLAGS_sidecar), .source = absl::GetFlag(FLAGS_source)});
  fib::v1::FibClient fib(mesh, "fib");

  // Send every request first, each with its own future, like the tutorial's FibonacciRpcClient.
  struct Pending {
    uint32_t n;
    callmesh::Cid cid;
    std::future<absl::StatusOr<fib::v1::FibReply>> reply;
  };
  std::vector<Pending> pending;
  for (absl::string_view text : absl::StrSplit(absl::GetFlag(FLAGS_n), ',', absl::SkipEmpty())) {
    uint32_t n = 0;
    if (!absl::SimpleAtoi(text, &n)) {
      std::cerr << "fib_client: --n: '" << text << "' is not a number\n";
      return 2;
    }
    auto promise = std::make_shared<std::promise<absl::StatusOr<fib::v1::FibReply>>>();
    Pending p{n, "", promise->get_future()};
    fib::v1::FibRequest request;
    request.set_n(n);
    absl::StatusOr<callmesh::Cid> cid = fib.ComputeAsync(
        request, {.timeout = absl::Seconds(30)},
        [promise](absl::StatusOr<fib::v1::FibReply> reply) { promise->set_value(reply); });
    if (!cid.ok()) {
      std::cerr << "fib_client: ComputeAsync failed: " << cid.status() << "\n";
      return 1;
    }
    p.cid = *cid;
    std::cout << " [x] Requesting fib(" << n << ")  correlation id " << p.cid << "\n";
    pending.push_back(std::move(p));
  }
  bool all_ok = true;
  for (Pending& p : pending) {
    if (p.reply.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
      std::cerr << "fib_client: no reply for " << p.cid << " within 60 s\n";
      return 1;
    }
    absl::StatusOr<fib::v1::FibReply> reply = p.reply.get();
    if (!reply.ok()) {
      std::cerr << "fib_client: fib(" << p.n << ") failed: " << reply.status() << "\n";
      all_ok = false;
      continue;
    }
    const bool matches = reply->cid() == p.cid;
    std::cout << " [.] Got fib(" << p.n << ") = " << reply->value() << "  correlation id "
              << reply->cid() << (matches ? " (matches)" : " (MISMATCH)") << "\n";
    all_ok = all_ok && matches;
  }

  // The same with AwaitCompute, and a synchronous call.
  fib::v1::FibRequest request;
  request.set_n(20);
  absl::StatusOr<callmesh::Cid> cid = fib.ComputeAsync(request);
  absl::StatusOr<fib::v1::FibReply> awaited =
      cid.ok() ? fib.AwaitCompute(*cid, absl::Seconds(30)) : cid.status();
  std::cout << " [.] AwaitCompute(" << (cid.ok() ? *cid : "-") << "): fib(20) = "
            << (awaited.ok() ? std::to_string(awaited->value()) : awaited.status().ToString())
            << "\n";
  request.set_n(12);
  absl::StatusOr<fib::v1::FibReply> sync = fib.Compute(request, {.timeout = absl::Seconds(10)});
  std::cout << " [.] Compute (sync): fib(12) = "
            << (sync.ok() ? std::to_string(sync->value()) : sync.status().ToString()) << "\n";
  request.set_n(100);
  absl::StatusOr<fib::v1::FibReply> too_big = fib.Compute(request);
  std::cout << " [.] Compute (sync): fib(100) -> " << too_big.status() << "\n";
  all_ok = all_ok && awaited.ok() && awaited->value() == 6765 && sync.ok() &&
           sync->value() == 144 && absl::IsInvalidArgument(too_big.status());
  return all_ok ? 0 : 1;
}
