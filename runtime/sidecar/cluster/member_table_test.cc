#include "runtime/sidecar/cluster/member_table.h"

#include "gtest/gtest.h"

namespace callmesh::sidecar::cluster {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

TEST(MemberTable, SidecarExpiresOneTtlAfterItWasLastHeard) {
  MemberTable members(absl::Seconds(3));
  members.Heard("b", kStart);
  members.Heard("c", kStart + absl::Seconds(1));
  EXPECT_TRUE(members.Expire(kStart + absl::Milliseconds(2999)).empty());
  EXPECT_EQ(members.Expire(kStart + absl::Seconds(3)), std::vector<std::string>{"b"});
  EXPECT_EQ(members.size(), 1u);
  EXPECT_EQ(members.Expire(kStart + absl::Seconds(4)), std::vector<std::string>{"c"});
  EXPECT_EQ(members.size(), 0u);
}

TEST(MemberTable, HeartbeatsKeepASidecarAlive) {
  MemberTable members(absl::Seconds(3));
  for (int second = 0; second < 10; ++second) {
    members.Heard("b", kStart + absl::Seconds(second));
    EXPECT_TRUE(members.Expire(kStart + absl::Seconds(second) + absl::Milliseconds(500)).empty());
  }
}

TEST(MemberTable, ReplayedEntryOlderThanTheTtlIsIgnored) {
  MemberTable members(absl::Seconds(3));
  EXPECT_FALSE(members.HeardAt("dead", kStart - absl::Seconds(10), kStart));
  EXPECT_EQ(members.size(), 0u);
}

TEST(MemberTable, ReplayedEntryKeepsOnlyWhatIsLeftOfItsTtl) {
  MemberTable members(absl::Seconds(3));
  EXPECT_TRUE(members.HeardAt("b", kStart - absl::Seconds(2), kStart));
  EXPECT_TRUE(members.Expire(kStart + absl::Milliseconds(999)).empty());
  EXPECT_EQ(members.Expire(kStart + absl::Seconds(1)), std::vector<std::string>{"b"});
}

TEST(MemberTable, EntryWrittenAheadOfThisClockCountsFromNow) {
  MemberTable members(absl::Seconds(3));
  EXPECT_TRUE(members.HeardAt("b", kStart + absl::Seconds(5), kStart));
  EXPECT_TRUE(members.Expire(kStart + absl::Milliseconds(2999)).empty());
  EXPECT_EQ(members.Expire(kStart + absl::Seconds(3)), std::vector<std::string>{"b"});
}

TEST(MemberTable, ForgetRemovesAtOnce) {
  MemberTable members(absl::Seconds(3));
  members.Heard("b", kStart);
  EXPECT_TRUE(members.Forget("b"));
  EXPECT_FALSE(members.Forget("b"));
  EXPECT_TRUE(members.Expire(kStart + absl::Hours(1)).empty());
}

}  // namespace
}  // namespace callmesh::sidecar::cluster
