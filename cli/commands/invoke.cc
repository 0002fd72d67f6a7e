// `callmesh invoke SERVICE METHOD -d JSON`: sync (Invoke), --async (InvokeAsync, prints the CID)
// or --wait (InvokeAsync, then WaitCall until the call ends).
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cli/commands/commands.h"
#include "cli/commands/request_input.h"
#include "cli/json/json_proto.h"
#include "runtime/common/names.h"
#include "runtime/common/proto_time.h"

namespace callmesh::cli {
namespace {

constexpr char kDefaultSource[] = "callmesh-cli";

// -v: what was sent and what came back of one RPC to the sidecar, on stderr (grpcurl -v's shape).
class VerboseTrace {
 public:
  VerboseTrace(CliContext& context, bool on) : context_(context), on_(on) {}

  void Request(absl::string_view rpc, absl::string_view service, absl::string_view method,
               absl::string_view source, const std::map<std::string, std::string>& headers) {
    if (!on_) return;
    context_.err() << "> " << rpc << " service=" << service << " method=" << method
                   << " source=" << (source.empty() ? "(the identity proven)" : source) << "\n";
    for (const auto& [key, value] : headers) context_.err() << "> " << key << ": " << value << "\n";
    started_ = absl::Now();
  }

  void Response(const grpc::ClientContext& rpc, const grpc::Status& status) {
    if (!on_) return;
    const absl::Duration elapsed = absl::Now() - started_;
    for (const auto& [key, value] : rpc.GetServerInitialMetadata()) {
      context_.err() << "< " << absl::string_view(key.data(), key.size()) << ": "
                     << absl::string_view(value.data(), value.size()) << "\n";
    }
    for (const auto& [key, value] : rpc.GetServerTrailingMetadata()) {
      context_.err() << "< (trailer) " << absl::string_view(key.data(), key.size()) << ": "
                     << absl::string_view(value.data(), value.size()) << "\n";
    }
    context_.err() << "< " << StatusCodeName(status.error_code())
                   << (status.error_message().empty() ? "" : ": ") << status.error_message()
                   << " in " << absl::FormatDuration(elapsed) << "\n";
  }

 private:
  CliContext& context_;
  const bool on_;
  absl::Time started_;
};

// Prints the outcome of a finished call: the reply JSON (exit 0) or its status (exit 1).
absl::Status ReportOutcome(CliContext& context, const v1::Call& call,
                           const google::protobuf::Descriptor& reply_type) {
  const v1::Completion& completion = call.completion();
  if (call.state() == v1::CALL_STATE_SUCCEEDED) {
    absl::StatusOr<JsonValue> reply = ProtoBytesToJson(reply_type, completion.reply());
    if (!reply.ok()) return reply.status();
    context.PrintJson(*reply);
    return absl::OkStatus();
  }
  if (call.state() == v1::CALL_STATE_CANCELLED || call.state() == v1::CALL_STATE_EXPIRED) {
    const absl::StatusCode code = call.state() == v1::CALL_STATE_CANCELLED
                                      ? absl::StatusCode::kCancelled
                                      : absl::StatusCode::kDeadlineExceeded;
    return absl::Status(
        code, absl::StrCat("call ", call.envelope().cid(), " ", StateName(call.state()), ": ",
                           completion.status_message()));
  }
  return absl::Status(
      static_cast<absl::StatusCode>(completion.status_code()),
      absl::StrCat("call ", call.envelope().cid(), " failed after ", completion.attempts(),
                   " attempt(s): ", completion.status_message()));
}

absl::Status WaitForCall(CliContext& context, v1::Sidecar::Stub& sidecar, const std::string& cid,
                         const google::protobuf::Descriptor& reply_type) {
  const bool progress = context.io().stderr_is_terminal;
  static const char* kSpinner[] = {"|", "/", "-", "\\"};
  const absl::Time started = absl::Now();
  for (int round = 0;; ++round) {
    v1::WaitCallRequest request;
    request.set_cid(cid);
    // Short polls while a progress line is drawn; long polls otherwise.
    const absl::Duration poll = progress ? absl::Milliseconds(250) : absl::Minutes(5);
    *request.mutable_timeout() = ToProtoDuration(poll);
    grpc::ClientContext rpc;
    rpc.set_deadline(absl::ToChronoTime(absl::Now() + poll + absl::Seconds(30)));
    v1::Call call;
    grpc::Status status = sidecar.WaitCall(&rpc, request, &call);
    if (!status.ok()) {
      if (progress) context.err() << "\r\033[K";
      return context.RpcError(status, absl::StrCat("waiting for call ", cid));
    }
    const bool terminal = call.state() >= v1::CALL_STATE_SUCCEEDED;
    if (progress) {
      context.err() << "\r\033[K";
      if (!terminal) {
        context.err() << kSpinner[round % 4] << " " << cid << " " << StateName(call.state())
                      << " (attempt " << call.attempts() << ", "
                      << absl::ToInt64Seconds(absl::Now() - started) << "s"
                      << ")";
      }
      context.err().flush();
    }
    if (terminal) return ReportOutcome(context, call, reply_type);
  }
}

absl::Status RunInvoke(CliContext& context, const ParsedArgs& args) {
  if (args.positionals.size() != 2) {
    return InputError(absl::StrCat(
        "invoke needs SERVICE and METHOD, got ", args.positionals.size(),
        " argument(s) (example: callmesh invoke greeter SayHello -d '{\"name\":\"world\"}')"));
  }
  const std::string& service = args.positionals[0];
  if (absl::Status s = ValidateServiceName(service, "SERVICE"); !s.ok()) return AsInputError(s);
  for (const char* flag : {"source", "callback"}) {
    if (!args.Has(flag)) continue;
    const std::string name = absl::StrCat("--", flag);
    if (absl::Status s = ValidateServiceName(args.Get(flag), name); !s.ok()) {
      return AsInputError(s);
    }
  }
  const bool async = args.Has("async");
  const bool wait = args.Has("wait");
  if (async && wait) return InputError("--async and --wait exclude each other");
  if (!async && !wait && (args.Has("callback") || args.Has("idempotency-key"))) {
    return InputError("--callback and --idempotency-key need --async or --wait");
  }
  std::optional<absl::Duration> timeout;
  if (args.Has("timeout")) {
    absl::StatusOr<absl::Duration> parsed = ParsePositiveDuration(args.Get("timeout"), "--timeout");
    if (!parsed.ok()) return parsed.status();
    timeout = *parsed;
  }
  absl::StatusOr<std::map<std::string, std::string>> headers = ParseHeaders(args);
  if (!headers.ok()) return headers.status();
  absl::StatusOr<std::string> json = ReadRequest(context, args);
  if (!json.ok()) return json.status();

  absl::StatusOr<DescriptorSource*> source = context.Descriptors(service);
  if (!source.ok()) return source.status();
  absl::StatusOr<const google::protobuf::MethodDescriptor*> method =
      ResolveMethod(**source, args.positionals[1], service);
  if (!method.ok()) return AsInputError(method.status());
  if ((*method)->client_streaming() || (*method)->server_streaming()) {
    return InputError(absl::StrCat(MethodName(**method),
                                   " is a streaming method; callmesh invokes unary methods only"));
  }
  absl::StatusOr<std::string> payload = JsonToProtoBytes(*(*method)->input_type(), *json);
  if (!payload.ok()) {
    return InputError(
        absl::StrCat("bad request for ", MethodName(**method), ": ", payload.status().message()));
  }
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  // With credentials, the sidecar names the caller; a claim of another name would be refused.
  const std::string source_name = args.Get("source", context.authenticates() ? "" : kDefaultSource);
  VerboseTrace verbose(context, args.Has("verbose"));

  if (!async && !wait) {
    v1::InvokeRequest request;
    request.set_service(service);
    request.set_method(MethodName(**method));
    request.set_payload(*payload);
    request.set_source(source_name);
    if (timeout) *request.mutable_timeout() = ToProtoDuration(*timeout);
    request.mutable_headers()->insert(headers->begin(), headers->end());
    grpc::ClientContext rpc;
    if (timeout) rpc.set_deadline(absl::ToChronoTime(absl::Now() + *timeout + absl::Seconds(1)));
    v1::InvokeResponse response;
    verbose.Request("Invoke", service, request.method(), source_name, *headers);
    grpc::Status status = (*sidecar)->Invoke(&rpc, request, &response);
    verbose.Response(rpc, status);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    absl::StatusOr<JsonValue> reply =
        ProtoBytesToJson(*(*method)->output_type(), response.payload());
    if (!reply.ok()) return reply.status();
    context.PrintJson(*reply);
    return absl::OkStatus();
  }

  v1::InvokeAsyncRequest request;
  request.set_service(service);
  request.set_method(MethodName(**method));
  request.set_payload(*payload);
  request.set_source(source_name);
  request.set_callback(args.Get("callback"));
  request.set_idempotency_key(args.Get("idempotency-key"));
  if (timeout) *request.mutable_timeout() = ToProtoDuration(*timeout);
  request.mutable_headers()->insert(headers->begin(), headers->end());
  grpc::ClientContext rpc;
  rpc.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::InvokeAsyncResponse response;
  verbose.Request("InvokeAsync", service, request.method(), source_name, *headers);
  grpc::Status status = (*sidecar)->InvokeAsync(&rpc, request, &response);
  verbose.Response(rpc, status);
  if (!status.ok()) return context.RpcError(status, "InvokeAsync");
  if (async) {
    if (context.options().output == OutputFormat::kJson) {
      JsonValue accepted = JsonValue::Object();
      accepted.Set("cid", JsonValue::String(response.cid()));
      accepted.Set("deduplicated", JsonValue::Bool(response.deduplicated()));
      context.PrintJson(accepted);
    } else {
      context.out() << response.cid() << "\n";
    }
    return absl::OkStatus();
  }
  if (context.io().stderr_is_terminal) context.err() << "accepted " << response.cid() << "\n";
  return WaitForCall(context, **sidecar, response.cid(), *(*method)->output_type());
}

}  // namespace

Command InvokeCommand() {
  return Command{
      .path = "invoke",
      .summary = "Call METHOD of a mesh service with a JSON request (sync, --async or --wait)",
      .arguments = "SERVICE METHOD",
      .description =
          "Encodes the JSON request with the method's descriptor (fetched by gRPC server\n"
          "reflection from an instance of SERVICE, or from --protoset) and calls it through the\n"
          "sidecar. METHOD is the short name (SayHello) when only one service of the target has\n"
          "it, or the full name (greeter.v1.Greeter/SayHello).\n"
          "\n"
          "Without --async/--wait the call is synchronous and the reply is printed as JSON.\n"
          "With --async the call is made durable and its CID is printed at once (follow it with\n"
          "'callmesh calls get/wait CID'). With --wait it is made durable and then awaited; the\n"
          "reply is printed when it ends (a progress line is drawn when stderr is a terminal).\n"
          "A failed call exits 1 with its gRPC status code name and message on stderr.",
      .flags =
          {
              {.name = "data",
               .short_name = 'd',
               .value_name = "JSON",
               .help = "request as JSON; @FILE reads a file, - reads stdin (default {})"},
              {.name = "async", .help = "durable async call: print the CID and return"},
              {.name = "wait", .help = "durable async call, then wait for its outcome"},
              {.name = "callback",
               .value_name = "NAME",
               .help = "callback service for the completion (with --async/--wait)"},
              {.name = "idempotency-key",
               .value_name = "KEY",
               .help = "repeat-safe key: the same key returns the same CID (--async/--wait)"},
              {.name = "timeout",
               .value_name = "DURATION",
               .help = "deadline of the call, e.g. 5s, 250ms, 2m"},
              {.name = "header",
               .short_name = 'H',
               .value_name = "KEY=VALUE",
               .help = "header sent to the target as gRPC metadata",
               .repeated = true},
              {.name = "verbose",
               .short_name = 'v',
               .help = "print the request's headers, the sidecar's response metadata and "
                       "trailers, the status and the time taken on stderr"},
              {.name = "source",
               .value_name = "NAME",
               .help = "caller name seen by the target (default callmesh-cli; with a token or a "
                       "client certificate, the identity they prove)"},
          },
      .examples =
          "  callmesh invoke greeter SayHello -d '{\"name\": \"world\"}'\n"
          "  callmesh invoke greeter greeter.v1.Greeter/SayHello -d @hello.json --timeout 5s\n"
          "  echo '{\"name\": \"stdin\"}' | callmesh invoke greeter SayHello -d -\n"
          "  cid=$(callmesh invoke greeter SayHello -d '{\"name\": \"later\"}' --async)\n"
          "  callmesh invoke greeter SayHello -d '{\"name\": \"x\", \"delayMs\": 2000}' --wait\n"
          "  callmesh invoke greeter SayHello -d '{\"name\": \"x\"}' --async --callback audit \\\n"
          "      --idempotency-key order-42 --header tenant=acme\n"
          "  callmesh invoke greeter SayHello -d '{\"name\": \"x\"}' -v\n",
      .run = RunInvoke,
  };
}

}  // namespace callmesh::cli
