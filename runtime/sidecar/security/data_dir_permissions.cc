#include "runtime/sidecar/security/data_dir_permissions.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar::security {
namespace {

// Removes group and other permissions from `path`; true if there were any.
absl::StatusOr<bool> OwnerOnly(const std::string& path, const std::string& dir) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_dir ", dir, ": cannot stat ", path, ": ", std::strerror(errno)));
  }
  if (S_ISLNK(st.st_mode) || (st.st_mode & 077) == 0) return false;
  if (chmod(path.c_str(), st.st_mode & 07700) != 0) {
    // Not ours (say, a volume mounted by root, 0777): the files callmeshd creates in it are still
    // owner-only (umask); the directory is the operator's to tighten.
    spdlog::warn("callmeshd: data_dir {}: cannot make {} owner-only ({}); others may read it", dir,
                 path, std::strerror(errno));
    return false;
  }
  return true;
}

}  // namespace

absl::Status RestrictDataDir(const std::string& dir) {
  absl::StatusOr<bool> changed = OwnerOnly(dir, dir);
  if (!changed.ok()) return changed.status();
  size_t files = 0;
  DIR* listing = opendir(dir.c_str());
  if (listing == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_dir ", dir, ": cannot list: ", std::strerror(errno)));
  }
  for (dirent* entry = readdir(listing); entry != nullptr; entry = readdir(listing)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    absl::StatusOr<bool> file_changed = OwnerOnly(absl::StrCat(dir, "/", name), dir);
    if (!file_changed.ok()) {
      closedir(listing);
      return file_changed.status();
    }
    files += *file_changed ? 1 : 0;
  }
  closedir(listing);
  if (*changed || files > 0) {
    spdlog::warn("callmeshd: data_dir {} was readable by others; made it and {} files owner-only",
                 dir, files);
  }
  return absl::OkStatus();
}

}  // namespace callmesh::sidecar::security
