// Names the calling thread as `top`, `perf` and /proc/<pid>/task/<tid>/comm show it, so that a
// profile or a scheduler trace of the sidecar can tell its threads apart (gRPC names its own;
// unnamed threads all show the process's name).
//
//   std::thread writer([this] { NameThisThread("journal-writer"); WriterLoop(); });
//
// Linux keeps at most 15 bytes of a name: a longer one is cut to its first 15. Thread-safe (it
// acts on the calling thread only); a failure is ignored (the name is for people, nothing
// depends on it).
#pragma once

#include "absl/strings/string_view.h"

namespace callmesh {

void NameThisThread(absl::string_view name);

}  // namespace callmesh
