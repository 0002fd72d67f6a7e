#include "runtime/sidecar/config/config_loader.h"

#include "runtime/common/status_macros.h"
#include "runtime/sidecar/config/config_file.h"
#include "runtime/sidecar/config/source_positions.h"
#include "runtime/sidecar/config/yaml_to_proto.h"

namespace callmesh::sidecar {

absl::StatusOr<v1::SidecarConfig> ParseConfig(absl::string_view text, absl::string_view origin) {
  SourcePositions positions(origin.empty() ? std::string("<config>") : std::string(origin));
  v1::SidecarConfig config;
  CALLMESH_RETURN_IF_ERROR(YamlToProto(text, &config, &positions));
  return config;
}

absl::StatusOr<v1::SidecarConfig> LoadConfigFile(const std::string& path) {
  CALLMESH_ASSIGN_OR_RETURN(const std::string text, ReadConfigFile(path));
  return ParseConfig(text, path);
}

absl::StatusOr<v1::SidecarConfig> LoadAndValidateConfig(
    const std::string& path, const std::vector<ConfigOverride>& overrides) {
  SourcePositions positions(path);
  v1::SidecarConfig config;
  if (!path.empty()) {
    CALLMESH_ASSIGN_OR_RETURN(const std::string text, ReadConfigFile(path));
    CALLMESH_RETURN_IF_ERROR(YamlToProto(text, &config, &positions));
  }
  for (const ConfigOverride& override : overrides) {
    SourcePositions origin(override.origin);
    CALLMESH_RETURN_IF_ERROR(ScalarToProtoField(override.key, override.value, &config, &origin));
    positions.SetOrigin(override.key, override.origin);
  }
  ApplyConfigDefaults(&config);
  CALLMESH_RETURN_IF_ERROR(ValidateConfig(config, positions));
  return config;
}

}  // namespace callmesh::sidecar
