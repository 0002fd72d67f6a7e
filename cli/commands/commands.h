// The `callmesh` commands and the dispatcher that runs one from argv.
//
//   int code = RunCli({"invoke", "greeter", "SayHello", "-d", R"({"name":"x"})"}, io);
//
// Each Command carries its own help (usage, description, flags, examples), so `callmesh --help`,
// `callmesh help CMD` and `callmesh CMD --help` print the same text the completion script and
// README are checked against. Exit codes: 0 success, 1 the call failed (its gRPC code name and
// message on stderr), 2 usage or input error.
//
// RunCli is not reentrant per CliIo; it may be called repeatedly (tests run it in process).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/commands/args.h"
#include "cli/commands/cli_context.h"

namespace callmesh::cli {

struct Command {
  // Words after `callmesh`: "invoke", "calls get".
  std::string path;
  std::string summary;
  // Positional part of the usage line: "SERVICE METHOD".
  std::string arguments;
  std::string description;
  std::vector<FlagSpec> flags;
  std::string examples;
  std::function<absl::Status(CliContext&, const ParsedArgs&)> run;
};

// Every command, in help order.
const std::vector<Command>& AllCommands();

// The flags every command accepts (--sidecar, --output, --protoset, --connect-timeout, --help).
const std::vector<FlagSpec>& GlobalFlags();

// Runs `args` (argv without the program name). Never throws; returns the exit code.
int RunCli(const std::vector<std::string>& args, CliIo io);

// The command implementations (one file each), registered by AllCommands().
Command InvokeCommand();
std::vector<Command> CallsCommands();
Command WatchCommand();
Command ServicesCommand();
Command DescribeCommand();
Command HealthCommand();
Command StatsCommand();
std::vector<Command> DeadLetterCommands();
std::vector<Command> CertsCommands();
std::vector<Command> PubSubCommands();

}  // namespace callmesh::cli
