// DescriptorSource over a FileDescriptorSet file, and method-name resolution shared by all
// sources.
#include <google/protobuf/descriptor.pb.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "cli/reflection/descriptor_source.h"
#include "cli/reflection/pool_builder.h"

namespace callmesh::cli {
namespace {

class ProtosetSource final : public DescriptorSource {
 public:
  explicit ProtosetSource(std::string path) : path_(std::move(path)) {}

  absl::Status Load() {
    std::ifstream in(path_, std::ios::binary);
    if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read protoset ", path_));
    std::stringstream bytes;
    bytes << in.rdbuf();
    google::protobuf::FileDescriptorSet set;
    if (!set.ParseFromString(bytes.str())) {
      return absl::InvalidArgumentError(
          absl::StrCat("protoset ", path_,
                       " is not a FileDescriptorSet (make it with protoc --descriptor_set_out=FILE "
                       "--include_imports)"));
    }
    for (const auto& file : set.file()) pool_.Add(file);
    if (std::vector<std::string> missing = pool_.MissingDependencies(); !missing.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("protoset ", path_, " lacks imports ",
                                                     absl::StrJoin(missing, ", "),
                                                     " (regenerate it with --include_imports)"));
    }
    if (absl::Status s = pool_.BuildAll(); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("protoset ", path_, ": ", s.message()));
    }
    for (const auto& file : set.file()) {
      const std::string package = file.package().empty() ? "" : file.package() + ".";
      for (const auto& service : file.service()) services_.push_back(package + service.name());
    }
    std::sort(services_.begin(), services_.end());
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListServices() override { return services_; }

  absl::StatusOr<const google::protobuf::ServiceDescriptor*> FindService(
      const std::string& full_name) override {
    if (const auto* found = pool_.pool().FindServiceByName(full_name)) return found;
    return absl::NotFoundError(absl::StrCat("service ", full_name, " is not in protoset ", path_));
  }

  absl::StatusOr<const google::protobuf::Descriptor*> FindMessageType(
      const std::string& full_name) override {
    if (const auto* found = pool_.pool().FindMessageTypeByName(full_name)) return found;
    return absl::NotFoundError(
        absl::StrCat("message type ", full_name, " is not in protoset ", path_));
  }

  std::string description() const override { return "protoset " + path_; }

 private:
  std::string path_;
  PoolBuilder pool_;
  std::vector<std::string> services_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DescriptorSource>> LoadProtoset(const std::string& path) {
  auto source = std::make_unique<ProtosetSource>(path);
  if (absl::Status s = source->Load(); !s.ok()) return s;
  return source;
}

std::string MethodName(const google::protobuf::MethodDescriptor& method) {
  return absl::StrCat(method.service()->full_name(), "/", method.name());
}

absl::StatusOr<const google::protobuf::MethodDescriptor*> ResolveMethod(DescriptorSource& source,
                                                                        absl::string_view method,
                                                                        absl::string_view target) {
  absl::string_view name = absl::StripPrefix(method, "/");
  if (name.empty()) return absl::InvalidArgumentError("the method name is empty");
  size_t split = name.rfind('/');
  if (split == absl::string_view::npos) split = name.rfind('.');
  if (split != absl::string_view::npos) {
    const std::string service_name(name.substr(0, split));
    const std::string method_name(name.substr(split + 1));
    absl::StatusOr<const google::protobuf::ServiceDescriptor*> service =
        source.FindService(service_name);
    if (!service.ok()) {
      if (service.status().code() != absl::StatusCode::kNotFound) return service.status();
      absl::StatusOr<std::vector<std::string>> names = source.ListServices();
      return absl::NotFoundError(absl::StrCat(
          "unknown gRPC service ", service_name, " on ", target,
          names.ok() ? absl::StrCat(" (it serves: ", absl::StrJoin(*names, ", "), ")") : ""));
    }
    if (const auto* found = (*service)->FindMethodByName(method_name)) return found;
    std::vector<std::string> methods;
    for (int i = 0; i < (*service)->method_count(); ++i) {
      methods.push_back(MethodName(*(*service)->method(i)));
    }
    return absl::NotFoundError(absl::StrCat("unknown method ", method_name, " in ", service_name,
                                            " (methods: ", absl::StrJoin(methods, ", "), ")"));
  }
  absl::StatusOr<std::vector<std::string>> services = source.ListServices();
  if (!services.ok()) return services.status();
  std::vector<const google::protobuf::MethodDescriptor*> candidates;
  std::vector<std::string> all;
  for (const std::string& service_name : *services) {
    absl::StatusOr<const google::protobuf::ServiceDescriptor*> service =
        source.FindService(service_name);
    if (!service.ok()) return service.status();
    for (int i = 0; i < (*service)->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* m = (*service)->method(i);
      all.push_back(MethodName(*m));
      if (m->name() == name) candidates.push_back(m);
    }
  }
  if (candidates.size() == 1) return candidates.front();
  if (candidates.empty()) {
    return absl::NotFoundError(absl::StrCat("unknown method ", name, " on ", target,
                                            " (methods: ", absl::StrJoin(all, ", "), ")"));
  }
  std::vector<std::string> names;
  for (const auto* m : candidates) names.push_back(MethodName(*m));
  return absl::InvalidArgumentError(absl::StrCat("ambiguous method ", name, " on ", target,
                                                 ": candidates ", absl::StrJoin(names, ", "),
                                                 " (pass the full name)"));
}

}  // namespace callmesh::cli
