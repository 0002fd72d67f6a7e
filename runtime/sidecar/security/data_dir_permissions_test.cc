#include "runtime/sidecar/security/data_dir_permissions.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace callmesh::sidecar::security {
namespace {

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(RestrictDataDir, TakesGroupAndOtherPermissionsAwayFromAnOlderDirectory) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/old-data-", getpid());
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(chmod(dir.c_str(), 0755), 0);  // whatever the umask
  const std::string file = dir + "/000007.log";
  std::ofstream(file) << "journal bytes";
  ASSERT_EQ(chmod(file.c_str(), 0644), 0);

  ASSERT_TRUE(RestrictDataDir(dir).ok());
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(file), 0600u);
  // Again: nothing left to change.
  ASSERT_TRUE(RestrictDataDir(dir).ok());
  EXPECT_EQ(ModeOf(file), 0600u);
}

TEST(RestrictDataDir, AMissingDirectoryIsNamed) {
  absl::Status status = RestrictDataDir("/nonexistent/callmesh-data");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("data_dir /nonexistent/callmesh-data"), absl::string_view::npos)
      << status;
}

}  // namespace
}  // namespace callmesh::sidecar::security
