// protoc-gen-callmesh: for every service `Foo` in a .proto file, a typed mesh client and a typed
// callback base, written to `<file>.callmesh.h` and `<file>.callmesh.cc` next to protoc's
// `<file>.pb.h`.
//
//   protoc -I. --cpp_out=out --plugin=protoc-gen-callmesh=PATH --callmesh_out=out foo/foo.proto
//
// Per service `package.Foo` with a unary method `Bar(BarRequest) returns (BarReply)`:
//
//   class FooClient {                                  // over callmesh::Mesh (runtime/sdk/mesh.h)
//     FooClient(callmesh::Mesh& mesh, std::string service);
//     absl::StatusOr<BarReply> Bar(const BarRequest&, const callmesh::CallOptions& = {});
//     absl::StatusOr<callmesh::Cid> BarAsync(const BarRequest&,
//                                            const callmesh::AsyncOptions& = {});
//     absl::StatusOr<callmesh::Cid> BarAsync(const BarRequest&, const callmesh::AsyncOptions&,
//                                            std::function<void(absl::StatusOr<BarReply>)> done);
//     absl::StatusOr<callmesh::Cid> BarCast(const BarRequest&, const callmesh::AsyncOptions& = {});
//     absl::StatusOr<BarReply> AwaitBar(const callmesh::Cid&, absl::Duration timeout);
//   };
//   // Served by ServiceHost::AddCallbacks.
//   class FooCallbacks : public callmesh::CallbackHandler {
//     virtual void OnBar(const callmesh::CallInfo&, const BarReply&);        // default: logs
//     virtual void OnBarError(const callmesh::CallInfo&, const absl::Status&); // default: logs
//   };
//
// Events (publish/subscribe; the naming convention that declares them): a service whose name ends
// in `Events` (and is longer than that) is an event service. Each of its methods
// `Bar(BarEvent) returns (google.protobuf.Empty)` declares the event type BarEvent on the topic
// "<package>.<Service>.Bar" (e.g. "orders.v1.OrderEvents.OrderPlaced"). Instead of a client and
// callbacks, it gets:
//
//   class FooEventsPublisher {                          // over callmesh::Mesh::Publish
//     static constexpr char kBarTopic[] = "package.FooEvents.Bar";
//     explicit FooEventsPublisher(callmesh::Mesh& mesh);
//     absl::StatusOr<callmesh::v1::PublishResponse> PublishBar(const BarEvent&,
//                                                           const callmesh::PublishOptions& = {});
//   };
//   // Served and subscribed by ServiceHost::AddSubscriber (runtime/sdk/event_subscriber.h).
//   class FooEventsSubscriber : public callmesh::EventSubscriber {
//     static constexpr char kBarTopic[] = "package.FooEvents.Bar";
//     virtual absl::Status OnBar(const callmesh::EventContext&, const BarEvent&) = 0;
//   };
//
// Every handler is pure virtual: a subscriber subscribes to every topic of its event service, so
// no event is acknowledged without code that handles it (put events that different services
// want into different event services). A method named like its message type names the type with
// a leading dot (`rpc OrderPlaced(.orders.v1.OrderPlaced) ...`), since in .proto scope the
// method's name hides the message's. An event method that is streaming or does not return
// google.protobuf.Empty is refused, as is a topic over 128 characters.
//
// Decisions (each refused case is an error naming the file, service or method, and nothing is
// written):
// - Streaming methods are refused: the sidecar forwards unary calls only. The parameter
//   `skip_streaming` leaves them out instead (a comment in the header lists them).
// - A method whose name is a C++ keyword gets a trailing underscore on the synchronous client
//   method (`delete` -> `delete_()`, `deleteAsync`, `Awaitdelete`, `Ondelete`), like protobuf's
//   own C++ names. A package component that is a C++ keyword is refused (protobuf's C++ output
//   for it does not compile either).
// - A file without a package is generated in the global namespace (methods "Foo/Bar").
// - Generated names that clash are refused: two methods giving the same member (`Bar` and
//   `BarAsync`: both would make `BarAsync`), a member equal to its class name or to one the class
//   defines, and a generated class (`FooClient`, `FooCallbacks`) equal to a message, enum, enum
//   value, extension or service of the same file or to another generated class.
// - Parameters (comma separated): `skip_streaming`, `sdk_include_dir=DIR` (where mesh.h and
//   callback_router.h are included from; default runtime/sdk). Any other is an error naming it.
#pragma once

#include <string>

#include "google/protobuf/compiler/code_generator.h"

namespace callmesh::stubs {

class Generator final : public google::protobuf::compiler::CodeGenerator {
 public:
  bool Generate(const google::protobuf::FileDescriptor* file, const std::string& parameter,
                google::protobuf::compiler::GeneratorContext* context,
                std::string* error) const override;

  uint64_t GetSupportedFeatures() const override { return FEATURE_PROTO3_OPTIONAL; }
};

}  // namespace callmesh::stubs
