#include "runtime/sidecar/calls/call_states.h"

#include "gtest/gtest.h"
#include "runtime/common/proto_time.h"

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

TEST(CallStates, CopyMutableFieldsCopiesOnlyWhatChangesWhileACallRuns) {
  v1::Call from;
  from.mutable_envelope()->set_cid("other");
  from.set_state(v1::CALL_STATE_RUNNING);
  from.set_attempts(3);
  from.mutable_started_at()->set_seconds(10);
  from.set_last_status_code(14);
  from.set_last_status_message("unavailable");
  from.set_callback("app-async-callback");
  v1::Call to;
  to.mutable_envelope()->set_cid("mine");
  to.mutable_envelope()->set_payload("payload");
  to.mutable_accepted_at()->set_seconds(5);
  to.mutable_next_attempt_at()->set_seconds(20);  // unset in `from`: cleared
  CopyMutableFields(from, &to);
  EXPECT_EQ(to.envelope().cid(), "mine");
  EXPECT_EQ(to.envelope().payload(), "payload");
  EXPECT_EQ(to.accepted_at().seconds(), 5);
  EXPECT_EQ(to.state(), v1::CALL_STATE_RUNNING);
  EXPECT_EQ(to.attempts(), 3u);
  EXPECT_EQ(to.started_at().seconds(), 10);
  EXPECT_EQ(to.last_status_code(), 14);
  EXPECT_EQ(to.last_status_message(), "unavailable");
  EXPECT_EQ(to.callback(), "app-async-callback");
  EXPECT_FALSE(to.has_next_attempt_at());
}

TEST(CallStates, BeginAttemptNumbersTheAttemptAndKeepsTheFirstStart) {
  const absl::Time first = absl::FromUnixSeconds(1000);
  v1::Call call;
  call.set_state(v1::CALL_STATE_ACCEPTED);
  BeginAttempt(first, &call);
  EXPECT_EQ(call.state(), v1::CALL_STATE_RUNNING);
  EXPECT_EQ(call.attempts(), 1u);
  EXPECT_EQ(FromProtoTimestamp(call.started_at()), first);

  // A retry: the next number, the first start kept, the scheduled retry time cleared.
  *call.mutable_next_attempt_at() = ToProtoTimestamp(first + absl::Seconds(2));
  call.set_last_status_code(14);
  BeginAttempt(first + absl::Seconds(3), &call);
  EXPECT_EQ(call.attempts(), 2u);
  EXPECT_EQ(FromProtoTimestamp(call.started_at()), first);
  EXPECT_FALSE(call.has_next_attempt_at());
  EXPECT_EQ(call.last_status_code(), 14);  // the last attempt's outcome stays until the next one
}

}  // namespace
}  // namespace callmesh::calls
