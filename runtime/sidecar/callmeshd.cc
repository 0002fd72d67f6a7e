// callmeshd: the callmesh sidecar daemon. See README.md for its flags and configuration.
//
// Exit codes: 0 after a clean SIGTERM/SIGINT drain; 2 for bad configuration (unknown key, wrong
// type, invalid value, a listen address that cannot be bound, an unusable data directory).
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/common/cid.h"
#include "runtime/common/flags.h"
#include "runtime/common/version.h"
#include "runtime/sidecar/config/config_loader.h"
#include "runtime/sidecar/delivery/callback_deliverer.h"
#include "runtime/sidecar/delivery/completion_hub.h"
#include "runtime/sidecar/dispatch/dispatcher.h"
#include "runtime/sidecar/dispatch/retry_policy.h"
#include "runtime/sidecar/dispatch/task_runner.h"
#include "runtime/sidecar/invoke/invoker.h"
#include "runtime/sidecar/journal/journal.h"
#include "runtime/sidecar/registry/registry.h"
#include "runtime/sidecar/server/proxy_service.h"
#include "runtime/sidecar/server/sidecar_service.h"
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

namespace callmesh::sidecar {
namespace {

constexpr int kExitBadConfig = 2;

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

int Fail(const std::string& message) {
  std::cerr << "callmeshd: " << message << "\n";
  return kExitBadConfig;
}

absl::StatusOr<v1::SidecarConfig> LoadConfig() {
  v1::SidecarConfig config;
  const std::string path = absl::GetFlag(FLAGS_config);
  if (!path.empty()) {
    auto loaded = LoadConfigFile(path);
    if (!loaded.ok()) return loaded.status();
    config = *std::move(loaded);
  }
  if (!absl::GetFlag(FLAGS_listen).empty()) config.set_listen(absl::GetFlag(FLAGS_listen));
  if (!absl::GetFlag(FLAGS_data_dir).empty()) config.set_data_dir(absl::GetFlag(FLAGS_data_dir));
  if (!absl::GetFlag(FLAGS_name).empty()) config.set_name(absl::GetFlag(FLAGS_name));
  if (!absl::GetFlag(FLAGS_log_level).empty()) {
    config.set_log_level(absl::GetFlag(FLAGS_log_level));
  }
  ApplyConfigDefaults(&config);
  if (absl::Status valid = ValidateConfig(config); !valid.ok()) {
    return absl::Status(valid.code(), path.empty() ? std::string(valid.message())
                                                   : absl::StrCat(path, ": ", valid.message()));
  }
  return config;
}

absl::Status PrepareDataDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_dir ", dir, ": cannot create: ", std::strerror(errno)));
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("data_dir ", dir, ": not a directory"));
  }
  if (access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_dir ", dir, ": not readable and writable: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// Worker threads for journal-bound work (each may wait for an fsync; group commit batches them).
constexpr int kWorkerThreads = 16;

absl::Status Recover(Journal& journal, Dispatcher& dispatcher, CallbackDeliverer& deliverer) {
  size_t calls = 0, deliveries = 0;
  absl::Status status = journal.ForEachUnfinished([&](const v1::Call& call) {
    if (IsTerminalState(call.state())) {
      deliverer.Deliver(call.completion(), CallbackOf(call));
      ++deliveries;
    } else {
      dispatcher.Resume(call);
      ++calls;
    }
  });
  if (!status.ok()) return status;
  if (calls + deliveries > 0) {
    spdlog::info("callmeshd: recovered {} unfinished calls and {} undelivered completions", calls,
                 deliveries);
  }
  return absl::OkStatus();
}

// Purges delivered results older than the retention, now and then.
void SchedulePurge(TaskRunner* runner, Journal* journal, absl::Duration retention) {
  const absl::Duration every = std::clamp(retention / 10, absl::Seconds(1), absl::Minutes(1));
  runner->PostAt(absl::Now() + every, [runner, journal, retention] {
    absl::StatusOr<size_t> purged = journal->Purge(absl::Now(), retention);
    if (!purged.ok()) {
      spdlog::warn("callmeshd: purging old results failed: {}", purged.status().ToString());
    } else if (*purged > 0) {
      spdlog::info("callmeshd: purged {} results older than {}", *purged,
                   absl::FormatDuration(retention));
    }
    SchedulePurge(runner, journal, retention);
  });
}

// Once the journal cannot write, no call is acknowledged any more (the journal refuses with
// UNAVAILABLE) and the sidecar reports NOT_SERVING, so health checks and load balancers see it.
// A failed journal stays failed until a restart, so the watch ends there.
void WatchJournalHealth(TaskRunner* runner, Journal* journal, grpc::Server* server) {
  runner->PostAt(absl::Now() + absl::Milliseconds(200), [runner, journal, server] {
    if (journal->healthy()) {
      WatchJournalHealth(runner, journal, server);
      return;
    }
    spdlog::error(
        "callmeshd: the journal cannot write; NOT_SERVING, async calls are refused until a "
        "restart");
    server->GetHealthCheckService()->SetServingStatus(false);
  });
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
  if (absl::Status s = PrepareDataDir(config.data_dir()); !s.ok()) {
    return Fail(std::string(s.message()));
  }

  Registry::Options registry_options;
  registry_options.health_check_interval = FromProto(config.health_check_interval());
  registry_options.max_receive_bytes = static_cast<int>(config.max_payload_bytes());
  Registry registry(registry_options);
  for (int i = 0; i < config.services_size(); ++i) {
    for (const std::string& address : config.services(i).addresses()) {
      if (absl::Status s = registry.AddStatic(config.services(i).name(), address); !s.ok()) {
        return Fail(absl::StrCat("services[", i, "]: ", s.message()));
      }
    }
  }

  absl::StatusOr<std::unique_ptr<Journal>> opened = Journal::Open(JournalOptionsFromConfig(config));
  if (!opened.ok()) return Fail(std::string(opened.status().message()));
  Journal& journal = **opened;

  CidGenerator cids;
  Invoker::Options invoker_options;
  invoker_options.max_payload_bytes = config.max_payload_bytes();
  invoker_options.default_timeout = FromProto(config.default_attempt_timeout());
  Invoker invoker(&registry, &cids, invoker_options);
  SyncCalls sync_calls(config.limits().max_sync_in_flight());

  // The durable side: a worker pool for journal-bound work, the dispatcher of async calls and
  // the delivery of their completions.
  DispatchPolicies policies(config);
  TaskRunner runner(kWorkerThreads);
  CompletionHub hub;
  CallbackDeliverer deliverer(&journal, &invoker, &runner, policies.CallbackRetry());
  Dispatcher dispatcher(
      &journal, &invoker, &registry, &policies, &runner,
      {.max_pending_calls = config.limits().max_pending_calls()},
      [&hub, &deliverer](const v1::Completion& completion, const std::string& callback) {
        hub.Notify(completion);
        if (!callback.empty()) deliverer.Deliver(completion, callback);
      });
  SidecarService sidecar({.name = config.name()}, &registry, &invoker, &sync_calls,
                         {.journal = &journal,
                          .dispatcher = &dispatcher,
                          .deliverer = &deliverer,
                          .hub = &hub,
                          .runner = &runner,
                          .policies = &policies,
                          .max_payload_bytes = config.max_payload_bytes(),
                          .max_watchers = config.limits().max_watchers()});
  ProxyService proxy(config.name(), &invoker, &sync_calls);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second process share a port in use.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  builder.AddListeningPort(config.listen(), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&sidecar);
  builder.RegisterCallbackGenericService(&proxy);
  // Room for the envelope around a payload at the limit, so the size check answers with its own
  // message rather than gRPC's.
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_payload_bytes()) + (64 << 10));
  builder.SetMaxSendMessageSize(static_cast<int>(config.max_payload_bytes()) + (64 << 10));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return Fail(absl::StrCat("listen ", config.listen(),
                             ": cannot listen there (address in use, or not a local address?)"));
  }
  const std::string bound =
      absl::StrCat(config.listen().substr(0, config.listen().rfind(':')), ":", port);
  registry.StartHealthChecks();
  // Recovery: NOT_SERVING until every unfinished call is back in the dispatcher and every
  // undelivered completion queued for delivery again.
  server->GetHealthCheckService()->SetServingStatus(false);
  if (absl::Status recovered = Recover(journal, dispatcher, deliverer); !recovered.ok()) {
    server->Shutdown();
    return Fail(std::string(recovered.message()));
  }
  SchedulePurge(&runner, &journal, FromProto(config.result_retention()));
  server->GetHealthCheckService()->SetServingStatus(true);
  WatchJournalHealth(&runner, &journal, server.get());
  spdlog::info("callmeshd {} listening on {} (data_dir {}, {} static services)", config.name(),
               bound, config.data_dir(), config.services_size());
  if (const std::string ready = absl::GetFlag(FLAGS_ready_file); !ready.empty()) {
    const std::string tmp = ready + ".tmp";
    std::ofstream(tmp) << bound << "\n";
    std::rename(tmp.c_str(), ready.c_str());
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  const absl::Duration grace = FromProto(config.drain_timeout());
  spdlog::info("callmeshd: {} received; NOT_SERVING, draining in-flight calls for up to {}",
               strsignal(signal_number), absl::FormatDuration(grace));
  server->GetHealthCheckService()->SetServingStatus(false);
  server->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  // Calls still pending stay in the journal and resume at the next start.
  runner.Stop();
  registry.Stop();
  spdlog::info("callmeshd: stopped (served {} calls OK, {} failed)", sync_calls.ok(),
               sync_calls.failed());
  return 0;
}

}  // namespace
}  // namespace callmesh::sidecar

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
  return callmesh::sidecar::Run();
}
