// load_client: drives unary gRPC calls at a target and reports latency percentiles and throughput.
//
//   load_client --mode=direct  --address=127.0.0.1:50051 --in-flight=1 --duration=10s
//   load_client --mode=proxy   --address=127.0.0.1:4770  --in-flight=64          # typed stub +
//   callmesh-target load_client --mode=invoke  --address=127.0.0.1:4770  --rate=1000             #
//   Sidecar.Invoke, paced
//
// Closed loop (--rate=0): --in-flight calls outstanding at all times. Open loop (--rate>0): calls
// start at Poisson arrivals of that mean rate regardless of completions, and latency is measured
// from the scheduled start (no coordinated omission). Each call is greeter.v1.Greeter/SayHello with
// a name of --payload-bytes bytes. Prints one human line and one JSON line (prefix "RESULT ").
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bench/common/percentile.h"
#include "callmesh/v1/sidecar.pb.h"
#include "runtime/common/byte_buffers.h"
#include "runtime/common/tls/client_credentials.h"
#include "services/greeter/greeter.pb.h"

ABSL_FLAG(std::string, source, "load-client",
          "invoke mode: the source claimed (empty = the identity of the credentials)");
ABSL_FLAG(std::string, mode, "direct", "direct | proxy | invoke");
ABSL_FLAG(std::string, address, "127.0.0.1:50051", "Greeter (direct) or sidecar address.");
ABSL_FLAG(std::string, service, "greeter", "Mesh name of the greeter (proxy, invoke).");
ABSL_FLAG(int, in_flight, 1, "Closed loop: calls outstanding at once.");
ABSL_FLAG(double, rate, 0, "Open loop: mean calls per second (Poisson); 0 = closed loop.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "Measured time.");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "Unmeasured time before.");
ABSL_FLAG(int, payload_bytes, 1024, "Size of HelloRequest.name.");
ABSL_FLAG(int, channels, 1, "gRPC channels to spread calls over.");
ABSL_FLAG(std::string, label, "", "Name of this run in the JSON line.");

namespace {

using Clock = std::chrono::steady_clock;

struct Recorder {
  std::mutex mu;
  std::vector<double> latencies_us;
  std::map<int, uint64_t> errors;
  bool measuring = false;
  void Record(double us, grpc::StatusCode code) {
    std::lock_guard<std::mutex> lock(mu);
    if (!measuring) return;
    if (code == grpc::StatusCode::OK) {
      latencies_us.push_back(us);
    } else {
      ++errors[code];
    }
  }
};

class Load {
 public:
  Load() {
    const std::string mode = absl::GetFlag(FLAGS_mode);
    ::greeter::v1::HelloRequest hello;
    hello.set_name(std::string(absl::GetFlag(FLAGS_payload_bytes), 'x'));
    if (mode == "invoke") {
      callmesh::v1::InvokeRequest invoke;
      invoke.set_service(absl::GetFlag(FLAGS_service));
      invoke.set_method("greeter.v1.Greeter/SayHello");
      invoke.set_payload(hello.SerializeAsString());
      invoke.set_source(absl::GetFlag(FLAGS_source));
      request_ = invoke.SerializeAsString();
      path_ = "/callmesh.v1.Sidecar/Invoke";
    } else if (mode == "direct" || mode == "proxy") {
      request_ = hello.SerializeAsString();
      path_ = "/greeter.v1.Greeter/SayHello";
      proxy_ = mode == "proxy";
    } else {
      std::cerr << "load_client: --mode must be direct, proxy or invoke\n";
      std::exit(2);
    }
    for (int i = 0; i < std::max(1, absl::GetFlag(FLAGS_channels)); ++i) {
      grpc::ChannelArguments args;
      args.SetInt("load_client_channel", i);  // distinct channels, not shared subchannels
      // Plaintext, or the token and TLS files of CALLMESH_TOKEN_FILE / CALLMESH_TLS_*.
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = callmesh::tls::CreateSidecarChannel(
          absl::GetFlag(FLAGS_address), callmesh::tls::ClientCredentialsFromEnvironment(), args);
      if (!channel.ok()) {
        std::cerr << "load_client: " << channel.status().message() << "\n";
        std::exit(2);
      }
      stubs_.push_back(std::make_unique<grpc::GenericStub>(*channel));
    }
  }

  // Starts one call; `done` runs with its status when it ends.
  void Call(Clock::time_point start, std::function<void()> done) {
    struct State {
      grpc::ClientContext context;
      grpc::ByteBuffer request, reply;
    };
    auto state = std::make_shared<State>();
    state->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (proxy_) state->context.AddMetadata("callmesh-target", absl::GetFlag(FLAGS_service));
    state->request = callmesh::StringToByteBuffer(request_);
    grpc::GenericStub* stub = stubs_[next_stub_++ % stubs_.size()].get();
    stub->UnaryCall(&state->context, path_, grpc::StubOptions(), &state->request, &state->reply,
                    [this, state, start, done = std::move(done)](grpc::Status status) {
                      const double us =
                          std::chrono::duration<double, std::micro>(Clock::now() - start).count();
                      recorder.Record(us, status.error_code());
                      done();
                    });
  }

  Recorder recorder;

 private:
  std::string request_;
  std::string path_;
  bool proxy_ = false;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs_;
  std::atomic<uint64_t> next_stub_{0};
};

using callmesh::bench::Percentile;

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  Load load;
  std::atomic<bool> running{true};
  std::atomic<int> outstanding{0};
  std::mutex mu;
  std::condition_variable drained;
  auto finished = [&] {
    if (outstanding.fetch_sub(1) == 1) drained.notify_all();
  };

  const double rate = absl::GetFlag(FLAGS_rate);
  std::thread pacer;
  // Each of the --in-flight slots starts its next call when the previous one ends. Declared here
  // because the calls' callbacks use it until the end.
  std::function<void()> loop;
  if (rate <= 0) {
    loop = [&] {
      load.Call(Clock::now(), [&] {
        if (running.load()) {
          loop();
        } else {
          finished();
        }
      });
    };
    for (int i = 0; i < absl::GetFlag(FLAGS_in_flight); ++i) {
      outstanding.fetch_add(1);
      loop();
    }
  } else {
    pacer = std::thread([&] {
      std::mt19937_64 random(42);
      std::exponential_distribution<double> gap(rate);
      Clock::time_point next = Clock::now();
      while (running.load()) {
        next +=
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(random)));
        std::this_thread::sleep_until(next);
        outstanding.fetch_add(1);
        load.Call(next, finished);
      }
    });
  }

  absl::SleepFor(absl::GetFlag(FLAGS_warmup));
  {
    std::lock_guard<std::mutex> lock(load.recorder.mu);
    load.recorder.measuring = true;
  }
  const auto begin = Clock::now();
  absl::SleepFor(absl::GetFlag(FLAGS_duration));
  {
    std::lock_guard<std::mutex> lock(load.recorder.mu);
    load.recorder.measuring = false;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  running.store(false);
  if (pacer.joinable()) pacer.join();
  {
    std::unique_lock<std::mutex> lock(mu);
    drained.wait_for(lock, std::chrono::seconds(35), [&] { return outstanding.load() <= 0; });
  }

  std::vector<double> sorted = load.recorder.latencies_us;
  std::sort(sorted.begin(), sorted.end());
  uint64_t errors = 0;
  std::string error_json;
  for (const auto& [code, count] : load.recorder.errors) {
    errors += count;
    absl::StrAppend(&error_json, error_json.empty() ? "" : ",", "\"", code, "\":", count);
  }
  const double throughput = sorted.size() / seconds;
  std::cout << absl::StrFormat(
      "%-8s in_flight=%d rate=%.0f: %.0f calls/s  p50=%.0fus p90=%.0fus p99=%.0fus p99.9=%.0fus  "
      "errors=%d\n",
      absl::GetFlag(FLAGS_mode), absl::GetFlag(FLAGS_in_flight), rate, throughput,
      Percentile(sorted, 50), Percentile(sorted, 90), Percentile(sorted, 99),
      Percentile(sorted, 99.9), errors);
  std::cout << absl::StrFormat(
      "RESULT {\"label\":\"%s\",\"mode\":\"%s\",\"in_flight\":%d,\"rate\":%.0f,\"calls\":%d,"
      "\"seconds\":%.3f,\"throughput\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
      "\"p999_us\":%.1f,\"errors\":{%s}}\n",
      absl::GetFlag(FLAGS_label), absl::GetFlag(FLAGS_mode), absl::GetFlag(FLAGS_in_flight), rate,
      sorted.size(), seconds, throughput, Percentile(sorted, 50), Percentile(sorted, 90),
      Percentile(sorted, 99), Percentile(sorted, 99.9), error_json);
  std::cout.flush();
  std::_Exit(0);  // outstanding calls (if any timed out) must not block exit
}
