// What store tests share: the envelope they accept (a fixed method, a payload and a header that
// name the call, so that a test can tell records apart after a reopen) and the list of every CID.
//
//   v1::CallEnvelope envelope = TestEnvelope(cids.Next(), now, "greeter", "app", "key-1");
//   std::vector<std::string> cids = AllCids(store);   // in CID order
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "callmesh/v1/call.pb.h"
#include "gtest/gtest.h"
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/store/call_store.h"

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

// Every CID in `store`, in CID (acceptance) order; a failed page is a test failure.
inline std::vector<std::string> AllCids(const CallStore& store) {
  std::vector<std::string> cids;
  std::string token;
  do {
    auto page = store.ListCalls({}, 1000, token);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) break;
    for (const v1::Call& call : page->first) cids.push_back(call.envelope().cid());
    token = page->second;
  } while (!token.empty());
  std::sort(cids.begin(), cids.end());  // listed newest first; tests compare in CID order
  return cids;
}

}  // namespace callmesh::sidecar
