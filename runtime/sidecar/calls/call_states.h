// The states of a call's life and their names: ACCEPTED → RUNNING → one terminal outcome
// (SUCCEEDED, FAILED, CANCELLED, EXPIRED), never changed once journaled (DESIGN.md "States").
#pragma once

#include <string>

#include "absl/time/time.h"
#include "callmesh/v1/call.pb.h"

namespace callmesh::calls {

// SUCCEEDED, FAILED, CANCELLED or EXPIRED.
bool IsTerminal(v1::CallState state);

// "RUNNING", "DEAD_LETTERED": enum value names without their prefix, for messages and logs;
// the number for a value this build does not know.
std::string StateName(v1::CallState state);
std::string DeliveryName(v1::DeliveryState state);

// The fields of a non-terminal call that change while it runs — state, attempts, started_at,
// last_status_code, last_status_message, next_attempt_at and callback (CallStore::UpdateCall) —
// copied from `from` into `to` (an unset timestamp clears it); nothing else of `to` changes.
void CopyMutableFields(const v1::Call& from, v1::Call* to);

// What is journaled before an attempt starts, so that an attempt after a crash always carries a
// higher number than any the target saw: state RUNNING, attempts + 1, started_at = `now` if the
// call never started before, next_attempt_at cleared. The one rule for the dispatcher's attempt
// record and for an accept that records attempt 1 with it (CallStore::FirstAttempt).
void BeginAttempt(absl::Time now, v1::Call* call);

}  // namespace callmesh::calls
