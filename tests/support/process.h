// Real child processes for integration tests: start a binary from the test's runfiles, wait until
// it reports readiness through a ready file, signal it, collect its exit code and output.
//
//   callmesh::testing::Process sidecar = *Process::Start(
//       RunfilePath("runtime/sidecar/callmeshd"), {"--listen=127.0.0.1:0", ...}, "callmeshd");
//   std::string address = *sidecar.WaitReady(ready_file, absl::Seconds(20));
//   sidecar.Signal(SIGTERM);
//   int code = *sidecar.Wait(absl::Seconds(20));
//
// A Process still running when destroyed is killed with SIGKILL and reaped, so a failing test never
// leaves servers behind.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace callmesh::testing {

// Absolute path of a file in the test's runfiles, given its workspace-relative path.
std::string RunfilePath(const std::string& workspace_path);

// A fresh, empty directory under $TEST_TMPDIR (or /tmp), unique per call.
std::string NewTempDir(const std::string& prefix);

class Process {
 public:
  // Starts `binary` with `args`; stdout and stderr both go to a log file named after `label`
  // under $TEST_TMPDIR (see output()). INTERNAL if fork/exec fails.
  static absl::StatusOr<Process> Start(const std::string& binary,
                                       const std::vector<std::string>& args,
                                       const std::string& label);

  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  ~Process();

  // Waits until `ready_file` exists and is non-empty, and returns its first line (trimmed).
  // FAILED_PRECONDITION with the process's output if it exits first; DEADLINE_EXCEEDED after
  // `timeout`.
  absl::StatusOr<std::string> WaitReady(const std::string& ready_file, absl::Duration timeout);

  void Signal(int signal_number);

  // Waits for the process to exit and returns its exit code (128 + n if killed by signal n).
  // DEADLINE_EXCEEDED after `timeout` (the process is left running).
  absl::StatusOr<int> Wait(absl::Duration timeout);

  bool running();
  pid_t pid() const { return pid_; }
  // Everything the process wrote so far to stdout and stderr.
  std::string output() const;

 private:
  Process(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string log_path_;
};

}  // namespace callmesh::testing
