#include "runtime/sdk/context.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace callmesh {
namespace {

// A real loopback server whose every call records the Context it saw and answers OK.
class RecordingService final : public grpc::CallbackGenericService {
 public:
  Context seen;
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    seen = Context::From(*ctx);
    class Reply final : public grpc::ServerGenericBidiReactor {
     public:
      Reply() { Finish(grpc::Status::OK); }
      void OnDone() override { delete this; }
    };
    return new Reply();
  }
};

Context RoundTrip(const std::vector<std::pair<std::string, std::string>>& metadata) {
  RecordingService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterCallbackGenericService(&service);
  auto server = builder.BuildAndStart();
  grpc::GenericStub stub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  for (const auto& [k, v] : metadata) context.AddMetadata(k, v);
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), reply;
  absl::Notification done;
  stub.UnaryCall(&context, "/test.Svc/Call", grpc::StubOptions(), &request, &reply,
                 [&done](grpc::Status) { done.Notify(); });
  done.WaitForNotification();
  server->Shutdown();
  return service.seen;
}

TEST(Context, ReadsCallmeshMetadataAndHeaders) {
  Context c = RoundTrip({{"callmesh-cid", "0190f1d2-7a3b-7c4d-8e5f-0123456789ab"},
                         {"callmesh-source", "hello"},
                         {"callmesh-attempt", "3"},
                         {"callmesh-deadline", "2030-01-02T03:04:05Z"},
                         {"callmesh-parent-cid", "parent"},
                         {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                         {"tracestate", "congo=t61rcWkgMzE"},
                         {"tenant", "acme"}});
  EXPECT_EQ(c.cid(), "0190f1d2-7a3b-7c4d-8e5f-0123456789ab");
  EXPECT_EQ(c.source(), "hello");
  EXPECT_EQ(c.attempt(), 3u);
  EXPECT_EQ(c.parent_cid(), "parent");
  EXPECT_EQ(c.traceparent(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(c.tracestate(), "congo=t61rcWkgMzE");
  EXPECT_EQ(c.headers().count("tracestate"), 0u);
  EXPECT_EQ(c.deadline(), absl::FromUnixSeconds(1893553445));
  ASSERT_EQ(c.headers().count("tenant"), 1u);
  EXPECT_EQ(c.headers().at("tenant"), "acme");
  EXPECT_EQ(c.headers().count("callmesh-cid"), 0u);
  EXPECT_EQ(c.headers().count("user-agent"), 0u);
}

TEST(Context, DirectCallHasEmptyContextAndRpcDeadline) {
  Context c = RoundTrip({{"callmesh-attempt", "not-a-number"}});
  EXPECT_EQ(c.cid(), "");
  EXPECT_EQ(c.attempt(), 0u);
  EXPECT_LT(c.deadline(), absl::Now() + absl::Seconds(31));
  EXPECT_GT(c.deadline(), absl::Now());
}

TEST(Context, PropagatesCidAsParent) {
  Context outer =
      RoundTrip({{"callmesh-cid", "cid-1"}, {"traceparent", "tp"}, {"tracestate", "ts=1"}});
  grpc::ClientContext onward;
  outer.PropagateTo(&onward);
  // ClientContext does not expose metadata it will send, so check it by sending it.
  RecordingService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterCallbackGenericService(&service);
  auto server = builder.BuildAndStart();
  grpc::GenericStub stub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), reply;
  absl::Notification done;
  stub.UnaryCall(&onward, "/test.Svc/Call", grpc::StubOptions(), &request, &reply,
                 [&done](grpc::Status) { done.Notify(); });
  done.WaitForNotification();
  server->Shutdown();
  EXPECT_EQ(service.seen.parent_cid(), "cid-1");
  EXPECT_EQ(service.seen.traceparent(), "tp");
  EXPECT_EQ(service.seen.tracestate(), "ts=1");
}

}  // namespace
}  // namespace callmesh
