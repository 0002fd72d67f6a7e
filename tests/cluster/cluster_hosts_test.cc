// ClusterHosts stops everything it started (NATS, sidecars, apps) and deletes its namespaces,
// also when the test fails while they run. Needs root.
#include "tests/cluster/cluster_hosts.h"

#include <dirent.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace callmesh::testing {
namespace {

ino_t Inode(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// The processes whose network namespace has inode `netns`.
std::vector<pid_t> ProcessesIn(ino_t netns) {
  std::vector<pid_t> pids;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* entry = readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    if (Inode(absl::StrCat("/proc/", pid, "/ns/net")) == netns) pids.push_back(pid);
  }
  closedir(proc);
  return pids;
}

// Set inside EXPECT_FATAL_FAILURE, which takes no locals: each host namespace's inode and name.
std::vector<ino_t> host_namespaces;
std::vector<std::string> host_namespace_names;

TEST(ClusterHosts, StopsEverythingItStartedAlsoWhenTheTestFails) {
  ASSERT_EQ(geteuid(), 0u) << "network namespaces need root";
  EXPECT_FATAL_FAILURE(
      {
        absl::StatusOr<std::unique_ptr<ClusterHosts>> cluster = ClusterHosts::Create(3);
        ASSERT_TRUE(cluster.ok()) << cluster.status();
        ASSERT_TRUE((*cluster)->StartNats().ok());
        ASSERT_TRUE((*cluster)->StartSidecar(1).ok());
        ASSERT_TRUE((*cluster)->StartGreeter(1, "greeter-h1").ok());
        for (int host = 1; host <= 3; ++host) {
          const std::string name = (*cluster)->topology().Namespace(host);
          host_namespace_names.push_back(name);
          host_namespaces.push_back(Inode("/run/netns/" + name));
        }
        // nats-server, callmeshd and the greeter run in host 1; nats-server in the others.
        ASSERT_EQ(ProcessesIn(host_namespaces[0]).size(), 3u);
        ASSERT_EQ(ProcessesIn(host_namespaces[1]).size(), 1u);
        ASSERT_TRUE(false) << "an assertion fails while the cluster runs";
      },
      "an assertion fails while the cluster runs");
  ASSERT_EQ(host_namespaces.size(), 3u);
  for (size_t i = 0; i < host_namespaces.size(); ++i) {
    EXPECT_TRUE(ProcessesIn(host_namespaces[i]).empty()) << host_namespace_names[i];
    EXPECT_EQ(Inode("/run/netns/" + host_namespace_names[i]), 0u) << host_namespace_names[i];
  }
}

}  // namespace
}  // namespace callmesh::testing
