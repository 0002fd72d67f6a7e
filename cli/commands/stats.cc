// `callmesh stats`: the sidecar's counters (GetStats) as a table, or -o json.
#include "absl/strings/str_cat.h"
#include "cli/commands/commands.h"
#include "cli/json/json_proto.h"
#include "cli/text/table.h"

namespace callmesh::cli {
namespace {

absl::Status RunStats(CliContext& context, const ParsedArgs& args) {
  if (!args.positionals.empty()) {
    return InputError(absl::StrCat("stats takes no arguments, got \"", args.positionals[0], "\""));
  }
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  grpc::ClientContext rpc;
  rpc.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::SidecarStats stats;
  grpc::Status status = (*sidecar)->GetStats(&rpc, v1::GetStatsRequest(), &stats);
  if (!status.ok()) return context.RpcError(status, "GetStats");
  if (context.options().output == OutputFormat::kJson) {
    absl::StatusOr<JsonValue> json = MessageToJson(stats);
    if (!json.ok()) return json.status();
    context.PrintJson(*json);
    return absl::OkStatus();
  }
  Table table({"STAT", "VALUE", "MEANING"});
  table.AddRow({"started", FormatTimestamp(stats.started_at()), "when the sidecar started"});
  table.AddRow({"invokes_ok", absl::StrCat(stats.invokes_ok()),
                "synchronous calls answered OK since start"});
  table.AddRow({"invokes_failed", absl::StrCat(stats.invokes_failed()),
                "synchronous calls that failed since start"});
  table.AddRow({"async_accepted", absl::StrCat(stats.async_accepted()),
                "InvokeAsync and Cast calls accepted since start"});
  table.AddRow({"async_rejected", absl::StrCat(stats.async_rejected()),
                "InvokeAsync and Cast calls refused since start"});
  table.AddRow({"pending_calls", absl::StrCat(stats.pending_calls()),
                "async calls accepted and not finished (journal)"});
  table.AddRow({"running_calls", absl::StrCat(stats.running_calls()),
                "async calls held by the dispatcher now"});
  table.AddRow({"completions_delivered", absl::StrCat(stats.completions_delivered()),
                "completions acknowledged by their callback since start"});
  table.AddRow({"dead_letters", absl::StrCat(stats.dead_letters()),
                "completions whose callback gave up (callmesh dead-letters ls)"});
  table.AddRow(
      {"journal_healthy", stats.journal_healthy() ? "yes" : "NO", "whether the journal can write"});
  if (!stats.cluster().empty()) {
    table.AddRow({"cluster", stats.cluster(), "cluster mode: NATS, the other sidecars, errors"});
  }
  context.out() << table.Render();
  return absl::OkStatus();
}

}  // namespace

Command StatsCommand() {
  return Command{
      .path = "stats",
      .summary = "Show the sidecar's counters: calls, pending work, deliveries, dead letters",
      .arguments = "",
      .description =
          "Asks the sidecar for its counters (GetStats) and prints them as a table, or as JSON\n"
          "with -o json. For time series and per-service detail, scrape /metrics on the\n"
          "admin listener (README \"Operating callmesh\").",
      .flags = {},
      .examples =
          "  callmesh stats\n"
          "  callmesh stats -o json\n",
      .run = RunStats,
  };
}

}  // namespace callmesh::cli
