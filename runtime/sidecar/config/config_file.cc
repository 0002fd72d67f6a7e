#include "runtime/sidecar/config/config_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace callmesh::sidecar {

absl::StatusOr<std::string> ReadConfigFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat(path, ": cannot open config file"));
  std::string text;
  char buffer[64 << 10];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return absl::ErrnoToStatus(error, absl::StrCat(path, ": cannot read config file"));
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > kMaxConfigFileBytes) {
      ::close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": config file is larger than ", kMaxConfigFileBytes >> 20, " MiB"));
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

}  // namespace callmesh::sidecar
