// Loading of `callmeshd`'s configuration (callmesh.v1.SidecarConfig) from a YAML or JSON file:
// reading (config_file.h), mapping onto the message (yaml_to_proto.h, which documents the
// accepted forms), defaults (config_defaults.h) and validation (config_validation.h).
//
//   absl::StatusOr<v1::SidecarConfig> config = LoadAndValidateConfig(
//       "/etc/callmesh/sidecar.yaml", {{"listen", "127.0.0.1:0", "--listen"}});
//   if (!config.ok()) return Fail(config.status());  // "sidecar.yaml:7:5: services[0]...: ..."
//
// Every error is INVALID_ARGUMENT "<origin>:<line>:<column>: <key path>: <problem>" (unknown parts
// left out), except that a file that cannot be read gives the status of ReadConfigFile.
//
// Thread-safety: every function here is thread-safe; none keeps state between calls. No function
// throws.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "callmesh/v1/config.pb.h"
#include "runtime/sidecar/config/config_defaults.h"
#include "runtime/sidecar/config/config_validation.h"

namespace callmesh::sidecar {

// Parses YAML (or JSON) `text` onto a SidecarConfig (see yaml_to_proto.h). `origin` names the
// source in error messages (usually the file path; "<config>" if empty). Empty text (or only
// comments) is a valid empty config. Defaults are NOT applied and semantics are NOT checked.
absl::StatusOr<callmesh::v1::SidecarConfig> ParseConfig(absl::string_view text,
                                                        absl::string_view origin);

// Reads the file at `path` (see ReadConfigFile) and parses it with ParseConfig.
absl::StatusOr<callmesh::v1::SidecarConfig> LoadConfigFile(const std::string& path);

// A value given outside the file, for example by a command-line flag, that replaces the file's.
struct ConfigOverride {
  std::string key;     // A top-level scalar field of SidecarConfig: "listen", "data_dir", ...
  std::string value;   // Its text, as it would be written in the file.
  std::string origin;  // What errors about it name instead of the file: "--listen".
};

// Reads and parses the file at `path` (no file if `path` is empty), applies `overrides` (in
// order), ApplyConfigDefaults, and ValidateConfig. Errors of the file name the file, line and
// column; errors of an overridden value name its origin ("--listen: listen: must be host:port
// ..."). An override of an unknown key, or of one that is not a scalar, is INVALID_ARGUMENT (a
// programming error of the caller).
absl::StatusOr<callmesh::v1::SidecarConfig> LoadAndValidateConfig(
    const std::string& path, const std::vector<ConfigOverride>& overrides = {});

}  // namespace callmesh::sidecar
