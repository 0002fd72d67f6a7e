// The `main` plumbing shared by the example servers in services/: flags with dashes, stop signals
// handled on the main thread, a ready file for tests and scripts.
//
//   int main(int argc, char** argv) {
//     callmesh::examples::InitExample(argc, argv, "fib_server [--sidecar ADDR] ...");
//     callmesh::ServiceHost host({.name = "fib", .listen = ..., .sidecar = ...});
//     host.AddService(&fib);
//     return callmesh::examples::ServeUntilStopped(host, absl::GetFlag(FLAGS_ready_file));
//   }
//
// InitExample must run before any thread starts (it blocks SIGTERM/SIGINT for the whole process).
#pragma once

#include <signal.h>
#include <string.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "runtime/common/flags.h"
#include "runtime/sdk/service_host.h"
#include "spdlog/spdlog.h"

namespace callmesh::examples {

inline sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

// Parses flags (accepting --dashed-names) and blocks the stop signals for every thread.
inline void InitExample(int argc, char** argv, const char* usage) {
  absl::SetProgramUsageMessage(usage);
  std::vector<std::string> storage;
  std::vector<char*> args = DashedFlagsToUnderscores(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  sigset_t signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  spdlog::set_pattern("[%l] %v");
}

// Writes `address` to `path` atomically (if `path` is not empty).
inline void WriteReadyFile(const std::string& path, const std::string& address) {
  if (path.empty()) return;
  std::ofstream(path + ".tmp") << address << "\n";
  std::rename((path + ".tmp").c_str(), path.c_str());
}

// Starts `host`, writes the ready file, serves until SIGTERM/SIGINT, then deregisters and drains.
// Returns the process exit code: 0, or 1 if the host cannot start.
inline int ServeUntilStopped(ServiceHost& host, const std::string& ready_file) {
  if (absl::Status started = host.Start(); !started.ok()) {
    std::cerr << "cannot start: " << started << "\n";
    return 1;
  }
  WriteReadyFile(ready_file, host.address());
  sigset_t signals = StopSignals();
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  spdlog::info("{} received, stopping", strsignal(signal_number));
  host.Shutdown();
  return 0;
}

}  // namespace callmesh::examples
