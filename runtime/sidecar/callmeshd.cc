// callmeshd: the callmesh sidecar daemon. See README.md for its flags and configuration.
//
// Exit codes: 0 after a clean SIGTERM/SIGINT drain; 2 for bad configuration (unknown key, wrong
// type, invalid value, a listen address that cannot be bound, an unusable data directory).
#include <signal.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/common/flags.h"
#include "runtime/common/proto_time.h"
#include "runtime/common/version.h"
#include "runtime/sidecar/config/config_loader.h"
#include "runtime/sidecar/logging/structured_log.h"
#include "runtime/sidecar/security/security_config_check.h"
#include "runtime/sidecar/sidecar.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, config, "", "YAML or JSON configuration file (SidecarConfig).");
ABSL_FLAG(std::string, listen, "",
          "Address of the Sidecar API, host:port; overrides the config (default 127.0.0.1:4770).");
ABSL_FLAG(std::string, data_dir, "",
          "Folder of the call journal; overrides the config (default ./callmesh-data).");
ABSL_FLAG(std::string, name, "",
          "Mesh name of the local app, the default source of its calls; overrides the config.");
ABSL_FLAG(std::string, log_level, "", "trace, debug, info, warn or error; overrides the config.");
ABSL_FLAG(std::string, ready_file, "",
          "Once serving, write the bound address (host:port) to this file. For scripts and "
          "tests that start callmeshd on port 0.");

namespace callmesh {
namespace {

constexpr int kExitBadConfig = 2;

int Fail(const std::string& message) {
  std::cerr << "callmeshd: " << message << "\n";
  return kExitBadConfig;
}

absl::StatusOr<v1::SidecarConfig> LoadConfig() {
  std::vector<sidecar::ConfigOverride> overrides;
  for (const auto& [key, value, flag] :
       {std::tuple{"listen", absl::GetFlag(FLAGS_listen), "--listen"},
        std::tuple{"data_dir", absl::GetFlag(FLAGS_data_dir), "--data-dir"},
        std::tuple{"name", absl::GetFlag(FLAGS_name), "--name"},
        std::tuple{"log_level", absl::GetFlag(FLAGS_log_level), "--log-level"}}) {
    if (!value.empty()) overrides.push_back({key, value, flag});
  }
  return sidecar::LoadAndValidateConfig(absl::GetFlag(FLAGS_config), overrides);
}

int Run() {
  // Signals are taken by sigwait below; block them before gRPC starts any thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<v1::SidecarConfig> loaded = LoadConfig();
  if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
  const v1::SidecarConfig& config = *loaded;
  spdlog::set_level(spdlog::level::from_str(config.log_level()));
  logging::UseLogFormat(
      logging::ParseLogFormat(config.log_format()).value_or(logging::LogFormat::kText));
  absl::StatusOr<std::unique_ptr<Sidecar>> started = Sidecar::Start(config, SidecarEnv{});
  if (!started.ok()) return Fail(std::string(started.status().message()));
  Sidecar& sidecar = **started;
  const std::string& bound = sidecar.address();
  spdlog::info("callmeshd {} listening on {} (data_dir {}, {} static services)", config.name(),
               bound, config.data_dir(), config.services_size());
  // Once per start: a set-up without authentication is allowed on loopback only (or when the
  // config says it is for development), and says so.
  if (config.security().insecure_development()) {
    spdlog::warn(
        "callmeshd: security.insecure_development is set: {} {}; never use this set-up in "
        "production",
        sidecar::security::Authenticates(config.security()) ? "authentication on, listening"
                                                            : "no authentication, listening",
        config.security().has_tls() ? "with TLS" : "in plaintext");
  } else if (!sidecar::security::Authenticates(config.security())) {
    spdlog::info(
        "callmeshd: running without authentication (no security block): any local process may "
        "use the Sidecar API on {}; see README \"Security\" to turn it on",
        bound);
  }
  if (const std::string admin = sidecar.admin_address(); !admin.empty()) {
    spdlog::info("callmeshd admin listener on {} (/metrics, /healthz, /readyz)", admin);
  }
  if (const std::string ready = absl::GetFlag(FLAGS_ready_file); !ready.empty()) {
    const std::string tmp = ready + ".tmp";
    std::ofstream(tmp) << bound << "\n";
    std::rename(tmp.c_str(), ready.c_str());
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  const absl::Duration grace = FromProtoDuration(config.drain_timeout());
  spdlog::info("callmeshd: {} received; NOT_SERVING, draining in-flight calls for up to {}",
               strsignal(signal_number), absl::FormatDuration(grace));
  sidecar.Shutdown(grace);
  spdlog::info("callmeshd: stopped (served {} calls OK, {} failed)", sidecar.sync_calls_ok(),
               sidecar.sync_calls_failed());
  return 0;
}

}  // namespace
}  // namespace callmesh

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "callmesh sidecar daemon.\n\n"
      "  callmeshd [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--name NAME]\n\n"
      "Serves the callmesh.v1.Sidecar API (Invoke, RegisterService, ...) and proxies any other\n"
      "gRPC method carrying the metadata 'callmesh-target: <service>'. SIGTERM drains and exits "
      "0;\n"
      "bad configuration exits 2. Flags may be written --data-dir or --data_dir.");
  absl::FlagsUsageConfig usage_config;
  usage_config.version_string = [] { return callmesh::VersionLine("callmeshd") + "\n"; };
  absl::SetFlagsUsageConfig(usage_config);
  std::vector<std::string> storage;
  std::vector<char*> args = callmesh::DashedFlagsToUnderscores(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  // Debian's Abseil is built with the mutex deadlock detector on: a debugging aid that keeps a
  // global lock graph updated on every Lock. Under `perf` at one sync call in flight its
  // GraphCycles::GetId alone took ~2% of callmeshd's samples, and CPU samples per call fell by
  // about a third without it (one run on a busy machine). Unit tests still run with it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // The journal and every file callmeshd writes are its owner's alone (README "Security").
  umask(077);
  return callmesh::Run();
}
