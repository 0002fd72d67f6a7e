// greeter_server: hosts the greeter as mesh service "greeter" (or --name), registered with the
// local sidecar. SIGTERM/SIGINT deregister, drain and exit 0.
#include <signal.h>

#include <fstream>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "runtime/common/flags.h"
#include "runtime/sdk/service_host.h"
#include "services/greeter/greeter_service.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "Address to serve on (port 0 = any free port).");
ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770",
          "Address of the local callmeshd to register with; empty = run without a sidecar.");
ABSL_FLAG(std::string, name, "greeter", "Mesh name to register under.");
ABSL_FLAG(std::string, ready_file, "", "Once serving, write the bound address to this file.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("greeter_server [--listen ADDR] [--sidecar ADDR] [--name NAME]");
  std::vector<std::string> storage;
  std::vector<char*> args = callmesh::DashedFlagsToUnderscores(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  callmesh::greeter::GreeterService greeter;
  callmesh::ServiceHostOptions options;
  options.name = absl::GetFlag(FLAGS_name);
  options.listen = absl::GetFlag(FLAGS_listen);
  options.sidecar = absl::GetFlag(FLAGS_sidecar);
  callmesh::ServiceHost host(options);
  host.AddService(&greeter);
  if (absl::Status started = host.Start(); !started.ok()) {
    std::cerr << "greeter_server: " << started.message() << "\n";
    return 1;
  }
  spdlog::info("greeter serving on {} as '{}'", host.address(), options.name);
  if (const std::string ready = absl::GetFlag(FLAGS_ready_file); !ready.empty()) {
    std::ofstream(ready + ".tmp") << host.address() << "\n";
    std::rename((ready + ".tmp").c_str(), ready.c_str());
  }
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("greeter: {} received, stopping", strsignal(signal_number));
  host.Shutdown();
  return 0;
}
