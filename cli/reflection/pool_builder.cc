#include "cli/reflection/pool_builder.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace callmesh::cli {
namespace {

class CollectingErrors final : public google::protobuf::DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element_name,
                const google::protobuf::Message*, ErrorLocation,
                const std::string& message) override {
    errors_.push_back(absl::StrCat(element_name.empty() ? filename : element_name, ": ", message));
  }
  std::string text() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::vector<std::string> errors_;
};

}  // namespace

void PoolBuilder::Add(google::protobuf::FileDescriptorProto file) {
  std::string name = file.name();
  files_.emplace(std::move(name), std::move(file));
}

std::vector<std::string> PoolBuilder::MissingDependencies() const {
  std::set<std::string> missing;
  for (const auto& [name, file] : files_) {
    for (const std::string& dependency : file.dependency()) {
      if (files_.count(dependency) == 0) missing.insert(dependency);
    }
  }
  return {missing.begin(), missing.end()};
}

absl::Status PoolBuilder::Build(const std::string& name, int depth) {
  if (pool_.FindFileByName(name) != nullptr) return absl::OkStatus();
  auto it = files_.find(name);
  if (it == files_.end()) {
    return absl::InvalidArgumentError(absl::StrCat("descriptor of ", name, " is missing"));
  }
  if (depth > 100) {
    return absl::InvalidArgumentError(absl::StrCat("import cycle through ", name));
  }
  for (const std::string& dependency : it->second.dependency()) {
    if (absl::Status s = Build(dependency, depth + 1); !s.ok()) return s;
  }
  CollectingErrors errors;
  if (pool_.BuildFileCollectingErrors(it->second, &errors) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot use ", name, ": ", errors.text()));
  }
  return absl::OkStatus();
}

absl::Status PoolBuilder::BuildAll() {
  for (const auto& entry : files_) {
    if (absl::Status s = Build(entry.first, 0); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace callmesh::cli
