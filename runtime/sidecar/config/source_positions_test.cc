#include "runtime/sidecar/config/source_positions.h"

#include "gtest/gtest.h"

namespace callmesh::sidecar {
namespace {

TEST(SourcePositions, KeyPaths) {
  EXPECT_EQ(FieldPath("", "listen"), "listen");
  EXPECT_EQ(FieldPath(IndexPath("services", 2), "name"), "services[2].name");
  EXPECT_EQ(StringKeyPath("method_retry", "p.S/M\"x"), "method_retry[\"p.S/M\\\"x\"]");
}

TEST(SourcePositions, FormatLeavesOutUnknownParts) {
  EXPECT_EQ(FormatSourceError("f.yaml", {3, 5}, "a.b", "bad"), "f.yaml:3:5: a.b: bad");
  EXPECT_EQ(FormatSourceError("f.yaml", {}, "a.b", "bad"), "f.yaml: a.b: bad");
  EXPECT_EQ(FormatSourceError("f.yaml", {1, 1}, "", "bad"), "f.yaml:1:1: bad");
  EXPECT_EQ(FormatSourceError("", {}, "a.b", "bad"), "a.b: bad");
}

TEST(SourcePositions, ErrorUsesTheClosestWrittenKeyPath) {
  SourcePositions positions("f.yaml");
  positions.Set("services", {2, 1});
  positions.Set("services[0]", {3, 5});
  positions.Set("services[0].method_retry[\"a.b/C\"]", {6, 9});
  EXPECT_EQ(positions.Error("services[0].addresses", "p").message(),
            "f.yaml:3:5: services[0].addresses: p");
  // Dots and brackets inside a quoted map key do not cut the path.
  EXPECT_EQ(positions.Error("services[0].method_retry[\"a.b/C\"].jitter", "p").message(),
            "f.yaml:6:9: services[0].method_retry[\"a.b/C\"].jitter: p");
  EXPECT_EQ(positions.Error("listen", "p").message(), "f.yaml: listen: p");
  EXPECT_EQ(positions.Error("listen", "p").code(), absl::StatusCode::kInvalidArgument);
}

TEST(SourcePositions, AnOverriddenKeyPathNamesItsOrigin) {
  SourcePositions positions("f.yaml");
  positions.Set("listen", {1, 9});
  positions.SetOrigin("listen", "--listen");
  EXPECT_EQ(positions.Error("listen", "p").message(), "--listen: listen: p");
}

}  // namespace
}  // namespace callmesh::sidecar
