#include "runtime/common/cid.h"

#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace callmesh {
namespace {

TEST(CidGenerator, ProducesWellFormedUuidV7) {
  CidGenerator cids;
  for (int i = 0; i < 100; ++i) {
    const std::string cid = cids.Next();
    EXPECT_TRUE(IsWellFormedCid(cid)) << cid;
    EXPECT_EQ(cid[14], '7') << cid;
    EXPECT_NE(std::string("89ab").find(cid[19]), std::string::npos) << "variant bits: " << cid;
  }
}

TEST(CidGenerator, EmbedsTheClockInMilliseconds) {
  CidGenerator cids([] { return int64_t{1700000000123}; }, 1);
  EXPECT_EQ(CidTimestampMs(cids.Next()), 1700000000123);
}

TEST(CidGenerator, StrictlyIncreasingWithinOneMillisecond) {
  CidGenerator cids([] { return int64_t{1700000000000}; }, 7);
  std::string previous = cids.Next();
  // More than the 12-bit counter holds: the generator must borrow the next millisecond.
  for (int i = 0; i < 10000; ++i) {
    std::string next = cids.Next();
    ASSERT_LT(previous, next) << "at " << i;
    previous = next;
  }
}

TEST(CidGenerator, NeverGoesBackWhenTheClockDoes) {
  int64_t now = 1700000005000;
  CidGenerator cids([&now] { return now; }, 3);
  const std::string before = cids.Next();
  now -= 4000;
  const std::string after = cids.Next();
  EXPECT_LT(before, after);
  EXPECT_GE(CidTimestampMs(after), 1700000005000);
}

TEST(CidGenerator, UniqueAcrossThreads) {
  CidGenerator cids;
  std::vector<std::vector<std::string>> made(4);
  std::vector<std::thread> threads;
  for (auto& out : made) {
    threads.emplace_back([&cids, &out] {
      for (int i = 0; i < 5000; ++i) out.push_back(cids.Next());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& out : made) all.insert(out.begin(), out.end());
  EXPECT_EQ(all.size(), 20000u);
}

TEST(IsWellFormedCid, RejectsMalformed) {
  EXPECT_FALSE(IsWellFormedCid(""));
  EXPECT_FALSE(IsWellFormedCid("not-a-cid"));
  EXPECT_FALSE(IsWellFormedCid("0190F1D2-7A3B-7C4D-8E5F-0123456789AB"));  // upper case
  EXPECT_FALSE(IsWellFormedCid("0190f1d2-7a3b-4c4d-8e5f-0123456789ab"));  // version 4
  EXPECT_FALSE(IsWellFormedCid("0190f1d2x7a3b-7c4d-8e5f-0123456789ab"));
  EXPECT_TRUE(IsWellFormedCid("0190f1d2-7a3b-7c4d-8e5f-0123456789ab"));
}

}  // namespace
}  // namespace callmesh
