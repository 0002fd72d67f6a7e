// The request input flags shared by commands that send a payload (invoke, publish): -d JSON and
// -H KEY=VALUE headers.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "cli/commands/args.h"
#include "cli/commands/cli_context.h"

namespace callmesh::cli {

// The request JSON from -d: inline text, "@file" or "-" (stdin). Default "{}". Input error for
// an unreadable file.
absl::StatusOr<std::string> ReadRequest(CliContext& context, const ParsedArgs& args);

// The --header KEY=VALUE flags, keys lower-cased. Input error for one without '='.
absl::StatusOr<std::map<std::string, std::string>> ParseHeaders(const ParsedArgs& args);

}  // namespace callmesh::cli
