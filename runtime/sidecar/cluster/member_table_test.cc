#include "runtime/sidecar/cluster/member_table.h"

#include "gtest/gtest.h"

namespace callmesh::sidecar::cluster {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

// The bucket carrying this sidecar's heartbeats until `until`, one a second from kStart.
void OwnHeartbeats(MemberTable& members, absl::Time until) {
  for (absl::Time t = kStart; t <= until; t += absl::Seconds(1)) members.BucketWorks(t);
}

TEST(MemberTable, SidecarExpiresOneTtlAfterItWasLastHeard) {
  MemberTable members(absl::Seconds(3));
  members.Heard("b", kStart);
  members.Heard("c", kStart + absl::Seconds(1));
  OwnHeartbeats(members, kStart + absl::Seconds(4));
  EXPECT_TRUE(members.Expire(kStart + absl::Milliseconds(2999)).empty());
  EXPECT_EQ(members.Expire(kStart + absl::Seconds(3)), std::vector<std::string>{"b"});
  EXPECT_EQ(members.size(), 1u);
  EXPECT_EQ(members.Expire(kStart + absl::Seconds(4)), std::vector<std::string>{"c"});
  EXPECT_EQ(members.size(), 0u);
}

TEST(MemberTable, NobodyExpiresWhileTheBucketCarriesNoHeartbeatOfOurs) {
  MemberTable members(absl::Seconds(3));
  members.Heard("b", kStart);
  OwnHeartbeats(members, kStart + absl::Seconds(1));
  // The bucket stalls (its stream elects a leader): ten seconds of silence from everyone.
  EXPECT_TRUE(members.Expire(kStart + absl::Seconds(10)).empty());
  // It works again, and b is still silent: b goes once ours have come back for a TTL after b's.
  members.BucketWorks(kStart + absl::Seconds(11));
  EXPECT_EQ(members.Expire(kStart + absl::Seconds(11)), std::vector<std::string>{"b"});
}

TEST(MemberTable, SidecarHeardAgainAfterAStallStays) {
  MemberTable members(absl::Seconds(3));
  members.Heard("b", kStart);
  EXPECT_TRUE(members.Expire(kStart + absl::Seconds(8)).empty());
  members.Heard("b", kStart + absl::Seconds(9));
  members.BucketWorks(kStart + absl::Seconds(9));
  EXPECT_TRUE(members.Expire(kStart + absl::Seconds(10)).empty());
  EXPECT_EQ(members.size(), 1u);
}

TEST(MemberTable, HeartbeatsKeepASidecarAlive) {
  MemberTable members(absl::Seconds(3));
  OwnHeartbeats(members, kStart + absl::Seconds(10));
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
  OwnHeartbeats(members, kStart + absl::Seconds(3));
  EXPECT_TRUE(members.HeardAt("b", kStart - absl::Seconds(2), kStart));
  EXPECT_TRUE(members.Expire(kStart + absl::Milliseconds(999)).empty());
  EXPECT_EQ(members.Expire(kStart + absl::Seconds(1)), std::vector<std::string>{"b"});
}

TEST(MemberTable, EntryWrittenAheadOfThisClockCountsFromNow) {
  MemberTable members(absl::Seconds(3));
  OwnHeartbeats(members, kStart + absl::Seconds(3));
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
