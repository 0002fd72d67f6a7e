// `callmesh watch`: completions as JSON lines until interrupted (SIGINT/SIGTERM exit 0).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/commands/commands.h"

namespace callmesh::cli {
namespace {

// Self-pipe: the signal handler only writes a byte; a thread turns it into TryCancel.
int interrupt_pipe[2] = {-1, -1};
std::atomic<bool> interrupted{false};

void OnInterrupt(int) {
  interrupted.store(true);
  const char byte = 1;
  [[maybe_unused]] ssize_t n = write(interrupt_pipe[1], &byte, 1);
}

absl::Status RunWatch(CliContext& context, const ParsedArgs& args) {
  if (!args.positionals.empty()) {
    return InputError(absl::StrCat("watch takes no arguments, got \"", args.positionals[0],
                                   "\" (filter with --source or --cid)"));
  }
  v1::WatchCompletionsRequest request;
  request.set_source(args.Get("source"));
  for (const std::string& cid : args.GetAll("cid")) request.add_cids(cid);
  if (args.Has("after")) {
    uint64_t after = 0;
    if (!absl::SimpleAtoi(args.Get("after"), &after)) {
      return InputError(absl::StrCat("invalid --after \"", args.Get("after"),
                                     "\": expected a completion sequence number"));
    }
    request.set_after_sequence(after);
  }
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();

  if (pipe(interrupt_pipe) != 0) return absl::InternalError("pipe() failed");
  interrupted.store(false);
  struct sigaction action = {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int, old_term;
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);

  grpc::ClientContext rpc;
  std::thread canceller([&rpc] {
    char byte;
    if (read(interrupt_pipe[0], &byte, 1) == 1 && interrupted.load()) rpc.TryCancel();
  });
  auto reader = (*sidecar)->WatchCompletions(&rpc, request);
  v1::Completion completion;
  while (reader->Read(&completion)) context.PrintJson(context.CompletionToJson(completion), true);
  grpc::Status status = reader->Finish();

  // Wake the canceller if no signal came, then restore the previous handlers.
  const char byte = 0;
  [[maybe_unused]] ssize_t n = write(interrupt_pipe[1], &byte, 1);
  canceller.join();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  close(interrupt_pipe[0]);
  close(interrupt_pipe[1]);

  if (interrupted.load() || status.ok()) return absl::OkStatus();
  return context.RpcError(status, "WatchCompletions");
}

}  // namespace

Command WatchCommand() {
  return Command{
      .path = "watch",
      .summary = "Stream completions of async calls as JSON lines until interrupted",
      .arguments = "",
      .description =
          "Prints each completion the sidecar persists as one JSON line (reply decoded when the\n"
          "method's descriptor can be fetched), until Ctrl-C (exit 0). Completions already\n"
          "retained are replayed first when --after is given.",
      .flags =
          {
              {.name = "source", .value_name = "NAME", .help = "only calls made by this source"},
              {.name = "cid", .value_name = "CID", .help = "only this call", .repeated = true},
              {.name = "after",
               .value_name = "SEQUENCE",
               .help = "resume after this completion sequence number"},
          },
      .examples =
          "  callmesh watch\n"
          "  callmesh watch --source callmesh-cli | jq .reply\n",
      .run = RunWatch,
  };
}

}  // namespace callmesh::cli
