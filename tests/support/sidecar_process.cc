#include "tests/support/sidecar_process.h"

#include <grpcpp/create_channel.h>
#include <signal.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace callmesh::testing {
namespace {

absl::StatusOr<Process> Launch(const SidecarOptions& options, const std::string& ready_file) {
  const std::string config_path = absl::StrCat(options.data_dir, ".yaml");
  std::ofstream(config_path) << options.config_yaml;
  std::remove(ready_file.c_str());
  std::vector<std::string> args = {"--config=" + config_path, "--listen=" + options.listen,
                                   "--data-dir=" + options.data_dir, "--ready-file=" + ready_file};
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  return Process::Start(RunfilePath("runtime/sidecar/callmeshd"), args, "callmeshd");
}

}  // namespace

absl::StatusOr<SidecarProcess> SidecarProcess::Start(SidecarOptions options) {
  if (options.data_dir.empty()) options.data_dir = NewTempDir("sidecar") + "/data";
  const std::string ready_file = options.data_dir + ".ready";
  absl::StatusOr<Process> process = Launch(options, ready_file);
  if (!process.ok()) return process.status();
  SidecarProcess sidecar(std::move(options), *std::move(process));
  absl::StatusOr<std::string> address = sidecar.process_.WaitReady(ready_file, absl::Seconds(30));
  if (!address.ok()) return address.status();
  sidecar.address_ = *address;
  // Later restarts bind the same port.
  sidecar.options_.listen = sidecar.address_;
  return sidecar;
}

std::shared_ptr<grpc::Channel> SidecarProcess::Channel() const {
  return grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
}

absl::StatusOr<int> SidecarProcess::Stop() {
  process_.Signal(SIGTERM);
  return process_.Wait(absl::Seconds(60));
}

void SidecarProcess::Kill() {
  process_.Signal(SIGKILL);
  (void)process_.Wait(absl::Seconds(30));
}

absl::Status SidecarProcess::Restart() {
  const std::string ready_file = options_.data_dir + ".ready";
  absl::StatusOr<Process> process = Launch(options_, ready_file);
  if (!process.ok()) return process.status();
  process_ = *std::move(process);
  absl::StatusOr<std::string> address = process_.WaitReady(ready_file, absl::Seconds(60));
  return address.ok() ? absl::OkStatus() : address.status();
}

std::unique_ptr<ServiceHost> HostService(const std::string& name, const std::string& sidecar,
                                         grpc::Service* service) {
  auto host = std::make_unique<ServiceHost>(ServiceHostOptions{.name = name, .sidecar = sidecar});
  host->AddService(service);
  if (absl::Status started = host->Start(); !started.ok()) {
    ADD_FAILURE() << "cannot host " << name << ": " << started;
    return nullptr;
  }
  return host;
}

}  // namespace callmesh::testing
