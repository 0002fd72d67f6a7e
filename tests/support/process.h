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
//
// Command-line tools are run to completion with RunCommand, which feeds stdin and captures stdout
// and stderr apart:
//
//   CommandResult r = *RunCommand(RunfilePath("cli/callmesh"), {"services"},
//                                 {.stdin_data = "{}", .env = {"CALLMESH_SIDECAR=..."}});
//   EXPECT_EQ(r.exit_code, 0) << r.err;
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

// A loopback port that was free a moment ago, for a server that must come back on the same
// address after a restart; -1 if none could be found.
int FreeLoopbackPort();

struct ProcessOptions {
  // Written to the process's stdin, which then reaches end of file (empty = /dev/null).
  std::string stdin_data;
  // Capture stderr apart from stdout (stdout_text() / stderr_text()); else both go to output().
  bool separate_stderr = true;
  // Environment changes applied to the test's own environment: "NAME=value" entries are set,
  // names in `unset_env` removed.
  std::vector<std::string> env;
  std::vector<std::string> unset_env;
};

class Process {
 public:
  // Starts `binary` with `args`; stdout and stderr both go to a log file named after `label`
  // under $TEST_TMPDIR (see output()). INTERNAL if fork/exec fails.
  static absl::StatusOr<Process> Start(const std::string& binary,
                                       const std::vector<std::string>& args,
                                       const std::string& label);

  // Like Start above, with stdin, environment and separate stderr as `options` say.
  static absl::StatusOr<Process> Start(const std::string& binary,
                                       const std::vector<std::string>& args,
                                       const std::string& label, const ProcessOptions& options);

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
  // Everything the process wrote so far to stdout and stderr (only stdout when stderr is
  // captured apart).
  std::string output() const;
  // What the process wrote so far to stdout / to stderr ("" for stderr unless started with
  // ProcessOptions::separate_stderr).
  std::string stdout_text() const { return output(); }
  std::string stderr_text() const;

 private:
  Process(pid_t pid, std::string log_path, std::string err_path = "")
      : pid_(pid), log_path_(std::move(log_path)), err_path_(std::move(err_path)) {}
  static absl::StatusOr<Process> Launch(const std::string& binary,
                                        const std::vector<std::string>& args,
                                        const std::string& label, const ProcessOptions* options);

  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string log_path_;
  std::string err_path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `binary` with `args` to completion (stderr apart from stdout). DEADLINE_EXCEEDED (and the
// process killed) if it runs longer than `timeout`; INTERNAL if it cannot be started.
absl::StatusOr<CommandResult> RunCommand(const std::string& binary,
                                         const std::vector<std::string>& args,
                                         const ProcessOptions& options = {},
                                         absl::Duration timeout = absl::Seconds(60));

}  // namespace callmesh::testing
