#include "tests/support/process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace callmesh::testing {
namespace {

std::string TempRoot() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

std::atomic<int> next_id{0};

}  // namespace

std::string RunfilePath(const std::string& workspace_path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr) return workspace_path;
  return absl::StrCat(srcdir, "/", workspace != nullptr ? workspace : "callmesh", "/",
                      workspace_path);
}

std::string NewTempDir(const std::string& prefix) {
  std::string pattern = absl::StrCat(TempRoot(), "/", prefix, "-", next_id++, "-XXXXXX");
  char* made = mkdtemp(pattern.data());
  return made != nullptr ? std::string(made) : pattern;
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool bound = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                     getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  close(fd);
  return bound ? ntohs(address.sin_port) : -1;
}

absl::StatusOr<Process> Process::Start(const std::string& binary,
                                       const std::vector<std::string>& args,
                                       const std::string& label) {
  return Launch(binary, args, label, nullptr);
}

absl::StatusOr<Process> Process::Start(const std::string& binary,
                                       const std::vector<std::string>& args,
                                       const std::string& label, const ProcessOptions& options) {
  return Launch(binary, args, label, &options);
}

absl::StatusOr<Process> Process::Launch(const std::string& binary,
                                        const std::vector<std::string>& args,
                                        const std::string& label, const ProcessOptions* options) {
  const std::string base = absl::StrCat(TempRoot(), "/", label, "-", next_id++);
  const std::string log_path = base + ".log";
  const std::string err_path =
      options != nullptr && options->separate_stderr ? base + ".stderr" : "";
  std::string stdin_path;
  if (options != nullptr) {
    stdin_path = options->stdin_data.empty() ? "/dev/null" : base + ".stdin";
    if (!options->stdin_data.empty()) {
      std::ofstream(stdin_path, std::ios::binary) << options->stdin_data;
    }
  }
  std::vector<std::string> argv_storage = {binary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  // The child's environment is prepared before fork (setenv is not safe after it).
  std::vector<std::string> env_storage;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const std::string name = text.substr(0, text.find('='));
    bool replaced = false;
    if (options != nullptr) {
      for (const std::string& unset : options->unset_env) replaced |= unset == name;
      for (const std::string& set : options->env) replaced |= set.substr(0, set.find('=')) == name;
    }
    if (!replaced) env_storage.push_back(text);
  }
  if (options != nullptr) {
    env_storage.insert(env_storage.end(), options->env.begin(), options->env.end());
  }
  std::vector<char*> envp;
  for (std::string& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    if (!err_path.empty()) {
      const int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err_fd >= 0) {
        dup2(err_fd, 2);
        close(err_fd);
      }
    }
    if (!stdin_path.empty()) {
      const int in_fd = open(stdin_path.c_str(), O_RDONLY);
      if (in_fd >= 0) {
        dup2(in_fd, 0);
        close(in_fd);
      }
    }
    // The test runner may block signals; the child must start with a clean mask.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(binary.c_str(), argv.data(), envp.data());
    dprintf(2, "exec %s: %s\n", binary.c_str(), std::strerror(errno));
    _exit(127);
  }
  return Process(pid, log_path, err_path);
}

Process::Process(Process&& other) noexcept
    : pid_(other.pid_),
      exit_code_(other.exit_code_),
      log_path_(std::move(other.log_path_)),
      err_path_(std::move(other.err_path_)) {
  other.pid_ = -1;
}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && running()) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    pid_ = other.pid_;
    exit_code_ = other.exit_code_;
    log_path_ = std::move(other.log_path_);
    err_path_ = std::move(other.err_path_);
    other.pid_ = -1;
  }
  return *this;
}

Process::~Process() {
  if (pid_ > 0 && running()) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

bool Process::running() {
  if (pid_ <= 0 || exit_code_ >= 0) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return false;
}

void Process::Signal(int signal_number) {
  if (running()) kill(pid_, signal_number);
}

absl::StatusOr<int> Process::Wait(absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  while (running()) {
    if (absl::Now() > until) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " still running after ", absl::FormatDuration(timeout)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return exit_code_;
}

absl::StatusOr<std::string> Process::WaitReady(const std::string& ready_file,
                                               absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  while (true) {
    std::ifstream in(ready_file);
    std::string line;
    if (in && std::getline(in, line) && !line.empty()) {
      return std::string(absl::StripAsciiWhitespace(line));
    }
    if (!running()) {
      return absl::FailedPreconditionError(
          absl::StrCat("exited with code ", exit_code_, " before it was ready:\n", output()));
    }
    if (absl::Now() > until) {
      return absl::DeadlineExceededError(
          absl::StrCat("not ready after ", absl::FormatDuration(timeout), ":\n", output()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

namespace {

std::string ReadWhole(const std::string& path) {
  if (path.empty()) return "";
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string Process::output() const { return ReadWhole(log_path_); }

std::string Process::stderr_text() const { return ReadWhole(err_path_); }

absl::StatusOr<CommandResult> RunCommand(const std::string& binary,
                                         const std::vector<std::string>& args,
                                         const ProcessOptions& options, absl::Duration timeout) {
  const std::string label = binary.substr(binary.rfind('/') + 1);
  absl::StatusOr<Process> process = Process::Start(binary, args, label, options);
  if (!process.ok()) return process.status();
  absl::StatusOr<int> code = process->Wait(timeout);
  if (!code.ok()) return code.status();  // the destructor kills it
  return CommandResult{*code, process->stdout_text(), process->stderr_text()};
}

}  // namespace callmesh::testing
