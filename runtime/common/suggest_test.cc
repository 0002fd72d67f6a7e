#include "runtime/common/suggest.h"

#include "gtest/gtest.h"

namespace callmesh {
namespace {

TEST(EditDistance, CountsInsertionsDeletionsSubstitutionsAndTranspositions) {
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
  EXPECT_EQ(EditDistance("", "abc"), 3);
  EXPECT_EQ(EditDistance("abc", ""), 3);
  EXPECT_EQ(EditDistance("same", "same"), 0);
  EXPECT_EQ(EditDistance("nmae", "name"), 1);  // One transposition.
  EXPECT_EQ(EditDistance("Name", "name"), 1);  // Case-sensitive.
  EXPECT_EQ(EditDistance("listn", "listen"), 1);
}

TEST(ClosestMatch, SuggestsAPlausibleTypo) {
  EXPECT_EQ(ClosestMatch("invok", {"invoke", "calls", "watch"}), "invoke");
  EXPECT_EQ(ClosestMatch("nmae", {"name", "delay_ms"}), "name");
  EXPECT_EQ(ClosestMatch("listn", {"listen", "name"}), "listen");
  EXPECT_EQ(ClosestMatch("max_attemps", {"max_attempts", "jitter"}), "max_attempts");
  EXPECT_EQ(ClosestMatch("MaxAttemps", {"max_attempts", "maxAttempts"}), "maxAttempts");
  EXPECT_EQ(ClosestMatch("Invoke", {"invoke"}), "invoke");  // Case does not count.
}

TEST(ClosestMatch, ThresholdIsAThirdOfTheWordClampedToOneToThree) {
  // 3 letters: at most 1 edit.
  EXPECT_EQ(ClosestMatch("lst", {"ls"}), "ls");
  EXPECT_EQ(ClosestMatch("abc", {"xbc"}), "xbc");
  EXPECT_EQ(ClosestMatch("abc", {"xyc"}), "");
  // 9 letters: at most 3 edits.
  EXPECT_EQ(ClosestMatch("abcdefghi", {"abcdefxyz"}), "abcdefxyz");
  EXPECT_EQ(ClosestMatch("abcdefghi", {"abcdewxyz"}), "");
  // 12 letters: still at most 3 edits, not 4.
  EXPECT_EQ(ClosestMatch("abcdefghijkl", {"abcdefghiXYZ"}), "abcdefghiXYZ");
  EXPECT_EQ(ClosestMatch("abcdefghijkl", {"abcdefghWXYZ"}), "");
}

TEST(ClosestMatch, FallsBackToAPrefix) {
  EXPECT_EQ(ClosestMatch("dead", {"dead-letters", "services"}), "dead-letters");
  EXPECT_EQ(ClosestMatch("d", {"dead-letters"}), "");
}

TEST(ClosestMatch, NothingCloseGivesNoSuggestion) {
  EXPECT_EQ(ClosestMatch("zzzzzz", {"invoke", "calls"}), "");
  EXPECT_EQ(ClosestMatch("zzzzzzzz", {"durability"}), "");
  EXPECT_EQ(ClosestMatch("", {"a"}), "");
  EXPECT_EQ(ClosestMatch("abc", {}), "");
}

}  // namespace
}  // namespace callmesh
