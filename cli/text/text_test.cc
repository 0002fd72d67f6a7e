#include "cli/text/suggest.h"
#include "cli/text/table.h"
#include "gtest/gtest.h"

namespace callmesh::cli {
namespace {

TEST(Suggest, FindsTheClosestPlausibleTypo) {
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
  EXPECT_EQ(ClosestMatch("invok", {"invoke", "calls", "watch"}), "invoke");
  EXPECT_EQ(ClosestMatch("nmae", {"name", "delay_ms"}), "name");
  EXPECT_EQ(ClosestMatch("dead", {"dead-letters", "services"}), "dead-letters");
  EXPECT_EQ(ClosestMatch("zzzzzz", {"invoke", "calls"}), "");
}

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
