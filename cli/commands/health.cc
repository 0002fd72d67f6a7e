// `callmesh health`: asks grpc.health.v1.Health/Check of the sidecar (or of any gRPC server given
// as --sidecar) and exits 0 only for SERVING — the health check of the callmeshd container image.
#include <thread>

#include "absl/strings/str_cat.h"
#include "cli/commands/commands.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace callmesh::cli {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

constexpr absl::Duration kDefaultTimeout = absl::Seconds(5);
// How often --wait asks again while the server is unreachable or not serving.
constexpr absl::Duration kWaitInterval = absl::Milliseconds(200);

std::string ServiceLabel(const std::string& service) {
  return service.empty() ? "the server" : absl::StrCat("service \"", service, "\"");
}

// One Check: OK with the serving status, or the reason no status could be had (unreachable,
// NOT_FOUND for a service name the server does not know, the deadline).
absl::StatusOr<HealthCheckResponse::ServingStatus> CheckOnce(CliContext& context,
                                                             const std::string& service,
                                                             absl::Time deadline) {
  absl::StatusOr<v1::Sidecar::Stub*> connected = context.Sidecar();
  if (!connected.ok()) return connected.status();
  std::unique_ptr<grpc::health::v1::Health::Stub> health =
      grpc::health::v1::Health::NewStub(context.sidecar_channel());
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  grpc::ClientContext rpc;
  rpc.set_deadline(absl::ToChronoTime(deadline));
  const grpc::Status status = health->Check(&rpc, request, &response);
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    return absl::UnimplementedError(absl::StrCat(context.sidecar_address(),
                                                 " does not serve grpc.health.v1 (",
                                                 status.error_message(), ")"));
  }
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    return absl::NotFoundError(absl::StrCat(context.sidecar_address(), " has no health status for ",
                                            ServiceLabel(service)));
  }
  if (!status.ok()) return context.RpcError(status, "health check");
  return response.status();
}

absl::Status RunHealth(CliContext& context, const ParsedArgs& args) {
  if (!args.positionals.empty()) {
    return InputError(absl::StrCat("health takes no arguments, got \"", args.positionals[0],
                                   "\" (use --service NAME for a service's status)"));
  }
  absl::Duration timeout = kDefaultTimeout;
  if (args.Has("timeout")) {
    absl::StatusOr<absl::Duration> parsed = ParsePositiveDuration(args.Get("timeout"), "--timeout");
    if (!parsed.ok()) return parsed.status();
    timeout = *parsed;
  }
  const std::string service = args.Get("service");
  const bool wait = args.Has("wait");
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<HealthCheckResponse::ServingStatus> status =
        CheckOnce(context, service, deadline);
    if (status.ok() && *status == HealthCheckResponse::SERVING) {
      context.out() << "SERVING\n";
      return absl::OkStatus();
    }
    const bool retry = wait && absl::Now() + kWaitInterval < deadline &&
                       (status.ok() || absl::IsUnavailable(status.status()));
    if (!retry) {
      if (!status.ok()) return status.status();
      context.out() << HealthCheckResponse::ServingStatus_Name(*status) << "\n";
      return absl::UnavailableError(
          absl::StrCat(ServiceLabel(service), " at ", context.sidecar_address(), " is ",
                       HealthCheckResponse::ServingStatus_Name(*status),
                       wait ? absl::StrCat(" after waiting ", absl::FormatDuration(timeout)) : ""));
    }
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(kWaitInterval));
  }
}

}  // namespace

Command HealthCommand() {
  return Command{
      .path = "health",
      .summary = "Check the sidecar's grpc.health.v1 status (exit 0 only when SERVING)",
      .arguments = "",
      .description =
          "Asks grpc.health.v1.Health/Check of the sidecar and prints the status. Exits 0 for\n"
          "SERVING, 1 otherwise: NOT_SERVING (callmeshd is recovering its journal, draining\n"
          "after SIGTERM, or cannot write its journal), unreachable, or an unknown --service.\n"
          "--wait asks again every 200ms until SERVING or --timeout. Works with any gRPC server\n"
          "that serves grpc.health.v1 (--sidecar ADDR names it). Container images use it as\n"
          "their health check.",
      .flags = {{.name = "service",
                 .value_name = "NAME",
                 .help = "gRPC service name to check (default: the whole server)"},
                {.name = "wait", .help = "wait until SERVING, up to --timeout"},
                {.name = "timeout",
                 .value_name = "DURATION",
                 .help = "deadline of the check, or of the whole wait (default 5s)"}},
      .examples =
          "  callmesh health\n"
          "  callmesh health --wait --timeout 30s\n"
          "  callmesh --sidecar 127.0.0.1:50051 health --service greeter.v1.Greeter\n",
      .run = RunHealth,
  };
}

}  // namespace callmesh::cli
