// The callmesh release version, the git commit and the build type of this binary, for `--version`.
//
//   std::cout << callmesh::VersionLine("callmeshd") << "\n";
//   // callmeshd 0.2.0 (commit 03040ae03b19, opt build)
//
// The version comes from the VERSION file at the repository root (the only place it is written);
// the commit from Bazel's workspace status (tools/build/workspace_status.sh), "unknown" when the
// build was not stamped (e.g. callmesh built as another project's external repository); the build
// type is Bazel's compilation mode (opt, fastbuild or dbg). All functions are thread-safe.
#pragma once

#include <string>

namespace callmesh {

// "0.2.0": MAJOR.MINOR.PATCH.
const char* Version();

// The abbreviated git commit the binary was built from ("-dirty" if the tree had local changes),
// or "unknown".
const char* GitCommit();

// "opt", "fastbuild" or "dbg".
const char* BuildType();

// "<program> <version> (commit <commit>, <build type> build)".
std::string VersionLine(const std::string& program);

}  // namespace callmesh
