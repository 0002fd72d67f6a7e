#include "runtime/common/version.h"

#include "runtime/common/version_stamp.h"

#ifndef CALLMESH_BUILD_TYPE
#error "CALLMESH_BUILD_TYPE must be defined by the build (see runtime/common/BUILD.bazel)"
#endif

namespace callmesh {

const char* Version() { return CALLMESH_VERSION_STRING; }

const char* GitCommit() { return CALLMESH_GIT_COMMIT_STRING; }

const char* BuildType() { return CALLMESH_BUILD_TYPE; }

std::string VersionLine(const std::string& program) {
  return program + " " + Version() + " (commit " + GitCommit() + ", " + BuildType() + " build)";
}

}  // namespace callmesh
