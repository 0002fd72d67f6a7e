// call_driver: the client side of the cluster fault tests, run inside a host's namespace against
// that host's sidecar (--sidecar). Three modes:
//
//   --mode=async --acks FILE --callback NAME   Until SIGTERM, every --interval_ms an InvokeAsync of
//       greeter SayHello (source --source, callback NAME); the CID of each call the sidecar
//       acknowledged is appended to FILE (one per line, flushed at once). At exit it prints
//       "acknowledged N, refused M code-<c> x<n>..." (refused: the RPC failed or timed out; such a
//       call may or may not exist, so it is not part of the history).
//   --mode=sync --log FILE   Until SIGTERM, every --interval_ms a sync Invoke of greeter SayHello
//       (2 s timeout); appends "<unix ms at the answer> OK" or "<unix ms> code-<gRPC code>".
//   --mode=check --acks FILE   Prints "<cid> <state name>" for every CID in FILE as GetCall
//       answers it ("<cid> ERROR code-<gRPC code>" if GetCall fails); exit 0.
//
// Exit code 2 for bad flags.
#include <grpcpp/create_channel.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "runtime/common/flags.h"
#include "services/greeter/greeter.pb.h"

ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");
ABSL_FLAG(std::string, mode, "", "async, sync or check.");
ABSL_FLAG(std::string, acks, "", "async/check: file of acknowledged CIDs.");
ABSL_FLAG(std::string, log, "", "sync: file of outcomes.");
ABSL_FLAG(std::string, source, "driver", "Mesh name the calls are made as.");
ABSL_FLAG(std::string, callback, "", "async: callback service of the calls.");
ABSL_FLAG(int, interval_ms, 100, "async/sync: pause between calls.");

namespace {

constexpr char kService[] = "greeter";
constexpr char kMethod[] = "greeter.v1.Greeter/SayHello";

std::atomic<bool> stopping{false};

// Blocks SIGTERM and SIGINT in every thread and sets `stopping` when one arrives.
std::thread WatchStopSignals() {
  static sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return std::thread([] {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    stopping.store(true);
  });
}

std::string Hello(int i) {
  greeter::v1::HelloRequest request;
  request.set_name(absl::StrCat("call-", i));
  return request.SerializeAsString();
}

void Pause() {
  std::this_thread::sleep_for(std::chrono::milliseconds(absl::GetFlag(FLAGS_interval_ms)));
}

int RunAsync(callmesh::v1::Sidecar::Stub& stub, const std::string& acks_path) {
  std::ofstream acks(acks_path, std::ios::app);
  int acknowledged = 0, refused = 0;
  std::map<int, int> refused_by_code;
  for (int i = 0; !stopping.load(); ++i) {
    callmesh::v1::InvokeAsyncRequest request;
    request.set_service(kService);
    request.set_method(kMethod);
    request.set_payload(Hello(i));
    request.set_source(absl::GetFlag(FLAGS_source));
    request.set_callback(absl::GetFlag(FLAGS_callback));
    callmesh::v1::InvokeAsyncResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    const grpc::Status status = stub.InvokeAsync(&context, request, &response);
    if (status.ok()) {
      acks << response.cid() << "\n" << std::flush;
      ++acknowledged;
    } else {
      ++refused;
      ++refused_by_code[status.error_code()];
    }
    Pause();
  }
  std::cout << "acknowledged " << acknowledged << ", refused " << refused;
  for (const auto& [code, count] : refused_by_code) std::cout << " code-" << code << " x" << count;
  std::cout << "\n";
  return 0;
}

int RunSync(callmesh::v1::Sidecar::Stub& stub, const std::string& log_path) {
  std::ofstream log(log_path, std::ios::app);
  for (int i = 0; !stopping.load(); ++i) {
    callmesh::v1::InvokeRequest request;
    request.set_service(kService);
    request.set_method(kMethod);
    request.set_payload(Hello(i));
    request.set_source(absl::GetFlag(FLAGS_source));
    request.mutable_timeout()->set_seconds(2);
    callmesh::v1::InvokeResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    const grpc::Status status = stub.Invoke(&context, request, &response);
    log << absl::ToUnixMillis(absl::Now()) << " "
        << (status.ok() ? std::string("OK") : absl::StrCat("code-", status.error_code())) << "\n"
        << std::flush;
    Pause();
  }
  return 0;
}

int RunCheck(callmesh::v1::Sidecar::Stub& stub, const std::string& acks_path) {
  std::ifstream acks(acks_path);
  std::string cid;
  while (std::getline(acks, cid)) {
    if (cid.empty()) continue;
    callmesh::v1::GetCallRequest request;
    request.set_cid(cid);
    callmesh::v1::Call call;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    const grpc::Status status = stub.GetCall(&context, request, &call);
    if (status.ok()) {
      std::cout << cid << " " << callmesh::v1::CallState_Name(call.state()) << "\n";
    } else {
      std::cout << cid << " ERROR code-" << status.error_code() << "\n";
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "call_driver --mode=async|sync|check [--sidecar ADDR] [--acks FILE] [--log FILE] ...");
  std::vector<std::string> storage;
  std::vector<char*> args = callmesh::DashedFlagsToUnderscores(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const std::string acks = absl::GetFlag(FLAGS_acks);
  const std::string log = absl::GetFlag(FLAGS_log);
  if ((mode == "async" || mode == "check") && acks.empty()) {
    std::cerr << "call_driver: --mode=" << mode << " needs --acks\n";
    return 2;
  }
  if (mode == "sync" && log.empty()) {
    std::cerr << "call_driver: --mode=sync needs --log\n";
    return 2;
  }
  if (mode != "async" && mode != "sync" && mode != "check") {
    std::cerr << "call_driver: --mode must be async, sync or check, not \"" << mode << "\"\n";
    return 2;
  }
  std::thread signals = WatchStopSignals();
  signals.detach();
  auto stub = callmesh::v1::Sidecar::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_sidecar), grpc::InsecureChannelCredentials()));
  if (mode == "async") return RunAsync(*stub, acks);
  if (mode == "sync") return RunSync(*stub, log);
  return RunCheck(*stub, acks);
}
