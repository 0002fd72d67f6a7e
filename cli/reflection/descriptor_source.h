// Where the CLI gets the protobuf descriptors of a target's services: gRPC server reflection on
// one of its instances, or a FileDescriptorSet file (`protoc --descriptor_set_out
// --include_imports`) when the target serves no reflection.
//
//   std::unique_ptr<DescriptorSource> source =
//       NewReflectionSource(grpc::CreateChannel("127.0.0.1:50051", ...), absl::Seconds(10));
//   absl::StatusOr<const google::protobuf::MethodDescriptor*> method =
//       ResolveMethod(*source, "SayHello", "greeter");
//   // (*method)->input_type() / output_type() drive the JSON transcoding.
//
// Reflection tries `grpc.reflection.v1` first and falls back to `grpc.reflection.v1alpha` (all
// that gRPC 1.51 serves) when the server answers UNIMPLEMENTED; the choice is remembered. Files
// are fetched with file_containing_symbol, then their missing dependencies with file_by_filename,
// transitively, and built into a DescriptorPool owned by the source.
//
// Not thread-safe: use one source per thread. Descriptors returned live as long as the source.
#pragma once

#include <google/protobuf/descriptor.h>
#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace callmesh::cli {

class DescriptorSource {
 public:
  virtual ~DescriptorSource() = default;

  // Fully-qualified names of the services the target exposes, sorted, without the
  // infrastructure services (grpc.health.*, grpc.reflection.*). Errors: the reflection RPC's
  // status (UNAVAILABLE, UNIMPLEMENTED when the target serves no reflection, ...).
  virtual absl::StatusOr<std::vector<std::string>> ListServices() = 0;

  // The service `full_name` ("package.Service") with every type it uses. NOT_FOUND if the target
  // does not know it; other codes as for ListServices.
  virtual absl::StatusOr<const google::protobuf::ServiceDescriptor*> FindService(
      const std::string& full_name) = 0;

  // The message type `full_name`, fetched if needed. NOT_FOUND if unknown.
  virtual absl::StatusOr<const google::protobuf::Descriptor*> FindMessageType(
      const std::string& full_name) = 0;

  // Which protocol answered ("grpc.reflection.v1", "grpc.reflection.v1alpha", "protoset FILE").
  virtual std::string description() const = 0;
};

// Server reflection over `channel`; each reflection exchange is bounded by `timeout`.
std::unique_ptr<DescriptorSource> NewReflectionSource(std::shared_ptr<grpc::Channel> channel,
                                                      absl::Duration timeout);

// Descriptors from a serialized google.protobuf.FileDescriptorSet. INVALID_ARGUMENT naming the
// file if it cannot be read or parsed, or if a file in it does not build (e.g. a missing import:
// regenerate with --include_imports).
absl::StatusOr<std::unique_ptr<DescriptorSource>> LoadProtoset(const std::string& path);

// Resolves METHOD as typed by a user: "pkg.Service/Method" (a leading "/" and the form
// "pkg.Service.Method" are accepted) or just "Method" when exactly one service of the target has
// it. `target` names the mesh service in messages. Errors: NOT_FOUND for an unknown service or
// method (listing what exists), INVALID_ARGUMENT for an ambiguous short name (listing the
// candidates) or an empty name.
absl::StatusOr<const google::protobuf::MethodDescriptor*> ResolveMethod(DescriptorSource& source,
                                                                        absl::string_view method,
                                                                        absl::string_view target);

// "pkg.Service/Method" of a method descriptor.
std::string MethodName(const google::protobuf::MethodDescriptor& method);

}  // namespace callmesh::cli
