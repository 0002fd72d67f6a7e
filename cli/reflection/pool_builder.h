// Builds FileDescriptorProtos that arrive in any order (from reflection or a protoset) into a
// DescriptorPool, dependencies first, with errors collected instead of logged.
//
//   PoolBuilder builder;
//   builder.Add(file_proto);                     // any order
//   if (builder.MissingDependencies().empty()) CALLMESH_RETURN_IF_ERROR(builder.BuildAll());
//   builder.pool().FindServiceByName("greeter.v1.Greeter");
//
// Not thread-safe.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace callmesh::cli {

class PoolBuilder {
 public:
  // Remembers `file` (a later file with the same name is ignored).
  void Add(google::protobuf::FileDescriptorProto file);

  // Names imported by added files but not added themselves, sorted.
  std::vector<std::string> MissingDependencies() const;

  // Builds every added file not yet built. INVALID_ARGUMENT naming the file and protobuf's reason
  // if one does not build (a missing import, a duplicate symbol, ...).
  absl::Status BuildAll();

  const google::protobuf::DescriptorPool& pool() const { return pool_; }

 private:
  absl::Status Build(const std::string& name, int depth);

  std::map<std::string, google::protobuf::FileDescriptorProto> files_;
  google::protobuf::DescriptorPool pool_;
};

}  // namespace callmesh::cli
