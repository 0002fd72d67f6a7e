// A callmesh::Sidecar inside the test process: config from YAML, a fresh data directory under
// $TEST_TMPDIR, port 0, and whatever SidecarEnv the test gives (a FakeClock, a fault-injecting
// storage environment, a fixed jitter seed). What SidecarProcess does with a real callmeshd,
// minus the process: for tests of the SDK, the server and the call lifecycle. kill -9 stays with
// the process tests (tests/chaos).
//
//   auto sidecar = InProcessSidecar::Start({.config_yaml = "max_payload_bytes: 1024\n"});
//   ASSERT_TRUE(sidecar.ok()) << sidecar.status();
//   auto stub = callmesh::v1::Sidecar::NewStub((*sidecar)->Channel());
#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/sidecar/sidecar.h"

namespace callmesh::testing {

struct InProcessSidecarOptions {
  // SidecarConfig as YAML; `listen` and `data_dir` below override it, defaults are applied and the
  // result validated as callmeshd does.
  std::string config_yaml;
  // Journal folder; empty = a fresh one under $TEST_TMPDIR.
  std::string data_dir;
  std::string listen = "127.0.0.1:0";
  SidecarEnv env;
};

class InProcessSidecar {
 public:
  // Errors: the config's (naming the key), or Sidecar::Start's.
  static absl::StatusOr<std::unique_ptr<InProcessSidecar>> Start(InProcessSidecarOptions options);

  const std::string& address() const { return address_; }
  const std::string& data_dir() const { return options_.data_dir; }
  std::shared_ptr<grpc::Channel> Channel() const;
  // The running sidecar; only between a successful Start/Restart and Stop.
  Sidecar& sidecar() { return *sidecar_; }

  // Sidecar::Shutdown(grace) and destroys it. Idempotent.
  void Stop(absl::Duration grace = absl::ZeroDuration());
  // Stops, then starts again on the same address, data directory and environment: pending calls
  // resume from the journal.
  absl::Status Restart();

 private:
  explicit InProcessSidecar(InProcessSidecarOptions options) : options_(std::move(options)) {}
  absl::Status StartSidecar();

  InProcessSidecarOptions options_;
  v1::SidecarConfig config_;
  std::unique_ptr<Sidecar> sidecar_;
  std::string address_;
};

}  // namespace callmesh::testing
