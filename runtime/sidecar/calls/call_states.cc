#include "runtime/sidecar/calls/call_states.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "runtime/common/proto_time.h"

namespace callmesh::calls {

bool IsTerminal(v1::CallState state) {
  return state == v1::CALL_STATE_SUCCEEDED || state == v1::CALL_STATE_FAILED ||
         state == v1::CALL_STATE_CANCELLED || state == v1::CALL_STATE_EXPIRED;
}

namespace {
std::string WithoutPrefix(const std::string& name, absl::string_view prefix, int value) {
  absl::string_view shown = name;
  absl::ConsumePrefix(&shown, prefix);
  return shown.empty() ? absl::StrCat(value) : std::string(shown);
}
}  // namespace

std::string StateName(v1::CallState state) {
  return WithoutPrefix(v1::CallState_Name(state), "CALL_STATE_", static_cast<int>(state));
}

std::string DeliveryName(v1::DeliveryState state) {
  return WithoutPrefix(v1::DeliveryState_Name(state), "DELIVERY_STATE_", static_cast<int>(state));
}

void CopyMutableFields(const v1::Call& from, v1::Call* to) {
  to->set_state(from.state());
  to->set_attempts(from.attempts());
  *to->mutable_started_at() = from.started_at();
  if (!from.has_started_at()) to->clear_started_at();
  to->set_last_status_code(from.last_status_code());
  to->set_last_status_message(from.last_status_message());
  *to->mutable_next_attempt_at() = from.next_attempt_at();
  if (!from.has_next_attempt_at()) to->clear_next_attempt_at();
  to->set_callback(from.callback());
}

void BeginAttempt(absl::Time now, v1::Call* call) {
  call->set_state(v1::CALL_STATE_RUNNING);
  call->set_attempts(call->attempts() + 1);
  if (!call->has_started_at()) *call->mutable_started_at() = ToProtoTimestamp(now);
  call->clear_next_attempt_at();
}

}  // namespace callmesh::calls
