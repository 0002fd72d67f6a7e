// Publish/subscribe from the command line: `callmesh publish TOPIC -d JSON`, `callmesh topics`,
// `callmesh subscriptions replay|rm`, and the EVENT dead letters (`dead-letters ls --kind event`,
// `dead-letters redrive TOPIC/SUBSCRIBER/SEQUENCE`, in dead_letters.cc).
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cli/commands/commands.h"
#include "cli/commands/request_input.h"
#include "cli/json/json_proto.h"
#include "cli/text/table.h"
#include "runtime/common/names.h"
#include "runtime/common/proto_time.h"

namespace callmesh::cli {
namespace {

constexpr absl::Duration kRpcTimeout = absl::Seconds(30);

absl::StatusOr<v1::ListTopicsResponse> ListTopics(CliContext& context) {
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  grpc::ClientContext rpc;
  rpc.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
  v1::ListTopicsResponse response;
  grpc::Status status = (*sidecar)->ListTopics(&rpc, v1::ListTopicsRequest(), &response);
  if (!status.ok()) return context.RpcError(status, "ListTopics");
  return response;
}

// The payload of a publish: -d JSON encoded as the request type of the topic's subscribers (the
// first subscription's method, by reflection or --protoset), or with --raw the -d text as is.
absl::StatusOr<std::string> EventPayload(CliContext& context, const ParsedArgs& args,
                                         const std::string& topic) {
  absl::StatusOr<std::string> json = ReadRequest(context, args);
  if (!json.ok()) return json.status();
  if (args.Has("raw")) return *json;
  absl::StatusOr<v1::ListTopicsResponse> topics = ListTopics(context);
  if (!topics.ok()) return topics.status();
  const v1::SubscriptionInfo* subscription = nullptr;
  for (const v1::TopicInfo& info : topics->topics()) {
    if (info.name() == topic && info.subscriptions_size() > 0) {
      subscription = &info.subscriptions(0);
    }
  }
  if (subscription == nullptr) {
    return InputError(absl::StrCat("topic ", topic,
                                   " has no subscription to take the event type from; pass "
                                   "--raw to publish the -d text as the payload bytes"));
  }
  absl::StatusOr<DescriptorSource*> source = context.Descriptors(subscription->service());
  if (!source.ok()) return source.status();
  absl::StatusOr<const google::protobuf::MethodDescriptor*> method =
      ResolveMethod(**source, subscription->method(), subscription->service());
  if (!method.ok()) return AsInputError(method.status());
  absl::StatusOr<std::string> payload = JsonToProtoBytes(*(*method)->input_type(), *json);
  if (!payload.ok()) {
    return InputError(absl::StrCat("bad event for ", (*method)->input_type()->full_name(), ": ",
                                   payload.status().message()));
  }
  return payload;
}

absl::Status RunPublish(CliContext& context, const ParsedArgs& args) {
  if (args.positionals.size() != 1) {
    return InputError(absl::StrCat("publish needs exactly one TOPIC, got ", args.positionals.size(),
                                   " argument(s)"));
  }
  const std::string& topic = args.positionals[0];
  if (absl::Status s = ValidateTopic(topic, "TOPIC"); !s.ok()) return AsInputError(s);
  if (args.Has("source")) {
    if (absl::Status s = ValidateServiceName(args.Get("source"), "--source"); !s.ok()) {
      return AsInputError(s);
    }
  }
  absl::StatusOr<std::map<std::string, std::string>> headers = ParseHeaders(args);
  if (!headers.ok()) return headers.status();
  absl::StatusOr<std::string> payload = EventPayload(context, args, topic);
  if (!payload.ok()) return payload.status();
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  v1::PublishRequest request;
  request.set_topic(topic);
  request.set_payload(*std::move(payload));
  request.set_source(args.Get("source", "callmesh-cli"));
  request.set_idempotency_key(args.Get("idempotency-key"));
  request.mutable_headers()->insert(headers->begin(), headers->end());
  grpc::ClientContext rpc;
  rpc.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
  v1::PublishResponse response;
  grpc::Status status = (*sidecar)->Publish(&rpc, request, &response);
  if (!status.ok()) return context.RpcError(status, "Publish");
  absl::StatusOr<JsonValue> json = MessageToJson(response);
  if (!json.ok()) return json.status();
  context.PrintJson(*json);
  return absl::OkStatus();
}

absl::Status RunTopics(CliContext& context, const ParsedArgs& args) {
  if (!args.positionals.empty()) {
    return InputError(absl::StrCat("topics takes no arguments, got \"", args.positionals[0], "\""));
  }
  absl::StatusOr<v1::ListTopicsResponse> topics = ListTopics(context);
  if (!topics.ok()) return topics.status();
  if (context.options().output == OutputFormat::kJson) {
    absl::StatusOr<JsonValue> json = MessageToJson(*topics);
    if (!json.ok()) return json.status();
    context.PrintJson(*json);
    return absl::OkStatus();
  }
  Table table({"TOPIC", "SEQUENCES", "EVENTS", "BYTES", "MAX BYTES", "MAX AGE", "SUBSCRIBER",
               "METHOD", "MODE", "POSITION", "LAG", "IN FLIGHT", "DEAD"});
  for (const v1::TopicInfo& topic : topics->topics()) {
    const std::string sequences =
        topic.events() == 0 ? "-"
                            : absl::StrCat(topic.first_sequence(), "-", topic.last_sequence());
    const std::vector<std::string> head = {
        topic.name(),
        sequences,
        absl::StrCat(topic.events()),
        absl::StrCat(topic.bytes()),
        absl::StrCat(topic.max_bytes()),
        absl::FormatDuration(FromProtoDuration(topic.max_age()))};
    if (topic.subscriptions_size() == 0) {
      std::vector<std::string> row = head;
      for (int i = 0; i < 7; ++i) row.push_back("-");
      table.AddRow(row);
    }
    for (const v1::SubscriptionInfo& sub : topic.subscriptions()) {
      std::vector<std::string> row = head;
      row.insert(row.end(), {sub.service(), sub.method(),
                             sub.mode() == v1::SUBSCRIPTION_MODE_ORDERED ? "ORDERED" : "PARALLEL",
                             absl::StrCat(sub.position()), absl::StrCat(sub.lag()),
                             absl::StrCat(sub.in_flight()), absl::StrCat(sub.dead_letters())});
      table.AddRow(row);
    }
  }
  context.out() << table.Render();
  return absl::OkStatus();
}

absl::Status RunReplay(CliContext& context, const ParsedArgs& args) {
  if (args.positionals.size() != 2) {
    return InputError(absl::StrCat("subscriptions replay needs TOPIC and SERVICE, got ",
                                   args.positionals.size(), " argument(s)"));
  }
  v1::ReplaySubscriptionRequest request;
  request.set_topic(args.positionals[0]);
  request.set_service(args.positionals[1]);
  if (absl::Status s = ValidateTopic(request.topic(), "TOPIC"); !s.ok()) return AsInputError(s);
  if (absl::Status s = ValidateServiceName(request.service(), "SERVICE"); !s.ok()) {
    return AsInputError(s);
  }
  if (args.Has("from-sequence") == args.Has("from-time")) {
    return InputError("subscriptions replay needs one of --from-sequence N or --from-time TIME");
  }
  if (args.Has("from-sequence")) {
    uint64_t sequence = 0;
    if (!absl::SimpleAtoi(args.Get("from-sequence"), &sequence) || sequence == 0) {
      return InputError(absl::StrCat("invalid --from-sequence \"", args.Get("from-sequence"),
                                     "\": expected a sequence (1 or more)"));
    }
    request.set_sequence(sequence);
  } else {
    absl::Time time;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, args.Get("from-time"), &time, &error)) {
      return InputError(absl::StrCat("invalid --from-time \"", args.Get("from-time"),
                                     "\": expected RFC 3339, e.g. 2026-05-01T12:00:00Z"));
    }
    *request.mutable_time() = ToProtoTimestamp(time);
  }
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  grpc::ClientContext rpc;
  rpc.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
  v1::ReplaySubscriptionResponse response;
  grpc::Status status = (*sidecar)->ReplaySubscription(&rpc, request, &response);
  if (!status.ok()) return context.RpcError(status, "ReplaySubscription");
  absl::StatusOr<JsonValue> json = MessageToJson(response);
  if (!json.ok()) return json.status();
  context.PrintJson(*json);
  return absl::OkStatus();
}

absl::Status RunUnsubscribe(CliContext& context, const ParsedArgs& args) {
  if (args.positionals.size() != 2) {
    return InputError(absl::StrCat("subscriptions rm needs TOPIC and SERVICE, got ",
                                   args.positionals.size(), " argument(s)"));
  }
  v1::UnsubscribeRequest request;
  request.set_topic(args.positionals[0]);
  request.set_service(args.positionals[1]);
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = context.Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  grpc::ClientContext rpc;
  rpc.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
  v1::UnsubscribeResponse response;
  grpc::Status status = (*sidecar)->Unsubscribe(&rpc, request, &response);
  if (!status.ok()) return context.RpcError(status, "Unsubscribe");
  context.out() << "unsubscribed " << request.service() << " from " << request.topic() << "\n";
  return absl::OkStatus();
}

}  // namespace

std::vector<Command> PubSubCommands() {
  return {
      Command{
          .path = "publish",
          .summary = "Publish an event to a topic (acknowledged once durable)",
          .arguments = "TOPIC",
          .description =
              "Encodes the JSON event as the request type of the topic's subscription method\n"
              "(descriptors by server reflection on a subscriber, or --protoset); --raw\n"
              "publishes the -d text as the payload bytes. Prints event_id, sequence and the\n"
              "number of subscriptions it goes to.",
          .flags = {{.name = "data",
                     .short_name = 'd',
                     .value_name = "JSON",
                     .help = "the event: inline JSON, @FILE or - (stdin); default {}"},
                    {.name = "header",
                     .short_name = 'H',
                     .value_name = "KEY=VALUE",
                     .help = "metadata for subscribers",
                     .repeated = true},
                    {.name = "source",
                     .value_name = "NAME",
                     .help = "publisher name (default callmesh-cli)"},
                    {.name = "idempotency-key",
                     .value_name = "KEY",
                     .help = "a repeated key returns the first event and publishes nothing"},
                    {.name = "raw", .help = "publish the -d text as is"}},
          .examples = "  callmesh publish orders.placed -d '{\"orderId\":\"o-17\"}'\n",
          .run = RunPublish,
      },
      Command{
          .path = "topics",
          .summary = "List topics, their retention and subscriptions with position and lag",
          .arguments = "",
          .description = "Table by default; -o json prints ListTopicsResponse.",
          .flags = {},
          .examples = "  callmesh topics\n",
          .run = RunTopics,
      },
      Command{
          .path = "subscriptions replay",
          .summary = "Deliver a subscription's events again from a sequence or a time",
          .arguments = "TOPIC SERVICE",
          .description = "Moves the position of SERVICE's subscription to TOPIC. Prints the first\n"
                         "sequence delivered again and the first one the topic still holds.",
          .flags = {{.name = "from-sequence", .value_name = "N", .help = "from sequence N"},
                    {.name = "from-time",
                     .value_name = "TIME",
                     .help = "from the first event published at or after TIME (RFC 3339)"}},
          .examples = "  callmesh subscriptions replay orders.placed billing --from-sequence 1\n",
          .run = RunReplay,
      },
      Command{
          .path = "subscriptions rm",
          .summary = "Remove a durable subscription",
          .arguments = "TOPIC SERVICE",
          .description = "Events stop accumulating for it. NOT_FOUND (exit 1) if unknown.",
          .flags = {},
          .examples = "  callmesh subscriptions rm orders.placed billing\n",
          .run = RunUnsubscribe,
      },
  };
}

}  // namespace callmesh::cli
