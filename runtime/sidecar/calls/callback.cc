#include "runtime/sidecar/calls/callback.h"

#include "runtime/common/names.h"
#include "runtime/sidecar/calls/call_states.h"

namespace callmesh::calls {

std::string ResolveCallback(const v1::CallEnvelope& envelope, IsRegistered is_registered) {
  if (envelope.kind() != v1::CALL_KIND_INVOKE_ASYNC) return "";
  if (!envelope.callback().empty()) return envelope.callback();
  if (envelope.source().empty()) return "";
  std::string convention = ConventionCallback(envelope.source());
  return is_registered(convention) ? convention : "";
}

std::string CallbackOfCompleted(const v1::Call& call) {
  if (!call.callback().empty()) return call.callback();
  if (!call.envelope().callback().empty()) return call.envelope().callback();
  return ConventionCallback(call.envelope().source());
}

std::string ShownCallback(const v1::Call& call, IsRegistered is_registered) {
  if (!call.callback().empty()) return call.callback();
  if (!IsTerminal(call.state())) return ResolveCallback(call.envelope(), is_registered);
  return call.callback_delivery() != v1::DELIVERY_STATE_NONE ? CallbackOfCompleted(call) : "";
}

}  // namespace callmesh::calls
