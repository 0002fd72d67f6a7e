#include "runtime/sidecar/testing/in_process_sidecar.h"

#include <grpcpp/create_channel.h>
#include <stdlib.h>

#include "absl/strings/str_cat.h"
#include "runtime/sidecar/config/config_loader.h"

namespace callmesh::testing {
namespace {

absl::StatusOr<std::string> NewDataDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/sidecar.XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create a temporary directory ", pattern));
  }
  return pattern + "/data";
}

}  // namespace

absl::StatusOr<std::unique_ptr<InProcessSidecar>> InProcessSidecar::Start(
    InProcessSidecarOptions options) {
  if (options.data_dir.empty()) {
    absl::StatusOr<std::string> dir = NewDataDir();
    if (!dir.ok()) return dir.status();
    options.data_dir = *dir;
  }
  absl::StatusOr<v1::SidecarConfig> config =
      sidecar::ParseConfig(options.config_yaml, "in-process sidecar config");
  if (!config.ok()) return config.status();
  config->set_listen(options.listen);
  config->set_data_dir(options.data_dir);
  sidecar::ApplyConfigDefaults(&*config);
  if (absl::Status valid = sidecar::ValidateConfig(*config); !valid.ok()) return valid;

  std::unique_ptr<InProcessSidecar> fixture(new InProcessSidecar(std::move(options)));
  fixture->config_ = *std::move(config);
  if (absl::Status started = fixture->StartSidecar(); !started.ok()) return started;
  // Restarts bind the same port, so clients find the sidecar again.
  fixture->config_.set_listen(fixture->address_);
  return fixture;
}

absl::Status InProcessSidecar::StartSidecar() {
  absl::StatusOr<std::unique_ptr<Sidecar>> started = Sidecar::Start(config_, options_.env);
  if (!started.ok()) return started.status();
  sidecar_ = *std::move(started);
  address_ = sidecar_->address();
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> InProcessSidecar::Channel() const {
  return grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
}

void InProcessSidecar::Stop(absl::Duration grace) {
  if (sidecar_ == nullptr) return;
  sidecar_->Shutdown(grace);
  sidecar_.reset();
}

absl::Status InProcessSidecar::Restart() {
  Stop();
  return StartSidecar();
}

}  // namespace callmesh::testing
