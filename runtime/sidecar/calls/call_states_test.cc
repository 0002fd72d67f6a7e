#include "runtime/sidecar/calls/call_states.h"

#include "gtest/gtest.h"

namespace callmesh::calls {
namespace {

TEST(CallStates, OnlyOutcomesAreTerminal) {
  const struct {
    v1::CallState state;
    bool terminal;
    const char* name;
  } kCases[] = {
      {v1::CALL_STATE_UNSPECIFIED, false, "UNSPECIFIED"},
      {v1::CALL_STATE_ACCEPTED, false, "ACCEPTED"},
      {v1::CALL_STATE_RUNNING, false, "RUNNING"},
      {v1::CALL_STATE_SUCCEEDED, true, "SUCCEEDED"},
      {v1::CALL_STATE_FAILED, true, "FAILED"},
      {v1::CALL_STATE_CANCELLED, true, "CANCELLED"},
      {v1::CALL_STATE_EXPIRED, true, "EXPIRED"},
  };
  for (const auto& c : kCases) {
    EXPECT_EQ(IsTerminal(c.state), c.terminal) << c.name;
    EXPECT_EQ(StateName(c.state), c.name);
  }
  EXPECT_EQ(StateName(static_cast<v1::CallState>(99)), "99");
  EXPECT_EQ(DeliveryName(v1::DELIVERY_STATE_DEAD_LETTERED), "DEAD_LETTERED");
}

}  // namespace
}  // namespace callmesh::calls
