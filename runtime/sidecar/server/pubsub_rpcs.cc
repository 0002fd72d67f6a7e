// The publish/subscribe part of the Sidecar API: Publish, ListTopics, ReplaySubscription,
// Unsubscribe, ListEventDeadLetters, RedriveEventDeadLetter, and the subscriptions of
// RegisterService. The contract is in sidecar.proto ("Publish/subscribe"); the durable side is
// runtime/sidecar/pubsub.
#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/common/grpc_status.h"
#include "runtime/common/names.h"
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/calls/call_context.h"
#include "runtime/sidecar/calls/envelope.h"
#include "runtime/sidecar/server/finish_now.h"
#include "runtime/sidecar/server/sidecar_service.h"

namespace callmesh::sidecar {
namespace {

// The caller of a pub/sub RPC, authenticated by `gatekeeper`; UNIMPLEMENTED when this sidecar
// has no topics (`has_topics` false).
absl::StatusOr<security::Caller> PubSubCaller(const security::Gatekeeper& gatekeeper,
                                              bool has_topics,
                                              const grpc::ServerContextBase& context) {
  absl::StatusOr<security::Caller> caller = gatekeeper.Authenticate(context);
  if (!caller.ok()) return caller.status();
  if (!has_topics) {
    return absl::UnimplementedError("publish/subscribe is not configured in this sidecar");
  }
  return caller;
}

// A request about one subscriber's view of a topic: `topic` and `subscriber` (the field
// `subscriber_field`) are valid names and `caller` acts for the subscriber.
absl::Status CheckSubscriberRequest(const security::Gatekeeper& gatekeeper,
                                    const security::Caller& caller, const std::string& topic,
                                    const std::string& subscriber,
                                    absl::string_view subscriber_field) {
  if (absl::Status s = ValidateTopic(topic, "topic"); !s.ok()) return s;
  if (absl::Status s = ValidateServiceName(subscriber, subscriber_field); !s.ok()) return s;
  return gatekeeper.CheckActsFor(caller, subscriber);
}

}  // namespace

absl::Status SidecarService::ValidateSubscriptions(
    const v1::RegisterServiceRequest& request) const {
  if (async_.topics == nullptr) {
    if (request.subscriptions_size() > 0) {
      return absl::UnimplementedError("publish/subscribe is not configured in this sidecar");
    }
    return absl::OkStatus();
  }
  const std::vector<v1::SubscriptionInfo> existing = async_.topics->Subscriptions();
  for (int i = 0; i < request.subscriptions_size(); ++i) {
    const v1::Subscription& sub = request.subscriptions(i);
    const std::string path = absl::StrCat("subscriptions[", i, "]");
    if (absl::Status s = ValidateTopic(sub.topic(), absl::StrCat(path, ".topic")); !s.ok()) {
      return s;
    }
    absl::StatusOr<std::string> method = MethodPath(sub.method(), absl::StrCat(path, ".method"));
    if (!method.ok()) return method.status();
    // "/pkg.Service/Method" -> "pkg.Service".
    const std::string grpc_service = method->substr(1, method->rfind('/') - 1);
    if (request.grpc_services_size() > 0 &&
        std::find(request.grpc_services().begin(), request.grpc_services().end(), grpc_service) ==
            request.grpc_services().end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ".method: ", sub.method(), " is not a method of this instance: it serves ",
          absl::StrJoin(request.grpc_services(), ", "), ", not ", grpc_service));
    }
    if (!v1::SubscriptionMode_IsValid(sub.mode())) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".mode: unknown mode ", sub.mode()));
    }
    for (const v1::SubscriptionInfo& info : existing) {
      if (info.topic() == sub.topic() && info.service() == request.name() &&
          info.method() != sub.method()) {
        return absl::FailedPreconditionError(
            absl::StrCat(path, ": service ", request.name(), " already subscribes to topic ",
                         sub.topic(), " with method ", info.method(),
                         " (one subscription per service and topic; "
                         "Unsubscribe first)"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status SidecarService::Subscribe(const std::string& service,
                                       const v1::Subscription& subscription) {
  absl::StatusOr<v1::SubscriptionInfo> info = async_.topics->Subscribe(service, subscription);
  if (!info.ok()) return info.status();
  async_.fan_out->Subscribed(*info);
  if (async_.on_subscribed) async_.on_subscribed(service, subscription);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* SidecarService::Publish(grpc::CallbackServerContext* context,
                                                  const v1::PublishRequest* request,
                                                  v1::PublishResponse* response) {
  absl::StatusOr<security::Caller> caller =
      PubSubCaller(*gatekeeper_, async_.topics != nullptr, *context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  absl::Status invalid = ValidateTopic(request->topic(), "topic");
  if (invalid.ok()) {
    invalid = CheckPayloadSize(request->payload().size(), async_.max_payload_bytes);
  }
  if (invalid.ok()) invalid = calls::CheckIdempotencyKey(request->idempotency_key());
  for (const auto& [key, value] : request->headers()) {
    if (!invalid.ok()) break;
    invalid = ValidateHeader(key, value);
  }
  absl::StatusOr<std::string> source = gatekeeper_->SourceOf(*caller, request->source(), *context);
  if (invalid.ok() && !source.ok()) invalid = source.status();
  if (!invalid.ok()) return FinishNow(context, ToGrpcStatus(invalid));
  const calls::CallContext call_context =
      calls::ReadCallContext(*context, *source, "", options_.name, *clock_);
  invalid = ValidateServiceName(call_context.source, "source");
  if (!invalid.ok()) return FinishNow(context, ToGrpcStatus(invalid));

  v1::Event event;
  event.set_topic(request->topic());
  event.set_event_id(invoker_->NextCid());
  event.set_payload(request->payload());
  event.mutable_headers()->insert(request->headers().begin(), request->headers().end());
  event.set_source(call_context.source);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  async_.topics->Publish(
      std::move(event), request->idempotency_key(),
      [this, reactor, response,
       topic = request->topic()](absl::StatusOr<pubsub::TopicLog::PublishResult> result) {
        if (!result.ok()) {
          reactor->Finish(ToGrpcStatus(result.status()));
          return;
        }
        response->set_event_id(result->event_id);
        response->set_sequence(result->sequence);
        response->set_subscribers(result->subscribers);
        response->set_deduplicated(result->deduplicated);
        reactor->Finish(grpc::Status::OK);
        // Off the journal's writer thread: the fan-out reads the event back.
        if (!result->deduplicated) {
          async_.runner->Post([this, topic] { async_.fan_out->Published(topic); });
        }
      });
  return reactor;
}

grpc::ServerUnaryReactor* SidecarService::ListTopics(grpc::CallbackServerContext* context,
                                                     const v1::ListTopicsRequest*,
                                                     v1::ListTopicsResponse* response) {
  absl::StatusOr<security::Caller> caller =
      PubSubCaller(*gatekeeper_, async_.topics != nullptr, *context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  absl::StatusOr<std::vector<v1::EventDeadLetter>> dead = async_.topics->ListDeadLetters("", "");
  if (!dead.ok()) return FinishNow(context, ToGrpcStatus(dead.status()));
  std::map<std::pair<std::string, std::string>, int> dead_per_subscription;  // (topic, service)
  for (const v1::EventDeadLetter& d : *dead) {
    ++dead_per_subscription[{d.event().topic(), d.subscriber()}];
  }
  for (v1::TopicInfo& topic : async_.topics->Topics()) {
    for (v1::SubscriptionInfo& sub : *topic.mutable_subscriptions()) {
      sub.set_in_flight(async_.fan_out->InFlight(sub.topic(), sub.service()));
      const auto counted = dead_per_subscription.find({sub.topic(), sub.service()});
      sub.set_dead_letters(counted == dead_per_subscription.end() ? 0 : counted->second);
    }
    *response->add_topics() = std::move(topic);
  }
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* SidecarService::ReplaySubscription(
    grpc::CallbackServerContext* context, const v1::ReplaySubscriptionRequest* request,
    v1::ReplaySubscriptionResponse* response) {
  absl::StatusOr<security::Caller> caller =
      PubSubCaller(*gatekeeper_, async_.topics != nullptr, *context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  absl::Status invalid = CheckSubscriberRequest(*gatekeeper_, *caller, request->topic(),
                                                request->service(), "service");
  if (invalid.ok() && request->from_case() == v1::ReplaySubscriptionRequest::FROM_NOT_SET) {
    invalid = absl::InvalidArgumentError("sequence or time: one is required");
  }
  if (!invalid.ok()) return FinishNow(context, ToGrpcStatus(invalid));
  return FinishOnWorker(context, [this, request, response]() -> grpc::Status {
    uint64_t from = request->sequence();
    if (request->from_case() == v1::ReplaySubscriptionRequest::kTime) {
      absl::StatusOr<uint64_t> at =
          async_.topics->SequenceAt(request->topic(), FromProtoTimestamp(request->time()));
      if (!at.ok()) return ToGrpcStatus(at.status());
      from = *at;
    }
    absl::StatusOr<pubsub::TopicLog::ReplayResult> replayed =
        async_.topics->Replay(request->topic(), request->service(), from);
    if (!replayed.ok()) return ToGrpcStatus(replayed.status());
    async_.fan_out->Replayed(request->topic(), request->service(), replayed->next_sequence - 1);
    response->set_next_sequence(replayed->next_sequence);
    response->set_first_available_sequence(replayed->first_available_sequence);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* SidecarService::Unsubscribe(grpc::CallbackServerContext* context,
                                                      const v1::UnsubscribeRequest* request,
                                                      v1::UnsubscribeResponse*) {
  absl::StatusOr<security::Caller> caller =
      PubSubCaller(*gatekeeper_, async_.topics != nullptr, *context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  absl::Status invalid = CheckSubscriberRequest(*gatekeeper_, *caller, request->topic(),
                                                request->service(), "service");
  if (!invalid.ok()) return FinishNow(context, ToGrpcStatus(invalid));
  return FinishOnWorker(context, [this, request]() -> grpc::Status {
    if (absl::Status s = async_.topics->Unsubscribe(request->topic(), request->service());
        !s.ok()) {
      return ToGrpcStatus(s);
    }
    async_.fan_out->Unsubscribed(request->topic(), request->service());
    if (async_.on_unsubscribed) async_.on_unsubscribed(request->topic(), request->service());
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* SidecarService::ListEventDeadLetters(
    grpc::CallbackServerContext* context, const v1::ListEventDeadLettersRequest* request,
    v1::ListEventDeadLettersResponse* response) {
  absl::StatusOr<security::Caller> caller =
      PubSubCaller(*gatekeeper_, async_.topics != nullptr, *context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  // Event dead letters belong to their subscriber: others must name one they act for.
  if (!caller->anonymous() && !caller->admin) {
    if (request->subscriber().empty()) {
      return FinishNow(context, grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                             "subscriber: required unless you are an admin "
                                             "(event dead letters are visible to their subscriber "
                                             "and security.admins)"));
    }
    if (absl::Status s = gatekeeper_->CheckActsFor(*caller, request->subscriber()); !s.ok()) {
      return FinishNow(context, ToGrpcStatus(s));
    }
  }
  absl::StatusOr<std::vector<v1::EventDeadLetter>> dead_letters =
      async_.topics->ListDeadLetters(request->topic(), request->subscriber());
  if (!dead_letters.ok()) return FinishNow(context, ToGrpcStatus(dead_letters.status()));
  for (v1::EventDeadLetter& dead_letter : *dead_letters) {
    *response->add_dead_letters() = std::move(dead_letter);
  }
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* SidecarService::RedriveEventDeadLetter(
    grpc::CallbackServerContext* context, const v1::RedriveEventDeadLetterRequest* request,
    v1::RedriveEventDeadLetterResponse*) {
  absl::StatusOr<security::Caller> caller =
      PubSubCaller(*gatekeeper_, async_.topics != nullptr, *context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  absl::Status invalid = CheckSubscriberRequest(*gatekeeper_, *caller, request->topic(),
                                                request->subscriber(), "subscriber");
  if (invalid.ok() && request->sequence() == 0) {
    invalid = absl::InvalidArgumentError("sequence: is required (sequences start at 1)");
  }
  if (!invalid.ok()) return FinishNow(context, ToGrpcStatus(invalid));
  return FinishOnWorker(context, [this, request] {
    return ToGrpcStatus(
        async_.fan_out->Redrive(request->topic(), request->subscriber(), request->sequence()));
  });
}

}  // namespace callmesh::sidecar
