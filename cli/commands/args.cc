#include "cli/commands/args.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/suggest.h"

namespace callmesh::cli {

std::string ParsedArgs::Get(const std::string& name, const std::string& fallback) const {
  auto it = flags.find(name);
  return it == flags.end() || it->second.empty() ? fallback : it->second.back();
}

std::vector<std::string> ParsedArgs::GetAll(const std::string& name) const {
  auto it = flags.find(name);
  return it == flags.end() ? std::vector<std::string>{} : it->second;
}

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<FlagSpec>& specs,
                                     const std::string& command) {
  ParsedArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      parsed.positionals.insert(parsed.positionals.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-' || arg == "-") {
      parsed.positionals.push_back(arg);
      continue;
    }
    const FlagSpec* spec = nullptr;
    std::string value;
    bool has_inline_value = false;
    std::string shown;
    if (absl::StartsWith(arg, "--")) {
      std::string name = arg.substr(2);
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_inline_value = true;
      }
      std::replace(name.begin(), name.end(), '_', '-');
      shown = "--" + name;
      for (const FlagSpec& s : specs) {
        if (s.name == name) spec = &s;
      }
      if (spec == nullptr) {
        std::vector<std::string> names;
        for (const FlagSpec& s : specs) names.push_back(s.name);
        const std::string hint = ClosestMatch(name, names);
        return absl::InvalidArgumentError(
            absl::StrCat("unknown flag ", shown, " for '", command, "'",
                         hint.empty() ? "" : absl::StrCat("; did you mean --", hint, "?"),
                         " (see '", command, " --help')"));
      }
    } else {
      shown = arg.substr(0, 2);
      for (const FlagSpec& s : specs) {
        if (s.short_name != 0 && s.short_name == arg[1]) spec = &s;
      }
      if (spec == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("unknown flag ", shown, " for '", command,
                                                       "' (see '", command, " --help')"));
      }
      if (arg.size() > 2) {
        value = arg.substr(arg[2] == '=' ? 3 : 2);
        has_inline_value = true;
      }
    }
    if (spec->value_name.empty()) {
      if (has_inline_value) {
        return absl::InvalidArgumentError(absl::StrCat("flag ", shown, " takes no value"));
      }
    } else if (!has_inline_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag ", shown, " needs a value (", spec->value_name, ")"));
      }
      value = args[++i];
    }
    std::vector<std::string>& values = parsed.flags[spec->name];
    if (!values.empty() && !spec->repeated && !spec->value_name.empty() && values.back() != value) {
      return absl::InvalidArgumentError(absl::StrCat("flag --", spec->name, " given twice ('",
                                                     values.back(), "' and '", value, "')"));
    }
    values.push_back(value);
  }
  return parsed;
}

std::string FlagHelp(const std::vector<FlagSpec>& specs) {
  std::vector<std::pair<std::string, std::string>> lines;
  size_t width = 0;
  for (const FlagSpec& spec : specs) {
    std::string left = spec.short_name != 0
                           ? absl::StrCat("-", std::string(1, spec.short_name), ", --", spec.name)
                           : absl::StrCat("    --", spec.name);
    if (!spec.value_name.empty()) absl::StrAppend(&left, " ", spec.value_name);
    width = std::max(width, left.size());
    lines.emplace_back(std::move(left), spec.help + (spec.repeated ? " (repeatable)" : ""));
  }
  std::string out;
  for (const auto& [left, help] : lines) {
    absl::StrAppend(&out, "  ", left, std::string(width - left.size() + 3, ' '), help, "\n");
  }
  return out;
}

}  // namespace callmesh::cli
