// The dispatcher: global flags, command words, help, and the mapping of results to exit codes.
#include <iostream>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/commands/commands.h"
#include "runtime/common/suggest.h"

namespace callmesh::cli {
namespace {

constexpr char kGroups[][16] = {"calls", "dead-letters", "certs", "subscriptions"};

bool IsGroup(const std::string& word) {
  for (const char* group : kGroups) {
    if (word == group) return true;
  }
  return false;
}

const Command* FindCommand(const std::string& path) {
  for (const Command& command : AllCommands()) {
    if (command.path == path) return &command;
  }
  return nullptr;
}

std::vector<std::string> TopWords() {
  std::vector<std::string> words;
  for (const Command& command : AllCommands()) {
    const std::string first = command.path.substr(0, command.path.find(' '));
    if (words.empty() || words.back() != first) words.push_back(first);
  }
  words.push_back("help");
  return words;
}

std::string GeneralHelp() {
  std::string out =
      "callmesh - call services of a callmesh mesh from the command line\n"
      "\n"
      "Usage: callmesh [--sidecar ADDR] [-o json|table] COMMAND [ARGS] [FLAGS]\n"
      "\n"
      "Commands:\n";
  size_t width = 0;
  for (const Command& command : AllCommands()) width = std::max(width, command.path.size());
  for (const Command& command : AllCommands()) {
    absl::StrAppend(&out, "  ", command.path, std::string(width - command.path.size() + 3, ' '),
                    command.summary, "\n");
  }
  absl::StrAppend(&out, "  help", std::string(width - 4 + 3, ' '), "Help about a command\n",
                  "\nGlobal flags:\n", FlagHelp(GlobalFlags()),
                  "\nThe sidecar is --sidecar, else $CALLMESH_SIDECAR, else ", kDefaultSidecar,
                  ".\n"
                  "Credentials for a secured sidecar: --token-file, --tls-ca, --tls-cert and\n"
                  "--tls-key, else $CALLMESH_TOKEN_FILE, $CALLMESH_TLS_CA, $CALLMESH_TLS_CERT and\n"
                  "$CALLMESH_TLS_KEY (certificates from 'callmesh certs issue').\n"
                  "Exit codes: 0 success, 1 the call failed (gRPC status on stderr), 2 usage or "
                  "input error.\n"
                  "\nExamples:\n"
                  "  callmesh services\n"
                  "  callmesh invoke greeter SayHello -d '{\"name\": \"world\"}'\n"
                  "  callmesh invoke greeter SayHello -d '{\"name\": \"later\"}' --async\n"
                  "  callmesh calls get CID\n"
                  "\nRun 'callmesh help COMMAND' or 'callmesh COMMAND --help' for details.\n");
  return out;
}

std::string GroupHelp(const std::string& group) {
  std::string out =
      absl::StrCat("Usage: callmesh ", group, " SUBCOMMAND [ARGS] [FLAGS]\n\n", "Subcommands:\n");
  for (const Command& command : AllCommands()) {
    if (absl::StartsWith(command.path, group + " ")) {
      absl::StrAppend(&out, "  ", command.path.substr(group.size() + 1), "\t", command.summary,
                      "\n");
    }
  }
  absl::StrAppend(&out, "\nRun 'callmesh ", group, " SUBCOMMAND --help' for details.\n");
  return out;
}

std::string CommandHelp(const Command& command) {
  std::string out = absl::StrCat(command.summary, "\n\nUsage: callmesh ", command.path,
                                 command.arguments.empty() ? "" : " " + command.arguments,
                                 " [FLAGS]\n\n", command.description, "\n");
  if (!command.flags.empty()) absl::StrAppend(&out, "\nFlags:\n", FlagHelp(command.flags));
  absl::StrAppend(&out, "\nGlobal flags:\n", FlagHelp(GlobalFlags()));
  if (!command.examples.empty()) absl::StrAppend(&out, "\nExamples:\n", command.examples);
  return out;
}

const FlagSpec* FindGlobal(const std::string& arg) {
  for (const FlagSpec& spec : GlobalFlags()) {
    if (arg == "--" + spec.name ||
        (spec.short_name != 0 && arg == std::string("-") + spec.short_name)) {
      return &spec;
    }
  }
  return nullptr;
}

absl::Status UnknownCommand(const std::string& word, const std::vector<std::string>& candidates,
                            const std::string& within) {
  const std::string hint = ClosestMatch(word, candidates);
  return InputError(absl::StrCat("unknown ", within.empty() ? "command" : "subcommand", " \"", word,
                                 "\"", within.empty() ? "" : absl::StrCat(" of '", within, "'"),
                                 hint.empty() ? "" : absl::StrCat("; did you mean \"", hint, "\"?"),
                                 " (see 'callmesh ", within.empty() ? "--help" : within + " --help",
                                 "')"));
}

// Applies the global flags of `args` to `options`.
absl::Status ApplyGlobals(const ParsedArgs& args, GlobalOptions* options) {
  options->sidecar = args.Get("sidecar");
  options->protoset = args.Get("protoset");
  if (args.Has("output")) {
    const std::string format = args.Get("output");
    if (format == "json") {
      options->output = OutputFormat::kJson;
    } else if (format == "table") {
      options->output = OutputFormat::kTable;
    } else if (format == "names") {
      options->output = OutputFormat::kNames;
    } else {
      return InputError(
          absl::StrCat("invalid --output \"", format,
                       "\": expected json or table (or names for services and describe)"));
    }
  }
  options->credentials = {.token_file = args.Get("token-file"),
                          .tls = {.ca_file = args.Get("tls-ca"),
                                  .cert_file = args.Get("tls-cert"),
                                  .key_file = args.Get("tls-key")}};
  if (args.Has("connect-timeout")) {
    absl::StatusOr<absl::Duration> timeout =
        ParsePositiveDuration(args.Get("connect-timeout"), "--connect-timeout");
    if (!timeout.ok()) return timeout.status();
    options->connect_timeout = *timeout;
  }
  return absl::OkStatus();
}

int Report(const absl::Status& status, std::ostream& err) {
  const int code = ExitCodeFor(status);
  if (code == 2) {
    err << "callmesh: " << status.message() << "\n";
  } else if (code == 1) {
    err << "callmesh: " << absl::StatusCodeToString(status.code()) << ": " << status.message()
        << "\n";
  }
  return code;
}

}  // namespace

const std::vector<FlagSpec>& GlobalFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {.name = "sidecar",
       .value_name = "ADDR",
       .help =
           absl::StrCat("sidecar address (default $CALLMESH_SIDECAR, else ", kDefaultSidecar, ")")},
      {.name = "output",
       .short_name = 'o',
       .value_name = "FORMAT",
       .help = "json or table (lists default to table, the rest to json)"},
      {.name = "protoset",
       .value_name = "FILE",
       .help = "FileDescriptorSet to use instead of server reflection"},
      {.name = "connect-timeout",
       .value_name = "DURATION",
       .help = "how long to wait for the sidecar connection (default 5s)"},
      {.name = "token-file",
       .value_name = "FILE",
       .help = "send the token in FILE as authorization: Bearer (default $CALLMESH_TOKEN_FILE)"},
      {.name = "tls-ca",
       .value_name = "FILE",
       .help = "talk TLS to the sidecar, verified against this mesh CA (default $CALLMESH_TLS_CA)"},
      {.name = "tls-cert",
       .value_name = "FILE",
       .help = "client certificate for mTLS (default $CALLMESH_TLS_CERT)"},
      {.name = "tls-key",
       .value_name = "FILE",
       .help = "key of --tls-cert (default $CALLMESH_TLS_KEY)"},
      {.name = "help", .short_name = 'h', .help = "show help"},
  };
  return *flags;
}

const std::vector<Command>& AllCommands() {
  static const auto* commands = [] {
    auto* all = new std::vector<Command>();
    all->push_back(InvokeCommand());
    for (Command& c : CallsCommands()) all->push_back(std::move(c));
    all->push_back(WatchCommand());
    all->push_back(ServicesCommand());
    all->push_back(DescribeCommand());
    all->push_back(HealthCommand());
    all->push_back(StatsCommand());
    for (Command& c : DeadLetterCommands()) all->push_back(std::move(c));
    for (Command& c : CertsCommands()) all->push_back(std::move(c));
    for (Command& c : PubSubCommands()) all->push_back(std::move(c));
    return all;
  }();
  return *commands;
}

int RunCli(const std::vector<std::string>& args, CliIo io) {
  std::ostream& out = *io.out;
  std::ostream& err = *io.err;
  // Global flags may precede the command words.
  std::vector<std::string> leading;
  size_t i = 0;
  for (; i < args.size() && absl::StartsWith(args[i], "-") && args[i] != "-"; ++i) {
    const std::string name = args[i].substr(0, args[i].find('='));
    const FlagSpec* spec = FindGlobal(name);
    if (spec == nullptr) {
      std::vector<std::string> names;
      for (const FlagSpec& s : GlobalFlags()) names.push_back(s.name);
      const std::string hint = ClosestMatch(absl::StripPrefix(name, "--"), names);
      return Report(InputError(absl::StrCat("unknown flag ", name,
                                            hint.empty() ? "" : "; did you mean --" + hint + "?",
                                            " (see 'callmesh --help')")),
                    err);
    }
    leading.push_back(args[i]);
    if (!spec->value_name.empty() && args[i].find('=') == std::string::npos &&
        i + 1 < args.size()) {
      leading.push_back(args[++i]);
    }
  }
  const bool leading_help = std::find_if(leading.begin(), leading.end(), [](const std::string& a) {
                              return a == "--help" || a == "-h";
                            }) != leading.end();
  if (i >= args.size()) {
    if (leading_help) {
      out << GeneralHelp();
      return 0;
    }
    err << GeneralHelp();
    return Report(InputError("missing command"), err);
  }
  std::string word = args[i++];
  if (word == "help") {
    std::vector<std::string> topic(args.begin() + i, args.end());
    if (topic.empty()) {
      out << GeneralHelp();
      return 0;
    }
    const std::string path = absl::StrJoin(topic, " ");
    if (const Command* command = FindCommand(path)) {
      out << CommandHelp(*command);
      return 0;
    }
    if (topic.size() == 1 && IsGroup(topic[0])) {
      out << GroupHelp(topic[0]);
      return 0;
    }
    return Report(UnknownCommand(path, TopWords(), ""), err);
  }
  std::string path = word;
  if (IsGroup(word)) {
    std::vector<std::string> subcommands;
    for (const Command& command : AllCommands()) {
      if (absl::StartsWith(command.path, word + " ")) {
        subcommands.push_back(command.path.substr(word.size() + 1));
      }
    }
    if (i >= args.size() || absl::StartsWith(args[i], "-")) {
      const bool help = i < args.size() && (args[i] == "--help" || args[i] == "-h");
      if (help || leading_help) {
        out << GroupHelp(word);
        return 0;
      }
      err << GroupHelp(word);
      return Report(InputError(absl::StrCat("'callmesh ", word, "' needs a subcommand: ",
                                            absl::StrJoin(subcommands, ", "))),
                    err);
    }
    const std::string sub = args[i++];
    path = word + " " + sub;
    if (FindCommand(path) == nullptr) return Report(UnknownCommand(sub, subcommands, word), err);
  }
  const Command* command = FindCommand(path);
  if (command == nullptr) return Report(UnknownCommand(word, TopWords(), ""), err);

  std::vector<FlagSpec> specs = command->flags;
  specs.insert(specs.end(), GlobalFlags().begin(), GlobalFlags().end());
  std::vector<std::string> rest = leading;
  rest.insert(rest.end(), args.begin() + i, args.end());
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(rest, specs, "callmesh " + path);
  if (!parsed.ok()) return Report(AsInputError(parsed.status()), err);
  if (parsed->Has("help")) {
    out << CommandHelp(*command);
    return 0;
  }
  GlobalOptions options;
  if (absl::Status s = ApplyGlobals(*parsed, &options); !s.ok()) return Report(s, err);
  if (options.output == OutputFormat::kNames && path != "services" && path != "describe") {
    return Report(InputError("--output names is only for 'callmesh services' and 'describe'"), err);
  }
  CliContext context(std::move(io), options);
  return Report(command->run(context, *parsed), err);
}

}  // namespace callmesh::cli
