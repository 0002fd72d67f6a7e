// The journal holds every caller's requests and results, so its directory is the owner's alone:
// 0700, files 0600. New files get that from callmeshd's umask (077); this takes group and other
// permissions away from a directory an older callmeshd created (0755, files 0644).
//
//   if (absl::Status s = RestrictDataDir("/var/lib/callmesh"); !s.ok()) return s;
//
// Thread-compatible (changes the file system).
#pragma once

#include <string>

#include "absl/status/status.h"

namespace callmesh::sidecar::security {

// chmod go-rwx on `dir` and every entry in it (one level; RocksDB keeps its files flat). Logs
// once when it changed something, and a warning for each entry it may not change (not owned by
// callmeshd's user: that is not an error). FAILED_PRECONDITION "data_dir <dir>: ..." if the
// directory cannot be listed or an entry cannot be looked at.
absl::Status RestrictDataDir(const std::string& dir);

}  // namespace callmesh::sidecar::security
