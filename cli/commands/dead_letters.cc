// `callmesh dead-letters ls|redrive`: completions whose callback could not be delivered.
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/commands/commands.h"
#include "cli/text/table.h"

namespace callmesh::cli {
namespace {

// Keeps table rows readable; -o json has the whole message.
std::string Truncated(std::string text) {
  constexpr size_t kMax = 60;
  if (text.size() > kMax) text = text.substr(0, kMax - 3) + "...";
  return text;
}

absl::Status RunList(CliContext& context, const ParsedArgs& args) {
  if (!args.positionals.empty()) {
    return InputError(
        absl::StrCat("dead-letters ls takes no arguments, got \"", args.positionals[0], "\""));
  }
  uint32_t limit = 100;
  if (args.Has("limit") && (!absl::SimpleAtoi(args.Get("limit"), &limit) || limit == 0)) {
    return InputError(
        absl::StrCat("invalid --limit \"", args.Get("limit"), "\": expected a positive number"));
  }
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  std::vector<v1::DeadLetter> letters;
  v1::ListDeadLettersRequest request;
  while (letters.size() < limit) {
    request.set_page_size(std::min<uint32_t>(limit - letters.size(), 1000));
    grpc::ClientContext rpc;
    rpc.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    v1::ListDeadLettersResponse response;
    grpc::Status status = (*sidecar)->ListDeadLetters(&rpc, request, &response);
    if (!status.ok()) return context.RpcError(status, "ListDeadLetters");
    for (auto& letter : *response.mutable_dead_letters()) letters.push_back(std::move(letter));
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  if (letters.size() > limit) letters.resize(limit);
  if (context.options().output == OutputFormat::kJson) {
    JsonValue list = JsonValue::Array();
    for (const v1::DeadLetter& letter : letters) list.Append(context.DeadLetterToJson(letter));
    context.PrintJson(list);
    return absl::OkStatus();
  }
  Table table(
      {"CID", "CALLBACK", "STATE", "SERVICE", "METHOD", "ATTEMPTS", "LAST ERROR", "DEAD-LETTERED"});
  for (const v1::DeadLetter& letter : letters) {
    table.AddRow({letter.completion().cid(), letter.callback(),
                  StateName(letter.completion().state()), letter.completion().service(),
                  letter.completion().method(), absl::StrCat(letter.delivery_attempts()),
                  Truncated(absl::StrCat(StatusCodeName(letter.last_status_code()), ": ",
                                         letter.last_status_message())),
                  FormatTimestamp(letter.dead_lettered_at())});
  }
  context.out() << table.Render();
  return absl::OkStatus();
}

absl::Status RunRedrive(CliContext& context, const ParsedArgs& args) {
  if (args.positionals.size() != 1) {
    return InputError(absl::StrCat("dead-letters redrive needs exactly one CID, got ",
                                   args.positionals.size(),
                                   " argument(s) (see 'callmesh dead-letters ls')"));
  }
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  v1::RedriveDeadLetterRequest request;
  request.set_cid(args.positionals[0]);
  grpc::ClientContext rpc;
  rpc.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::RedriveDeadLetterResponse response;
  grpc::Status status = (*sidecar)->RedriveDeadLetter(&rpc, request, &response);
  if (!status.ok()) return context.RpcError(status, "RedriveDeadLetter");
  if (context.options().output == OutputFormat::kJson) {
    JsonValue done = JsonValue::Object();
    done.Set("redriven", JsonValue::String(request.cid()));
    context.PrintJson(done);
  } else {
    context.out() << "redriven " << request.cid() << "\n";
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<Command> DeadLetterCommands() {
  return {
      Command{
          .path = "dead-letters ls",
          .summary = "List completions whose callback could not be delivered",
          .arguments = "",
          .description = "Table by default; -o json prints the dead letters with replies decoded.",
          .flags = {{.name = "limit", .value_name = "N", .help = "at most N (default 100)"}},
          .examples = "  callmesh dead-letters ls\n  callmesh dead-letters ls -o json\n",
          .run = RunList,
      },
      Command{
          .path = "dead-letters redrive",
          .summary = "Deliver a dead letter to its callback again, with a fresh retry budget",
          .arguments = "CID",
          .description = "NOT_FOUND (exit 1) if CID is not in the dead-letter list.",
          .flags = {},
          .examples = "  callmesh dead-letters redrive 01a209b2-d7d4-7291-bd8f-be63d35e4977\n",
          .run = RunRedrive,
      },
  };
}

}  // namespace callmesh::cli
