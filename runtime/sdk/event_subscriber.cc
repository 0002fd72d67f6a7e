#include "runtime/sdk/event_subscriber.h"

#include "absl/strings/numbers.h"
#include "runtime/common/grpc_status.h"
#include "runtime/common/metadata.h"

namespace callmesh {

EventContext EventContext::From(const grpc::ServerContextBase& server_context) {
  EventContext context;
  context.call_ = Context::From(server_context);
  const auto& metadata = server_context.client_metadata();
  if (auto topic = metadata.find(kTopicMetadata); topic != metadata.end()) {
    context.topic_.assign(topic->second.data(), topic->second.size());
  }
  if (auto sequence = metadata.find(kSequenceMetadata); sequence != metadata.end()) {
    uint64_t value = 0;
    if (absl::SimpleAtoi(absl::string_view(sequence->second.data(), sequence->second.size()),
                         &value)) {
      context.sequence_ = value;
    }
  }
  return context;
}

grpc::Status ToEventReply(const absl::Status& handled) { return ToGrpcStatus(handled); }

}  // namespace callmesh
