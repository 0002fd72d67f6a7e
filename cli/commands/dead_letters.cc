// `callmesh dead-letters ls|redrive`: completions whose callback could not be delivered (kind
// CALLBACK, by CID) and events a subscriber did not acknowledge (kind EVENT, by
// TOPIC/SUBSCRIBER/SEQUENCE).
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/commands/commands.h"
#include "cli/json/json_proto.h"
#include "cli/text/table.h"

namespace callmesh::cli {
namespace {

// Keeps table rows readable; -o json has the whole message.
std::string Truncated(std::string text) {
  constexpr size_t kMax = 60;
  if (text.size() > kMax) text = text.substr(0, kMax - 3) + "...";
  return text;
}

// "orders/billing/3": how an EVENT dead letter is named in the table and for redrive.
std::string EventDeadLetterId(const v1::EventDeadLetter& letter) {
  return absl::StrCat(letter.event().topic(), "/", letter.subscriber(), "/",
                      letter.event().sequence());
}

absl::Status ListEventDeadLetters(CliContext& context) {
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  grpc::ClientContext rpc;
  rpc.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::ListEventDeadLettersResponse response;
  grpc::Status status =
      (*sidecar)->ListEventDeadLetters(&rpc, v1::ListEventDeadLettersRequest(), &response);
  if (!status.ok()) return context.RpcError(status, "ListEventDeadLetters");
  if (context.options().output == OutputFormat::kJson) {
    absl::StatusOr<JsonValue> json = MessageToJson(response);
    if (!json.ok()) return json.status();
    context.PrintJson(*json);
    return absl::OkStatus();
  }
  Table table({"ID", "EVENT ID", "METHOD", "ATTEMPTS", "LAST ERROR", "DEAD-LETTERED", "REDRIVING"});
  for (const v1::EventDeadLetter& letter : response.dead_letters()) {
    table.AddRow({EventDeadLetterId(letter), letter.event().event_id(), letter.method(),
                  absl::StrCat(letter.attempts()),
                  Truncated(absl::StrCat(StatusCodeName(letter.last_status_code()), ": ",
                                         letter.last_status_message())),
                  FormatTimestamp(letter.dead_lettered_at()), letter.redriving() ? "yes" : "no"});
  }
  context.out() << table.Render();
  return absl::OkStatus();
}

absl::Status RunList(CliContext& context, const ParsedArgs& args) {
  if (!args.positionals.empty()) {
    return InputError(
        absl::StrCat("dead-letters ls takes no arguments, got \"", args.positionals[0], "\""));
  }
  const std::string kind = args.Get("kind", "callback");
  if (kind == "event") return ListEventDeadLetters(context);
  if (kind != "callback") {
    return InputError(absl::StrCat("invalid --kind \"", kind, "\": expected callback or event"));
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

// Redrives the EVENT dead letter TOPIC/SUBSCRIBER/SEQUENCE.
absl::Status RedriveEvent(CliContext& context, const std::vector<std::string>& parts) {
  v1::RedriveEventDeadLetterRequest request;
  request.set_topic(parts[0]);
  request.set_subscriber(parts[1]);
  uint64_t sequence = 0;
  if (!absl::SimpleAtoi(parts[2], &sequence) || sequence == 0) {
    return InputError(absl::StrCat("invalid event dead letter \"", absl::StrJoin(parts, "/"),
                                   "\": expected TOPIC/SUBSCRIBER/SEQUENCE"));
  }
  request.set_sequence(sequence);
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  grpc::ClientContext rpc;
  rpc.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::RedriveEventDeadLetterResponse response;
  grpc::Status status = (*sidecar)->RedriveEventDeadLetter(&rpc, request, &response);
  if (!status.ok()) return context.RpcError(status, "RedriveEventDeadLetter");
  const std::string id = absl::StrJoin(parts, "/");
  if (context.options().output == OutputFormat::kJson) {
    JsonValue done = JsonValue::Object();
    done.Set("redriven", JsonValue::String(id));
    context.PrintJson(done);
  } else {
    context.out() << "redriven " << id << "\n";
  }
  return absl::OkStatus();
}

absl::Status RunRedrive(CliContext& context, const ParsedArgs& args) {
  if (args.positionals.size() != 1) {
    return InputError(absl::StrCat("dead-letters redrive needs exactly one CID, got ",
                                   args.positionals.size(),
                                   " argument(s) (see 'callmesh dead-letters ls')"));
  }
  if (std::vector<std::string> parts = absl::StrSplit(args.positionals[0], '/');
      parts.size() == 3) {
    return RedriveEvent(context, parts);
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
          .description = "Table by default; -o json prints the dead letters with replies decoded.\n"
                         "--kind event lists events a subscriber did not acknowledge instead.",
          .flags = {{.name = "limit", .value_name = "N", .help = "at most N (default 100)"},
                    {.name = "kind", .value_name = "KIND", .help = "callback (default) or event"}},
          .examples = "  callmesh dead-letters ls\n  callmesh dead-letters ls -o json\n"
                      "  callmesh dead-letters ls --kind event\n",
          .run = RunList,
      },
      Command{
          .path = "dead-letters redrive",
          .summary = "Deliver a dead letter again, with a fresh retry budget",
          .arguments = "CID|TOPIC/SUBSCRIBER/SEQUENCE",
          .description =
              "A CID redrives a callback; TOPIC/SUBSCRIBER/SEQUENCE (the ID column of\n"
              "'dead-letters ls --kind event') redrives an event to that subscriber only.\n"
              "NOT_FOUND (exit 1) if it is not in the dead-letter list.",
          .flags = {},
          .examples = "  callmesh dead-letters redrive 01a209b2-d7d4-7291-bd8f-be63d35e4977\n"
                      "  callmesh dead-letters redrive orders.placed/billing/3\n",
          .run = RunRedrive,
      },
  };
}

}  // namespace callmesh::cli
