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
  MemberTable members(absl::Seconds(3), absl::Seconds(1));
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
  MemberTable members(absl::Seconds(3), absl::Seconds(1));
  members.Heard("b", kStart);
  OwnHeartbeats(members, kStart + absl::Seconds(1));
  // The bucket stalls (its stream elects a leader): ten seconds of silence from everyone.
  EXPECT_TRUE(members.Expire(kStart + absl::Seconds(10)).empty());
  // It works again: b gets a whole TTL from then to be heard, and stays silent, so it goes.
  for (int second = 11; second <= 14; ++second) {
    members.BucketWorks(kStart + absl::Seconds(second));
    if (second < 14) EXPECT_TRUE(members.Expire(kStart + absl::Seconds(second)).empty());
  }
  EXPECT_EQ(members.Expire(kStart + absl::Seconds(14)), std::vector<std::string>{"b"});
}

TEST(MemberTable, AfterAStallOthersHaveAWholeTtlToBeHeardAgain) {
  MemberTable members(absl::Seconds(3), absl::Seconds(1));
  members.Heard("b", kStart);
  OwnHeartbeats(members, kStart + absl::Seconds(1));
  // Our own put gets through first after the stall; b's a moment later, as it retries too.
  members.BucketWorks(kStart + absl::Seconds(10));
  EXPECT_TRUE(members.Expire(kStart + absl::Seconds(10)).empty());
  members.Heard("b", kStart + absl::Milliseconds(10300));
  members.BucketWorks(kStart + absl::Seconds(11));
  EXPECT_TRUE(members.Expire(kStart + absl::Seconds(11)).empty());
  EXPECT_EQ(members.size(), 1u);
}

TEST(MemberTable, SidecarHeardAgainAfterAStallStays) {
  MemberTable members(absl::Seconds(3), absl::Seconds(1));
  members.Heard("b", kStart);
  EXPECT_TRUE(members.Expire(kStart + absl::Seconds(8)).empty());
  members.Heard("b", kStart + absl::Seconds(9));
  members.BucketWorks(kStart + absl::Seconds(9));
  EXPECT_TRUE(members.Expire(kStart + absl::Seconds(10)).empty());
  EXPECT_EQ(members.size(), 1u);
}

TEST(MemberTable, HeartbeatsKeepASidecarAlive) {
  MemberTable members(absl::Seconds(3), absl::Seconds(1));
  OwnHeartbeats(members, kStart + absl::Seconds(10));
  for (int second = 0; second < 10; ++second) {
    members.Heard("b", kStart + absl::Seconds(second));
    EXPECT_TRUE(members.Expire(kStart + absl::Seconds(second) + absl::Milliseconds(500)).empty());
  }
}

TEST(MemberTable, ReplayedEntryOlderThanTheTtlIsIgnored) {
  MemberTable members(absl::Seconds(3), absl::Seconds(1));
  EXPECT_FALSE(members.HeardAt("dead", kStart - absl::Seconds(10), kStart));
  EXPECT_EQ(members.size(), 0u);
}

TEST(MemberTable, ReplayedEntryKeepsOnlyWhatIsLeftOfItsTtl) {
  MemberTable members(absl::Seconds(3), absl::Seconds(1));
  OwnHeartbeats(members, kStart + absl::Seconds(6));
  // The watch restarted at +5 and replays b's entry, written at +3.
  EXPECT_TRUE(members.HeardAt("b", kStart + absl::Seconds(3), kStart + absl::Seconds(5)));
  EXPECT_TRUE(members.Expire(kStart + absl::Milliseconds(5999)).empty());
  EXPECT_EQ(members.Expire(kStart + absl::Seconds(6)), std::vector<std::string>{"b"});
}

TEST(MemberTable, EntryWrittenAheadOfThisClockCountsFromNow) {
  MemberTable members(absl::Seconds(3), absl::Seconds(1));
  OwnHeartbeats(members, kStart + absl::Seconds(3));
  EXPECT_TRUE(members.HeardAt("b", kStart + absl::Seconds(5), kStart));
  EXPECT_TRUE(members.Expire(kStart + absl::Milliseconds(2999)).empty());
  EXPECT_EQ(members.Expire(kStart + absl::Seconds(3)), std::vector<std::string>{"b"});
}

TEST(MemberTable, ForgetRemovesAtOnce) {
  MemberTable members(absl::Seconds(3), absl::Seconds(1));
  members.Heard("b", kStart);
  EXPECT_TRUE(members.Forget("b"));
  EXPECT_FALSE(members.Forget("b"));
  EXPECT_TRUE(members.Expire(kStart + absl::Hours(1)).empty());
}

}  // namespace
}  // namespace callmesh::sidecar::cluster
