// A real callmeshd for integration tests: written config, fresh (or given) data directory, port 0,
// started from the test's runfiles and ready when Start returns.
//
//   auto sidecar = SidecarProcess::Start({.config_yaml = "max_payload_bytes: 1024\n"});
//   ASSERT_TRUE(sidecar.ok()) << sidecar.status();
//   auto stub = callmesh::v1::Sidecar::NewStub(sidecar->Channel());
#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/sdk/service_host.h"
#include "tests/support/process.h"
#include "tests/support/wait_until.h"

namespace callmesh::testing {

struct SidecarOptions {
  // Contents of the config file (YAML); `listen` and `data_dir` are given as flags.
  std::string config_yaml;
  // Journal folder; empty = a fresh temp dir. Reuse one to restart "the same" sidecar.
  std::string data_dir;
  // Address to listen on; restarts keep the port so registered clients find it again.
  std::string listen = "127.0.0.1:0";
  std::vector<std::string> extra_args;
};

class SidecarProcess {
 public:
  // Starts callmeshd (//runtime/sidecar:callmeshd must be a data dependency of the test) and waits
  // up to 30 s for it to serve.
  static absl::StatusOr<SidecarProcess> Start(SidecarOptions options);

  const std::string& address() const { return address_; }
  const std::string& data_dir() const { return options_.data_dir; }
  Process& process() { return process_; }
  std::shared_ptr<grpc::Channel> Channel() const;

  // SIGTERM and wait for the exit code.
  absl::StatusOr<int> Stop();
  // SIGKILL and reap, like a crash.
  void Kill();
  // Starts again on the same address and data directory.
  absl::Status Restart();

 private:
  SidecarProcess(SidecarOptions options, Process process)
      : options_(std::move(options)), process_(std::move(process)) {}
  SidecarOptions options_;
  Process process_;
  std::string address_;
};

// Serves `service` under the mesh name `name`, registered with the sidecar at `sidecar`; nullptr
// (after a test failure naming the cause) if it cannot start.
std::unique_ptr<ServiceHost> HostService(const std::string& name, const std::string& sidecar,
                                         grpc::Service* service);

}  // namespace callmesh::testing
