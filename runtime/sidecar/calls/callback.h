// The one rule for where a call's completion is pushed (DESIGN.md "Callback resolution"):
// the explicit `callback` service if the caller named one; else, for an InvokeAsync, a registered
// service named `<source>-async-callback`; else none (the result is still streamed and pollable).
// Casts never have a callback.
//
// The rule is applied at acceptance (the convention callback is written into the envelope, so a
// completion right after a restart of this sidecar, before the callback service has registered
// again, keeps it) and again at completion (a callback service that registered meanwhile counts).
#pragma once

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "callmesh/v1/call.pb.h"

namespace callmesh::calls {

// Whether a service name is registered now (Registry::Contains).
using IsRegistered = absl::FunctionRef<bool(absl::string_view service)>;

// The callback of a call with this envelope, by the rule above; "" = none.
std::string ResolveCallback(const v1::CallEnvelope& envelope, IsRegistered is_registered);

// The callback a completed call's outcome is owed to, read back from the stored call (after a
// restart, for a redrive): the resolved one recorded with the call, else the envelope's, else the
// convention's. Only meaningful while its delivery is not NONE.
std::string CallbackOfCompleted(const v1::Call& call);

// The callback as GetCall, WaitCall and ListCalls show it: for a terminal call the one its
// completion went to ("" if none), for a live call the one it would go to now.
std::string ShownCallback(const v1::Call& call, IsRegistered is_registered);

}  // namespace callmesh::calls
