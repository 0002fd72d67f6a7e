#include "runtime/sdk/sidecar_address.h"

#include <cstdlib>

#include "gtest/gtest.h"
#include "runtime/sdk/mesh.h"
#include "runtime/sdk/service_host.h"

namespace callmesh {
namespace {

TEST(SidecarAddress, DefaultsToLoopback4770) {
  unsetenv("CALLMESH_SIDECAR");
  EXPECT_EQ(DefaultSidecarAddress(), "127.0.0.1:4770");
}

TEST(SidecarAddress, EmptyVariableMeansUnset) {
  setenv("CALLMESH_SIDECAR", "", 1);
  EXPECT_EQ(DefaultSidecarAddress(), "127.0.0.1:4770");
  unsetenv("CALLMESH_SIDECAR");
}

TEST(SidecarAddress, MeshAndServiceHostOptionsReadTheVariable) {
  setenv("CALLMESH_SIDECAR", "127.0.0.1:5999", 1);
  EXPECT_EQ(DefaultSidecarAddress(), "127.0.0.1:5999");
  EXPECT_EQ(MeshOptions{}.sidecar, "127.0.0.1:5999");
  EXPECT_EQ(ServiceHostOptions{.name = "x"}.sidecar, "127.0.0.1:5999");
  // An explicit address still wins.
  EXPECT_EQ((MeshOptions{.sidecar = "127.0.0.1:1"}).sidecar, "127.0.0.1:1");
  unsetenv("CALLMESH_SIDECAR");
  EXPECT_EQ(MeshOptions{}.sidecar, "127.0.0.1:4770");
}

}  // namespace
}  // namespace callmesh
