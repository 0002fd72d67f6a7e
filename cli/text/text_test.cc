#include "cli/text/table.h"
#include "gtest/gtest.h"

namespace callmesh::cli {
namespace {

TEST(Table, AlignsColumnsToTheWidestCell) {
  Table table({"CID", "STATE"});
  table.AddRow({"abc", "SUCCEEDED"});
  table.AddRow({"a-much-longer-cid", ""});
  EXPECT_EQ(table.Render(),
            "CID                STATE\n"
            "abc                SUCCEEDED\n"
            "a-much-longer-cid\n");
}

}  // namespace
}  // namespace callmesh::cli
