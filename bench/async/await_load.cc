// await_load: the durable path as an app using the SDK in blocking style drives it. --in-flight
// threads each loop on Mesh::InvokeAsync then Mesh::Await of that call (accept -> target ->
// persisted -> streamed back on the Mesh's WatchCompletions stream), for --duration after
// --warmup; latency is from InvokeAsync to Await's return. Prints one human line and one JSON line
// (prefix "RESULT "), like async_load.
//
//   await_load --sidecar=127.0.0.1:4770 --in-flight=64 --duration=10s
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/common/percentile.h"
#include "runtime/common/flags.h"
#include "runtime/sdk/mesh.h"
#include "services/greeter/greeter.pb.h"

ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of callmeshd.");
ABSL_FLAG(std::string, service, "greeter", "Target mesh service.");
ABSL_FLAG(std::string, method, "greeter.v1.Greeter/SayHello", "Target method.");
ABSL_FLAG(std::string, source, "bench-await", "Source (mesh name of the caller).");
ABSL_FLAG(int, in_flight, 64, "Threads, each with one call outstanding.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "Measured time.");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "Unmeasured time before.");
ABSL_FLAG(int, payload_bytes, 1024, "Size of HelloRequest.name.");
ABSL_FLAG(std::string, label, "", "Name of this run in the JSON line.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("await_load [--sidecar ADDR] [--in-flight N] [--duration D]");
  std::vector<std::string> storage;
  std::vector<char*> args = callmesh::DashedFlagsToUnderscores(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  const int in_flight = absl::GetFlag(FLAGS_in_flight);
  if (in_flight < 1) {
    std::cerr << "await_load: --in-flight must be >= 1\n";
    return 2;
  }
  callmesh::Mesh mesh(
      {.sidecar = absl::GetFlag(FLAGS_sidecar), .source = absl::GetFlag(FLAGS_source)});
  greeter::v1::HelloRequest hello;
  hello.set_name(std::string(absl::GetFlag(FLAGS_payload_bytes), 'x'));
  const std::string payload = hello.SerializeAsString();
  const std::string service = absl::GetFlag(FLAGS_service);
  const std::string method = absl::GetFlag(FLAGS_method);

  std::atomic<bool> running{true};
  std::atomic<bool> measuring{false};
  std::mutex mu;
  std::vector<double> latencies_us;
  std::atomic<uint64_t> errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < in_flight; ++i) {
    threads.emplace_back([&] {
      while (running.load()) {
        const auto start = std::chrono::steady_clock::now();
        absl::StatusOr<callmesh::Cid> cid = mesh.InvokeAsync(service, method, payload);
        absl::StatusOr<callmesh::v1::Completion> done =
            cid.ok() ? mesh.Await(*cid, absl::Seconds(60)) : cid.status();
        const double us =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                .count();
        if (!measuring.load()) continue;
        if (!done.ok() || done->state() != callmesh::v1::CALL_STATE_SUCCEEDED) {
          errors.fetch_add(1);
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        latencies_us.push_back(us);
      }
    });
  }
  absl::SleepFor(absl::GetFlag(FLAGS_warmup));
  measuring.store(true);
  const auto begin = std::chrono::steady_clock::now();
  absl::SleepFor(absl::GetFlag(FLAGS_duration));
  measuring.store(false);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  running.store(false);
  for (std::thread& thread : threads) thread.join();

  std::sort(latencies_us.begin(), latencies_us.end());
  auto percentile = [&](double p) { return callmesh::bench::Percentile(latencies_us, p); };
  const double throughput = latencies_us.size() / seconds;
  std::cout << absl::StrFormat(
      "await in_flight=%d: %.0f completions/s  p50=%.0fus p99=%.0fus  errors=%d\n", in_flight,
      throughput, percentile(50), percentile(99), errors.load());
  std::cout << absl::StrFormat(
      "RESULT {\"label\":\"%s\",\"mode\":\"await\",\"in_flight\":%d,\"calls\":%d,\"seconds\":%.3f,"
      "\"throughput\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
      "\"errors\":{%s}}\n",
      absl::GetFlag(FLAGS_label), in_flight, latencies_us.size(), seconds, throughput,
      percentile(50), percentile(90), percentile(99), percentile(99.9),
      errors.load() > 0 ? absl::StrFormat("\"other\":%d", errors.load()) : "");
  return 0;
}
