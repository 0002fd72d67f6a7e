// async_load: drives callmesh's durable InvokeAsync through the sidecar's RPC and reports latency
// percentiles and throughput, in one of two closed-loop modes (--in-flight calls outstanding):
//
//   async_load --mode=accept --sidecar=127.0.0.1:4770 --in-flight=64 --duration=10s
//       A slot's next InvokeAsync starts when the previous one returned its CID (the record is
//       synced to the journal before that). Measures accepts/s and accept latency.
//   async_load --mode=accept --service=blackhole --count=100000 --timeout=24h
//       Stops after --count accepts instead of after --duration (the growth scenario: calls to a
//       service nothing answers stay pending).
//   async_load --mode=e2e --sidecar=127.0.0.1:4770 --in-flight=64 --duration=10s
//       Hosts a callmesh.v1.Callback service (registered with the sidecar as --callback-name) and
//       names it as the callback of every call. A slot's next call starts when the completion of
//       the previous one has been delivered to it. Latency runs from the start of the InvokeAsync
//       call to the receipt of its completion (accept -> target -> persisted -> callback).
//
// With --stream, every call goes on one Sidecar.InvokeAsyncStream (answers matched by tag)
// instead of one unary InvokeAsync each; the slots and what is measured stay the same.
//
// Each call is greeter.v1.Greeter/SayHello with a name of --payload-bytes bytes. Only calls that
// end inside the measured window (after --warmup, for --duration) count. Prints one human line and
// one JSON line (prefix "RESULT "), like bench/load/load_client.
#include <grpcpp/create_channel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bench/common/percentile.h"
#include "callmesh/v1/callback.grpc.pb.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "runtime/common/flags.h"
#include "runtime/common/grpc_status.h"
#include "runtime/common/proto_time.h"
#include "runtime/common/tls/client_credentials.h"
#include "runtime/sdk/invoke_async_stream_client.h"
#include "runtime/sdk/service_host.h"
#include "services/greeter/greeter.pb.h"

ABSL_FLAG(std::string, mode, "accept", "accept | e2e");
ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of callmeshd.");
ABSL_FLAG(std::string, service, "greeter", "Target mesh service.");
ABSL_FLAG(std::string, method, "greeter.v1.Greeter/SayHello", "Target method.");
ABSL_FLAG(std::string, source, "bench", "Source (mesh name of the caller).");
ABSL_FLAG(std::string, callback_name, "bench-callback",
          "e2e: mesh name of the callback service hosted here.");
ABSL_FLAG(int, in_flight, 64, "Calls outstanding at once.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "Measured time (when --count is 0).");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "Unmeasured time before (when --count is 0).");
ABSL_FLAG(int64_t, count, 0, "accept: stop after this many accepts and measure all of them.");
ABSL_FLAG(absl::Duration, count_time_limit, absl::ZeroDuration(),
          "accept with --count: also stop after this long (zero = no limit); the JSON line's "
          "accepted_total says how far it got.");
ABSL_FLAG(absl::Duration, timeout, absl::ZeroDuration(),
          "InvokeAsyncRequest.timeout; zero = the sidecar's default.");
ABSL_FLAG(int, payload_bytes, 1024, "Size of HelloRequest.name.");
ABSL_FLAG(std::string, label, "", "Name of this run in the JSON line.");
ABSL_FLAG(bool, stream, false,
          "Make the calls on one Sidecar.InvokeAsyncStream instead of unary InvokeAsync RPCs.");

namespace {

using Clock = std::chrono::steady_clock;

double MicrosSince(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double, std::micro>(end - start).count();
}

struct Recorder {
  std::mutex mu;
  std::vector<double> latencies_us;         // end to end (e2e) or accept (accept)
  std::vector<double> accept_latencies_us;  // e2e only
  std::map<int, uint64_t> errors;
  bool measuring = false;
  void Record(std::vector<double>* into, double us) {
    std::lock_guard<std::mutex> lock(mu);
    if (measuring) into->push_back(us);
  }
  void Error(int code) {
    std::lock_guard<std::mutex> lock(mu);
    if (measuring) ++errors[code];
  }
};

using callmesh::bench::Percentile;

// Matches completions to the calls waiting for them. A completion may arrive before the
// InvokeAsync reply that carries its CID, so either side may come first.
class Waiters {
 public:
  // Called when InvokeAsync returned `cid` for a call started at `start`. Runs `done(start,
  // received)` now if the completion came first, else when it comes.
  void Accepted(const std::string& cid, Clock::time_point start,
                std::function<void(Clock::time_point)> done) {
    Clock::time_point received;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto early = early_.find(cid);
      if (early == early_.end()) {
        waiting_.emplace(cid, std::move(done));
        return;
      }
      received = early->second;
      early_.erase(early);
    }
    done(received);
  }
  // Called by the callback service. Redeliveries of a CID already matched are ignored.
  void Completed(const std::string& cid, Clock::time_point received) {
    std::function<void(Clock::time_point)> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!seen_.insert(cid).second) return;
      auto waiting = waiting_.find(cid);
      if (waiting == waiting_.end()) {
        early_.emplace(cid, received);
        return;
      }
      done = std::move(waiting->second);
      waiting_.erase(waiting);
    }
    done(received);
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::function<void(Clock::time_point)>> waiting_;
  std::unordered_map<std::string, Clock::time_point> early_;
  std::unordered_set<std::string> seen_;
};

// Takes the completions of --method's service through the SDK's CallbackRouter (as every
// ServiceHost user does), so the sidecar delivers them on the OnCompletions stream.
class BenchCallback final : public callmesh::CallbackHandler {
 public:
  BenchCallback(Waiters* waiters, std::string grpc_service)
      : waiters_(waiters), grpc_service_(std::move(grpc_service)) {}
  const char* callmesh_grpc_service() const override { return grpc_service_.c_str(); }
  absl::Status HandleCompletion(const callmesh::v1::Completion& completion) override {
    const Clock::time_point now = Clock::now();
    if (completion.state() != callmesh::v1::CALL_STATE_SUCCEEDED) {
      failed_.fetch_add(1);
    }
    waiters_->Completed(completion.cid(), now);
    return absl::OkStatus();
  }
  uint64_t failed() const { return failed_.load(); }

 private:
  Waiters* const waiters_;
  const std::string grpc_service_;
  std::atomic<uint64_t> failed_{0};
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("async_load --mode=accept|e2e [--sidecar ADDR] [--in-flight N]");
  std::vector<std::string> storage;
  std::vector<char*> args = callmesh::DashedFlagsToUnderscores(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const bool e2e = mode == "e2e";
  if (!e2e && mode != "accept") {
    std::cerr << "async_load: --mode must be accept or e2e, got \"" << mode << "\"\n";
    return 2;
  }
  const int64_t count = absl::GetFlag(FLAGS_count);
  if (e2e && count > 0) {
    std::cerr << "async_load: --count is for --mode=accept only\n";
    return 2;
  }
  if (absl::GetFlag(FLAGS_in_flight) < 1) {
    std::cerr << "async_load: --in-flight must be >= 1\n";
    return 2;
  }

  Recorder recorder;
  Waiters waiters;
  const std::string method = absl::GetFlag(FLAGS_method);
  BenchCallback callback(&waiters, method.substr(0, method.find('/')));
  std::unique_ptr<callmesh::ServiceHost> host;
  if (e2e) {
    host = std::make_unique<callmesh::ServiceHost>(callmesh::ServiceHostOptions{
        .name = absl::GetFlag(FLAGS_callback_name), .sidecar = absl::GetFlag(FLAGS_sidecar)});
    host->AddCallbacks(&callback);
    if (absl::Status s = host->Start(); !s.ok()) {
      std::cerr << "async_load: callback service: " << s.message() << "\n";
      return 1;
    }
  }

  callmesh::v1::InvokeAsyncRequest request;
  {
    greeter::v1::HelloRequest hello;
    hello.set_name(std::string(absl::GetFlag(FLAGS_payload_bytes), 'x'));
    request.set_service(absl::GetFlag(FLAGS_service));
    request.set_method(absl::GetFlag(FLAGS_method));
    request.set_payload(hello.SerializeAsString());
    request.set_source(absl::GetFlag(FLAGS_source));
    if (e2e) request.set_callback(absl::GetFlag(FLAGS_callback_name));
    const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
    if (timeout > absl::ZeroDuration())
      *request.mutable_timeout() = callmesh::ToProtoDuration(timeout);
  }
  // Plaintext, or the token and TLS files of CALLMESH_TOKEN_FILE / CALLMESH_TLS_*.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = callmesh::tls::CreateSidecarChannel(
      absl::GetFlag(FLAGS_sidecar), callmesh::tls::ClientCredentialsFromEnvironment());
  if (!channel.ok()) {
    std::cerr << "async_load: " << channel.status().message() << "\n";
    return 2;
  }
  auto stub = callmesh::v1::Sidecar::NewStub(*channel);
  // --stream: every slot's calls on one InvokeAsyncStream (the SDK's client of it).
  std::unique_ptr<callmesh::InvokeAsyncStreamClient> stream;
  if (absl::GetFlag(FLAGS_stream)) {
    stream = std::make_unique<callmesh::InvokeAsyncStreamClient>(stub.get());
  }

  std::atomic<bool> running{true};
  std::atomic<int64_t> issued{0};
  std::atomic<int64_t> accepted{0};
  std::atomic<int> outstanding{0};
  std::mutex mu;
  std::condition_variable drained;
  auto slot_finished = [&] {
    if (outstanding.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(mu);
      drained.notify_all();
    }
  };

  // One slot: start a call; when it is over (accepted, or its completion delivered), start the
  // next one unless the run is over.
  std::function<void()> next;
  next = [&] {
    if (!running.load() || (count > 0 && issued.fetch_add(1) >= count)) {
      slot_finished();
      return;
    }
    const Clock::time_point start = Clock::now();
    // The call's answer: accepted with `cid`, or refused.
    auto answered = [&, start](const grpc::Status& status, const std::string& cid) {
      const Clock::time_point now = Clock::now();
      if (!status.ok()) {
        recorder.Error(status.error_code());
        // Back off a little so a refusing sidecar is not spun on.
        if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        next();
        return;
      }
      accepted.fetch_add(1);
      const double accept_us = MicrosSince(start, now);
      if (!e2e) {
        recorder.Record(&recorder.latencies_us, accept_us);
        next();
        return;
      }
      recorder.Record(&recorder.accept_latencies_us, accept_us);
      waiters.Accepted(cid, start, [&, start](Clock::time_point received) {
        recorder.Record(&recorder.latencies_us, MicrosSince(start, received));
        next();
      });
    };
    if (stream != nullptr) {
      callmesh::v1::InvokeAsyncStreamCall call;
      *call.mutable_request() = request;
      stream->Start(std::move(call),
                    [answered](absl::StatusOr<callmesh::v1::InvokeAsyncResponse> response) {
                      answered(callmesh::ToGrpcStatus(response.status()),
                               response.ok() ? response->cid() : std::string());
                    });
      return;
    }
    struct State {
      grpc::ClientContext context;
      callmesh::v1::InvokeAsyncResponse response;
    };
    auto state = std::make_shared<State>();
    state->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stub->async()->InvokeAsync(
        &state->context, &request, &state->response,
        [state, answered](grpc::Status status) { answered(status, state->response.cid()); });
  };

  const int in_flight = absl::GetFlag(FLAGS_in_flight);
  Clock::time_point begin;
  if (count > 0) {
    {
      std::lock_guard<std::mutex> lock(recorder.mu);
      recorder.measuring = true;
    }
    begin = Clock::now();
    outstanding.store(in_flight);
    for (int i = 0; i < in_flight; ++i) next();
    const absl::Duration limit = absl::GetFlag(FLAGS_count_time_limit);
    std::unique_lock<std::mutex> lock(mu);
    if (limit > absl::ZeroDuration()) {
      if (!drained.wait_for(lock, absl::ToChronoSeconds(limit),
                            [&] { return outstanding.load() <= 0; })) {
        running.store(false);  // the slots stop after their current call
        drained.wait(lock, [&] { return outstanding.load() <= 0; });
      }
    } else {
      drained.wait(lock, [&] { return outstanding.load() <= 0; });
    }
  } else {
    outstanding.store(in_flight);
    for (int i = 0; i < in_flight; ++i) next();
    absl::SleepFor(absl::GetFlag(FLAGS_warmup));
    {
      std::lock_guard<std::mutex> lock(recorder.mu);
      recorder.measuring = true;
    }
    begin = Clock::now();
    absl::SleepFor(absl::GetFlag(FLAGS_duration));
  }
  double seconds;
  {
    std::lock_guard<std::mutex> lock(recorder.mu);
    recorder.measuring = false;
    seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  }
  running.store(false);
  if (count == 0) {
    std::unique_lock<std::mutex> lock(mu);
    drained.wait_for(lock, std::chrono::seconds(30), [&] { return outstanding.load() <= 0; });
  }

  std::vector<double> sorted, accept_sorted;
  std::map<int, uint64_t> error_counts;
  {
    std::lock_guard<std::mutex> lock(recorder.mu);
    sorted = recorder.latencies_us;
    accept_sorted = recorder.accept_latencies_us;
    error_counts = recorder.errors;
  }
  std::sort(sorted.begin(), sorted.end());
  std::sort(accept_sorted.begin(), accept_sorted.end());
  uint64_t errors = 0;
  std::string error_json;
  for (const auto& [code, n] : error_counts) {
    errors += n;
    absl::StrAppend(&error_json, error_json.empty() ? "" : ",", "\"", code, "\":", n);
  }
  const double throughput = sorted.size() / seconds;
  std::cout << absl::StrFormat(
      "%-6s in_flight=%d: %.0f %s/s  p50=%.0fus p90=%.0fus p99=%.0fus p99.9=%.0fus  errors=%d "
      "failed_completions=%d\n",
      mode, in_flight, throughput, e2e ? "completions" : "accepts", Percentile(sorted, 50),
      Percentile(sorted, 90), Percentile(sorted, 99), Percentile(sorted, 99.9), errors,
      callback.failed());
  std::cout << absl::StrFormat(
      "RESULT {\"label\":\"%s\",\"mode\":\"%s\",\"in_flight\":%d,\"calls\":%d,\"seconds\":%.3f,"
      "\"throughput\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
      "\"accept_p50_us\":%.1f,\"accept_p99_us\":%.1f,\"accepted_total\":%d,"
      "\"failed_completions\":%d,\"errors\":{%s}}\n",
      absl::GetFlag(FLAGS_label), mode, in_flight, sorted.size(), seconds, throughput,
      Percentile(sorted, 50), Percentile(sorted, 90), Percentile(sorted, 99),
      Percentile(sorted, 99.9), Percentile(accept_sorted, 50), Percentile(accept_sorted, 99),
      accepted.load(), callback.failed(), error_json);
  std::cout.flush();
  std::_Exit(0);  // calls still outstanding (if any) must not block exit
}
