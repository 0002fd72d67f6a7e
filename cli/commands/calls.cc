// `callmesh calls get|wait|ls|cancel`: the sidecar's record of async calls.
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/commands/commands.h"
#include "cli/text/table.h"
#include "runtime/common/proto_time.h"

namespace callmesh::cli {
namespace {

absl::Status NeedCid(const ParsedArgs& args, const std::string& command) {
  if (args.positionals.size() == 1 && !args.positionals[0].empty()) return absl::OkStatus();
  return InputError(absl::StrCat(command, " needs exactly one CID, got ", args.positionals.size(),
                                 " argument(s) (list calls with 'callmesh calls ls')"));
}

std::string CompactReply(CliContext& context, const v1::Completion& completion) {
  JsonValue json = context.CompletionToJson(completion);
  const JsonValue* reply = json.Find("reply");
  return reply == nullptr ? "" : PrintJson(*reply, false);
}

// One call as "KEY  value" lines.
void PrintCallTable(CliContext& context, const v1::Call& call) {
  const v1::CallEnvelope& envelope = call.envelope();
  Table table({"FIELD", "VALUE"});
  table.AddRow({"cid", envelope.cid()});
  table.AddRow({"state", StateName(call.state())});
  table.AddRow({"service", envelope.service()});
  table.AddRow({"method", envelope.method()});
  table.AddRow({"source", envelope.source()});
  table.AddRow({"attempts", absl::StrCat(call.attempts())});
  for (const auto& [label, time] :
       {std::pair<const char*, const google::protobuf::Timestamp*>{"accepted", &call.accepted_at()},
        {"started", &call.started_at()},
        {"completed", &call.completed_at()}}) {
    if (!FormatTimestamp(*time).empty()) table.AddRow({label, FormatTimestamp(*time)});
  }
  if (!call.callback().empty()) {
    table.AddRow({"callback", call.callback()});
    std::string delivery = v1::DeliveryState_Name(call.callback_delivery());
    table.AddRow({"delivery", delivery.substr(delivery.rfind('_') + 1)});
  }
  if (!envelope.idempotency_key().empty()) {
    table.AddRow({"idempotency_key", envelope.idempotency_key()});
  }
  if (call.has_completion()) {
    const v1::Completion& completion = call.completion();
    table.AddRow({"status", StatusCodeName(completion.status_code())});
    if (!completion.status_message().empty()) {
      table.AddRow({"message", completion.status_message()});
    }
    if (call.state() == v1::CALL_STATE_SUCCEEDED) {
      table.AddRow({"reply", CompactReply(context, completion)});
    }
  } else if (call.last_status_code() != 0) {
    table.AddRow({"last_error", absl::StrCat(StatusCodeName(call.last_status_code()), ": ",
                                             call.last_status_message())});
  }
  if (!call.has_completion()) {
    if (!FormatTimestamp(call.next_attempt_at()).empty()) {
      table.AddRow({"next_attempt", FormatTimestamp(call.next_attempt_at())});
    }
    if (!call.last_instance().empty()) table.AddRow({"last_instance", call.last_instance()});
    if (!call.waiting_for().empty()) table.AddRow({"waiting_for", call.waiting_for()});
  }
  context.out() << table.Render();
}

void PrintCall(CliContext& context, const v1::Call& call) {
  if (context.options().output == OutputFormat::kTable) {
    PrintCallTable(context, call);
  } else {
    context.PrintJson(context.CallToJson(call));
  }
}

absl::Status RunGet(CliContext& context, const ParsedArgs& args) {
  if (absl::Status s = NeedCid(args, "calls get"); !s.ok()) return s;
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  v1::GetCallRequest request;
  request.set_cid(args.positionals[0]);
  request.set_include_payload(args.Has("payload"));
  grpc::ClientContext rpc;
  rpc.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::Call call;
  grpc::Status status = (*sidecar)->GetCall(&rpc, request, &call);
  if (!status.ok()) return context.RpcError(status, "GetCall");
  PrintCall(context, call);
  return absl::OkStatus();
}

absl::Status RunWait(CliContext& context, const ParsedArgs& args) {
  if (absl::Status s = NeedCid(args, "calls wait"); !s.ok()) return s;
  absl::StatusOr<absl::Duration> timeout =
      ParsePositiveDuration(args.Get("timeout", "30s"), "--timeout");
  if (!timeout.ok()) return timeout.status();
  if (*timeout > absl::Minutes(10)) return InputError("--timeout is at most 10m for calls wait");
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  v1::WaitCallRequest request;
  request.set_cid(args.positionals[0]);
  *request.mutable_timeout() = ToProtoDuration(*timeout);
  grpc::ClientContext rpc;
  rpc.set_deadline(absl::ToChronoTime(absl::Now() + *timeout + absl::Seconds(30)));
  v1::Call call;
  grpc::Status status = (*sidecar)->WaitCall(&rpc, request, &call);
  if (!status.ok()) return context.RpcError(status, "WaitCall");
  PrintCall(context, call);
  switch (call.state()) {
    case v1::CALL_STATE_SUCCEEDED:
      return absl::OkStatus();
    case v1::CALL_STATE_FAILED:
      return absl::Status(static_cast<absl::StatusCode>(call.completion().status_code()),
                          absl::StrCat("call ", call.envelope().cid(),
                                       " failed: ", call.completion().status_message()));
    case v1::CALL_STATE_CANCELLED:
      return absl::CancelledError(absl::StrCat(
          "call ", call.envelope().cid(), " was cancelled: ", call.completion().status_message()));
    case v1::CALL_STATE_EXPIRED:
      return absl::DeadlineExceededError(absl::StrCat(
          "call ", call.envelope().cid(), " expired: ", call.completion().status_message()));
    default:
      return absl::DeadlineExceededError(absl::StrCat("call ", call.envelope().cid(), " is still ",
                                                      StateName(call.state()), " after ",
                                                      absl::FormatDuration(*timeout)));
  }
}

absl::Status RunList(CliContext& context, const ParsedArgs& args) {
  if (!args.positionals.empty()) {
    return InputError(absl::StrCat("calls ls takes no arguments, got \"", args.positionals[0],
                                   "\" (filter with --state, --service, --source)"));
  }
  v1::ListCallsRequest request;
  for (const std::string& value : args.GetAll("state")) {
    for (const std::string& name :
         std::vector<std::string>(absl::StrSplit(value, ',', absl::SkipEmpty()))) {
      absl::StatusOr<v1::CallState> state = ParseState(name);
      if (!state.ok()) return state.status();
      request.add_states(*state);
    }
  }
  request.set_service(args.Get("service"));
  request.set_source(args.Get("source"));
  uint32_t limit = 100;
  if (args.Has("limit") && (!absl::SimpleAtoi(args.Get("limit"), &limit) || limit == 0)) {
    return InputError(
        absl::StrCat("invalid --limit \"", args.Get("limit"), "\": expected a positive number"));
  }
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  std::vector<v1::Call> calls;
  while (calls.size() < limit) {
    request.set_page_size(std::min<uint32_t>(limit - calls.size(), 1000));
    grpc::ClientContext rpc;
    rpc.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    v1::ListCallsResponse response;
    grpc::Status status = (*sidecar)->ListCalls(&rpc, request, &response);
    if (!status.ok()) return context.RpcError(status, "ListCalls");
    for (v1::Call& call : *response.mutable_calls()) calls.push_back(std::move(call));
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  if (calls.size() > limit) calls.resize(limit);
  if (context.options().output == OutputFormat::kJson) {
    JsonValue list = JsonValue::Array();
    for (const v1::Call& call : calls) list.Append(context.CallToJson(call));
    context.PrintJson(list);
    return absl::OkStatus();
  }
  Table table({"CID", "STATE", "SERVICE", "METHOD", "SOURCE", "ATTEMPTS", "ACCEPTED", "STATUS"});
  for (const v1::Call& call : calls) {
    table.AddRow({call.envelope().cid(), StateName(call.state()), call.envelope().service(),
                  call.envelope().method(), call.envelope().source(), absl::StrCat(call.attempts()),
                  FormatTimestamp(call.accepted_at()),
                  call.has_completion() ? StatusCodeName(call.completion().status_code()) : ""});
  }
  context.out() << table.Render();
  return absl::OkStatus();
}

absl::Status RunCancel(CliContext& context, const ParsedArgs& args) {
  if (absl::Status s = NeedCid(args, "calls cancel"); !s.ok()) return s;
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  v1::CancelCallRequest request;
  request.set_cid(args.positionals[0]);
  request.set_reason(args.Get("reason", "cancelled with callmesh calls cancel"));
  grpc::ClientContext rpc;
  rpc.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::Call call;
  grpc::Status status = (*sidecar)->CancelCall(&rpc, request, &call);
  if (!status.ok()) return context.RpcError(status, "CancelCall");
  PrintCall(context, call);
  return absl::OkStatus();
}

}  // namespace

std::vector<Command> CallsCommands() {
  return {
      Command{
          .path = "calls get",
          .summary = "Show an async call by CID (state, attempts, outcome, reply as JSON)",
          .arguments = "CID",
          .description =
              "Prints the sidecar's record of the call. The reply (and, with --payload, the\n"
              "request) is decoded to JSON when the method's descriptor can be fetched from the\n"
              "target; otherwise it stays base64. An unknown CID exits 1 with NOT_FOUND.",
          .flags = {{.name = "payload", .help = "include the request payload"}},
          .examples = "  callmesh calls get 01a209b2-d7d4-7291-bd8f-be63d35e4977\n"
                      "  callmesh calls get $cid -o table\n",
          .run = RunGet,
      },
      Command{
          .path = "calls wait",
          .summary = "Wait until an async call ends and show it",
          .arguments = "CID",
          .description =
              "Long-polls the sidecar until the call is terminal or --timeout passes, then\n"
              "prints it like 'calls get'. Exits 0 if it SUCCEEDED, 1 if it failed, was\n"
              "cancelled, expired, or is still running at the timeout.",
          .flags = {{.name = "timeout",
                     .value_name = "DURATION",
                     .help = "how long to wait (default 30s, at most 10m)"}},
          .examples = "  callmesh calls wait $cid --timeout 1m\n",
          .run = RunWait,
      },
      Command{
          .path = "calls ls",
          .summary = "List async calls (filter by state, service, source)",
          .arguments = "",
          .description = "Lists the calls the sidecar knows (table by default; -o json for JSON).",
          .flags =
              {
                  {.name = "state",
                   .value_name = "STATE",
                   .help = "only calls in STATE: accepted, running, succeeded, failed, "
                           "cancelled, expired (or a comma-separated list)",
                   .repeated = true},
                  {.name = "service", .value_name = "NAME", .help = "only calls to this service"},
                  {.name = "source", .value_name = "NAME", .help = "only calls from this source"},
                  {.name = "limit", .value_name = "N", .help = "at most N calls (default 100)"},
              },
          .examples = "  callmesh calls ls\n"
                      "  callmesh calls ls --state running,accepted --service greeter\n"
                      "  callmesh calls ls --state failed --limit 10 -o json\n",
          .run = RunList,
      },
      Command{
          .path = "calls cancel",
          .summary = "Cancel a pending or running async call",
          .arguments = "CID",
          .description = "The call ends CANCELLED; a call that already ended is shown unchanged.",
          .flags = {{.name = "reason",
                     .value_name = "TEXT",
                     .help = "recorded in the completion's status message"}},
          .examples = "  callmesh calls cancel $cid --reason 'customer gave up'\n",
          .run = RunCancel,
      },
  };
}

}  // namespace callmesh::cli
