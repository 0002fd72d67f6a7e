// What tests look at in a file they made: its permission bits and its text.
//
//   EXPECT_EQ(FileMode(dir + "/ca.key"), 0600u);
//   EXPECT_THAT(FileText(dir + "/ca.crt"), HasSubstr("BEGIN CERTIFICATE"));
//
// Thread-safe (pure functions of the files).
#pragma once

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>

namespace callmesh::testing {

// The permission bits (mode & 0777) of `path`; 0 if it cannot be looked at.
inline mode_t FileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

// The whole text of `path`; empty if it cannot be read.
inline std::string FileText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace callmesh::testing
