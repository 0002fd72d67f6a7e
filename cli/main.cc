// `callmesh`: the command line of callmesh. See cli/commands/commands.h and `callmesh --help`.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands/commands.h"
#include "runtime/common/version.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "--version") {
    std::cout << callmesh::VersionLine("callmesh") << "\n";
    return 0;
  }
  callmesh::cli::CliIo io{
      .in = &std::cin,
      .out = &std::cout,
      .err = &std::cerr,
      .stderr_is_terminal = isatty(STDERR_FILENO) == 1,
      .getenv = [](const char* name) -> const char* { return std::getenv(name); },
  };
  const int code = callmesh::cli::RunCli(args, std::move(io));
  std::cout.flush();
  return code;
}
