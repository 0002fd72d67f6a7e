// The states of a call's life and their names: ACCEPTED → RUNNING → one terminal outcome
// (SUCCEEDED, FAILED, CANCELLED, EXPIRED), never changed once journaled (DESIGN.md "States").
#pragma once

#include <string>

#include "callmesh/v1/call.pb.h"

namespace callmesh::calls {

// SUCCEEDED, FAILED, CANCELLED or EXPIRED.
bool IsTerminal(v1::CallState state);

// "RUNNING", "DEAD_LETTERED": enum value names without their prefix, for messages and logs;
// the number for a value this build does not know.
std::string StateName(v1::CallState state);
std::string DeliveryName(v1::DeliveryState state);

}  // namespace callmesh::calls
