#include "runtime/sidecar/calls/trace_context.h"

#include <string>

#include "gtest/gtest.h"

namespace callmesh::calls {
namespace {

constexpr char kValid[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

TEST(TraceContext, TraceparentFollowsTheW3cFormat) {
  const struct {
    std::string traceparent;
    bool valid;
  } kCases[] = {
      {kValid, true},
      {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", true},
      // A future version may append fields after a '-'.
      {"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", true},
      {"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x", false},
      {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", false},
      {"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", false},
      {"00-00000000000000000000000000000000-b7ad6b7169203331-01", false},
      {"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", false},
      {"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", false},  // upper case
      {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331", false},     // no flags
      {"00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01", false},
      {"00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01", false},  // short trace-id
      {"00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01", false},
      {"", false},
  };
  for (const auto& c : kCases) {
    EXPECT_EQ(IsValidTraceparent(c.traceparent), c.valid) << c.traceparent;
  }
}

TEST(TraceContext, TracestateListMembers) {
  EXPECT_TRUE(IsValidTracestate("congo=t61rcWkgMzE"));
  EXPECT_TRUE(IsValidTracestate("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE"));
  EXPECT_TRUE(IsValidTracestate("tenant@vendor=x,,  a/b*c_d-e=1"));
  EXPECT_FALSE(IsValidTracestate("novalue"));
  EXPECT_FALSE(IsValidTracestate("Upper=1"));
  EXPECT_FALSE(IsValidTracestate("k=a=b"));
  EXPECT_TRUE(IsValidTracestate("k=trailing "));  // spaces around a member are allowed
  EXPECT_FALSE(IsValidTracestate("k=\x01"));
  std::string many;
  for (int i = 0; i < 33; ++i) many += "k" + std::to_string(i) + "=v,";
  EXPECT_FALSE(IsValidTracestate(many));
  EXPECT_FALSE(IsValidTracestate("k=" + std::string(511, 'v')));
}

TEST(TraceContext, CarriesBothOnlyWithAValidTraceparent) {
  TraceContext both = CheckTraceContext(kValid, "congo=t61rcWkgMzE");
  EXPECT_EQ(both.traceparent, kValid);
  EXPECT_EQ(both.tracestate, "congo=t61rcWkgMzE");
  TraceContext no_state = CheckTraceContext(kValid, "not a list member");
  EXPECT_EQ(no_state.traceparent, kValid);
  EXPECT_EQ(no_state.tracestate, "");
  TraceContext none = CheckTraceContext("garbage", "congo=t61rcWkgMzE");
  EXPECT_EQ(none.traceparent, "");
  EXPECT_EQ(none.tracestate, "");
}

}  // namespace
}  // namespace callmesh::calls
