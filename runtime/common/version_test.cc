#include "runtime/common/version.h"

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace callmesh {
namespace {

TEST(Version, MatchesTheVersionFile) {
  std::ifstream file("VERSION");
  ASSERT_TRUE(file) << "VERSION is a data dependency of this test";
  std::string expected;
  file >> expected;
  EXPECT_EQ(Version(), expected);
}

TEST(Version, IsSemantic) {
  EXPECT_TRUE(std::regex_match(Version(), std::regex(R"(\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?)")))
      << Version();
}

TEST(Version, BuildTypeIsACompilationMode) {
  const std::string type = BuildType();
  EXPECT_TRUE(type == "opt" || type == "fastbuild" || type == "dbg") << type;
}

TEST(Version, LineNamesProgramVersionCommitAndBuildType) {
  EXPECT_EQ(VersionLine("callmeshd"), std::string("callmeshd ") + Version() + " (commit " +
                                          GitCommit() + ", " + BuildType() + " build)");
  EXPECT_NE(std::string(GitCommit()), "");
}

}  // namespace
}  // namespace callmesh
