// Command-line arguments of `callmesh`: flags declared per command, parsed from anywhere on the
// line ("--name value", "--name=value", "-d value", repeatable flags, "--" ends flags).
//
//   std::vector<FlagSpec> specs = {{.name = "data", .short_name = 'd', .value_name = "JSON"}};
//   absl::StatusOr<ParsedArgs> args = ParseArgs({"greeter", "SayHello", "-d", "{}"}, specs,
//                                                 "callmesh invoke");
//   args->Get("data");         // "{}"
//   args->positionals;         // {"greeter", "SayHello"}
//
// Errors are INVALID_ARGUMENT and name the flag, with a "did you mean" hint for typos.
// Value types; thread-compatible.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace callmesh::cli {

struct FlagSpec {
  // Long name without dashes: "sidecar" for --sidecar.
  std::string name;
  // One-letter alias (-d), or 0.
  char short_name = 0;
  // Shown in help ("ADDR"); empty = a boolean flag that takes no value.
  std::string value_name;
  std::string help;
  // May be given several times (all values are kept).
  bool repeated = false;
};

struct ParsedArgs {
  std::vector<std::string> positionals;
  // Flag name -> values in order (a boolean flag has one empty value).
  std::map<std::string, std::vector<std::string>> flags;

  bool Has(const std::string& name) const { return flags.count(name) > 0; }
  // The last value of `name`, or `fallback` if it was not given.
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> GetAll(const std::string& name) const;
};

// Parses `args` (without the program and command words) against `specs`. `command` names the
// command in messages ("callmesh invoke"). INVALID_ARGUMENT for an unknown flag, a missing value
// or a non-repeatable flag given twice.
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<FlagSpec>& specs,
                                     const std::string& command);

// Help lines for `specs`: "  -d, --data JSON   help", aligned.
std::string FlagHelp(const std::vector<FlagSpec>& specs);

}  // namespace callmesh::cli
