#include "cli/commands/request_input.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace callmesh::cli {

absl::StatusOr<std::string> ReadRequest(CliContext& context, const ParsedArgs& args) {
  if (!args.Has("data")) return std::string("{}");
  const std::string data = args.Get("data");
  if (data == "-") {
    std::stringstream text;
    text << context.in().rdbuf();
    return text.str();
  }
  if (!data.empty() && data[0] == '@') {
    const std::string path = data.substr(1);
    std::ifstream in(path, std::ios::binary);
    if (!in) return InputError(absl::StrCat("cannot read request file ", path));
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  return data;
}

absl::StatusOr<std::map<std::string, std::string>> ParseHeaders(const ParsedArgs& args) {
  std::map<std::string, std::string> headers;
  for (const std::string& header : args.GetAll("header")) {
    const size_t eq = header.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InputError(
          absl::StrCat("invalid --header \"", header, "\": expected KEY=VALUE, e.g. tenant=acme"));
    }
    headers[absl::AsciiStrToLower(header.substr(0, eq))] = header.substr(eq + 1);
  }
  return headers;
}

}  // namespace callmesh::cli
