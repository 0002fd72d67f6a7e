// callback_recorder: a callback service for cluster tests. It serves callmesh.v1.Callback under
// the mesh name --name, registered with the sidecar at --sidecar, and appends one line
// "<cid> <state>" (state as CallState's name, e.g. CALL_STATE_SUCCEEDED) to --out for every
// completion pushed to it, redeliveries included, flushed before OnCompletion answers OK; so a
// completion acknowledged to the sidecar is in the file. Writes its bound address to --ready_file
// once registered. SIGTERM/SIGINT deregister and exit 0.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "callmesh/v1/callback.grpc.pb.h"
#include "runtime/common/flags.h"
#include "runtime/sdk/service_host.h"

ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");
ABSL_FLAG(std::string, name, "recorder", "Mesh name of the callback service.");
ABSL_FLAG(std::string, out, "", "File the completions are appended to. Required.");
ABSL_FLAG(std::string, ready_file, "", "Once registered, write the bound address to this file.");

namespace {

class RecordingCallback final : public callmesh::v1::Callback::Service {
 public:
  explicit RecordingCallback(const std::string& path) : out_(path, std::ios::app) {}
  bool ok() const { return out_.good(); }

  grpc::Status OnCompletion(grpc::ServerContext*, const callmesh::v1::Completion* completion,
                            callmesh::v1::OnCompletionResponse*) override {
    absl::MutexLock lock(&mu_);
    out_ << completion->cid() << " " << callmesh::v1::CallState_Name(completion->state()) << "\n";
    out_.flush();
    if (!out_.good()) return grpc::Status(grpc::StatusCode::INTERNAL, "cannot write --out");
    return grpc::Status::OK;
  }

 private:
  absl::Mutex mu_;
  std::ofstream out_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "callback_recorder --out FILE [--sidecar ADDR] [--name NAME] [--ready_file FILE]");
  std::vector<std::string> storage;
  std::vector<char*> args = callmesh::DashedFlagsToUnderscores(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    std::cerr << "callback_recorder: --out is required\n";
    return 2;
  }

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  RecordingCallback recorder(out);
  if (!recorder.ok()) {
    std::cerr << "callback_recorder: cannot open --out " << out << "\n";
    return 2;
  }
  callmesh::ServiceHost host(
      {.name = absl::GetFlag(FLAGS_name), .sidecar = absl::GetFlag(FLAGS_sidecar)});
  host.AddService(&recorder);
  if (absl::Status started = host.Start(); !started.ok()) {
    std::cerr << "callback_recorder: " << started.message() << "\n";
    return 1;
  }
  if (const std::string ready = absl::GetFlag(FLAGS_ready_file); !ready.empty()) {
    std::ofstream(ready + ".tmp") << host.address() << "\n";
    std::rename((ready + ".tmp").c_str(), ready.c_str());
  }
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  host.Shutdown();
  return 0;
}
