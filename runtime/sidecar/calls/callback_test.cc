#include "runtime/sidecar/calls/callback.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace callmesh::calls {
namespace {

v1::CallEnvelope Envelope(v1::CallKind kind, const std::string& source,
                          const std::string& callback) {
  v1::CallEnvelope envelope;
  envelope.set_kind(kind);
  envelope.set_source(source);
  envelope.set_callback(callback);
  return envelope;
}

TEST(ResolveCallback, ExplicitThenRegisteredConventionThenNone) {
  const std::set<std::string> registered = {"app-async-callback", "audit"};
  auto is_registered = [&](absl::string_view s) { return registered.count(std::string(s)) > 0; };
  const struct {
    v1::CallKind kind;
    const char* source;
    const char* callback;
    const char* want;
  } kCases[] = {
      {v1::CALL_KIND_INVOKE_ASYNC, "app", "audit", "audit"},
      {v1::CALL_KIND_INVOKE_ASYNC, "app", "unregistered-explicit", "unregistered-explicit"},
      {v1::CALL_KIND_INVOKE_ASYNC, "app", "", "app-async-callback"},
      {v1::CALL_KIND_INVOKE_ASYNC, "other", "", ""},
      {v1::CALL_KIND_INVOKE_ASYNC, "", "", ""},
      {v1::CALL_KIND_CAST, "app", "", ""},
      {v1::CALL_KIND_CAST, "app", "audit", ""},
  };
  for (const auto& c : kCases) {
    EXPECT_EQ(ResolveCallback(Envelope(c.kind, c.source, c.callback), is_registered), c.want)
        << "source=" << c.source << " callback=" << c.callback;
  }
}

TEST(CallbackOfCompleted, RecordedThenEnvelopeThenConvention) {
  v1::Call call;
  *call.mutable_envelope() = Envelope(v1::CALL_KIND_INVOKE_ASYNC, "app", "");
  EXPECT_EQ(CallbackOfCompleted(call), "app-async-callback");
  call.mutable_envelope()->set_callback("audit");
  EXPECT_EQ(CallbackOfCompleted(call), "audit");
  call.set_callback("resolved");
  EXPECT_EQ(CallbackOfCompleted(call), "resolved");
}

TEST(ShownCallback, LiveCallsResolveNowTerminalOnesShowWhereTheirCompletionWent) {
  auto none_registered = [](absl::string_view) { return false; };
  auto all_registered = [](absl::string_view) { return true; };
  v1::Call call;
  *call.mutable_envelope() = Envelope(v1::CALL_KIND_INVOKE_ASYNC, "app", "");
  call.set_state(v1::CALL_STATE_RUNNING);
  EXPECT_EQ(ShownCallback(call, none_registered), "");
  EXPECT_EQ(ShownCallback(call, all_registered), "app-async-callback");
  call.set_state(v1::CALL_STATE_SUCCEEDED);
  call.set_callback_delivery(v1::DELIVERY_STATE_NONE);
  EXPECT_EQ(ShownCallback(call, all_registered), "");
  call.set_callback_delivery(v1::DELIVERY_STATE_DELIVERED);
  EXPECT_EQ(ShownCallback(call, none_registered), "app-async-callback");
  call.set_callback("recorded");
  EXPECT_EQ(ShownCallback(call, none_registered), "recorded");
}

}  // namespace
}  // namespace callmesh::calls
