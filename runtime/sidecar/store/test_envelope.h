// The call envelope that store tests accept: a fixed method, a payload and a header that name the
// call, so that a test can tell records apart after a reopen.
//
//   v1::CallEnvelope envelope = TestEnvelope(cids.Next(), now, "greeter", "app", "key-1");
#pragma once

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "callmesh/v1/call.pb.h"
#include "runtime/common/proto_time.h"

namespace callmesh::sidecar {

// An INVOKE_ASYNC envelope with `cid`, accepted at `accepted_at`, to `service` from `source`, with
// `idempotency_key` (none if empty).
inline v1::CallEnvelope TestEnvelope(const std::string& cid, absl::Time accepted_at,
                                     const std::string& service, const std::string& source,
                                     const std::string& idempotency_key) {
  v1::CallEnvelope envelope;
  envelope.set_cid(cid);
  envelope.set_kind(v1::CALL_KIND_INVOKE_ASYNC);
  envelope.set_service(service);
  envelope.set_method("helloworld.Greeter/SayHello");
  envelope.set_payload(absl::StrCat("payload of ", cid));
  envelope.set_source(source);
  envelope.set_idempotency_key(idempotency_key);
  (*envelope.mutable_headers())["x-tenant"] = "blue";
  *envelope.mutable_accepted_at() = ToProtoTimestamp(accepted_at);
  return envelope;
}

}  // namespace callmesh::sidecar
