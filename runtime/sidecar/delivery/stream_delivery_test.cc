// Callback delivery on the OnCompletions stream, on a FakeClock, against a real gRPC callback
// service on loopback (scripted per completion) and a real journal: acks, acked errors, a stream
// that breaks with completions outstanding, the per-completion timeout, the fallback to
// OnCompletion for a service without the stream and for a completion over the payload limit,
// Stop at shutdown, and the delivery spans (to a real OTLP/HTTP receiver on loopback).
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "callmesh/v1/callback.grpc.pb.h"
#include "gtest/gtest.h"
#include "runtime/common/message_limits.h"
#include "runtime/sidecar/delivery/callback_deliverer.h"
#include "runtime/sidecar/testing/lifecycle_harness.h"
#include "runtime/sidecar/tracing/call_tracer.h"
#include "runtime/sidecar/tracing/otlp_receiver.h"
#include "runtime/sidecar/tracing/span.h"
#include "runtime/sidecar/tracing/span_exporter.h"

namespace callmesh::sidecar {
namespace {

using ::callmesh::testing::LifecycleHarness;
using ::callmesh::testing::ThreeAttemptsNoJitter;

// A callback service whose OnCompletions answers each completion as scripted (in arrival order,
// over all streams): ack with a code, hold (never ack), or break the stream (end it with
// UNAVAILABLE). With `streams_unimplemented`, it answers every stream UNIMPLEMENTED and serves
// OnCompletion only, like a service written before the stream existed. Records what arrived, and
// how many streams ended by the sidecar's cancellation.
class StreamingCallback final : public v1::Callback::Service {
 public:
  enum class Step { kAck, kFail, kHold, kBreak };
  struct Seen {
    v1::Completion completion;
    int stream = 0;  // 1-based number of the stream it came on; 0 = OnCompletion
  };

  explicit StreamingCallback(bool streams_unimplemented = false)
      : streams_unimplemented_(streams_unimplemented) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(this);
    // As the SDK's ServiceHost: a completion wraps a reply of up to the payload limit.
    builder.SetMaxReceiveMessageSize(
        static_cast<int>(MaxWrappedMessageBytes(kMaxPayloadBytesLimit)));
    server_ = builder.BuildAndStart();
    address_ = absl::StrCat("127.0.0.1:", port);
  }
  ~StreamingCallback() override { server_->Shutdown(); }

  const std::string& address() const { return address_; }
  void Script(std::vector<Step> steps) {
    absl::MutexLock lock(&mu_);
    script_.insert(script_.end(), steps.begin(), steps.end());
  }
  std::vector<Seen> seen() const {
    absl::MutexLock lock(&mu_);
    return seen_;
  }
  int streams_opened() const {
    absl::MutexLock lock(&mu_);
    return streams_;
  }
  // Safety net for a broken test, not a measurement.
  bool AwaitSeen(size_t n) const {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return seen_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60));
  }
  // True once `n` streams have ended cancelled by the client (false after a minute: a hang guard).
  bool AwaitStreamsCancelled(int n) const {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return cancelled_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60));
  }

  grpc::Status OnCompletion(grpc::ServerContext*, const v1::Completion* completion,
                            v1::OnCompletionResponse*) override {
    absl::MutexLock lock(&mu_);
    seen_.push_back({*completion, 0});
    return grpc::Status::OK;
  }

  grpc::Status OnCompletions(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::CompletionAck, v1::Completion>* stream) override {
    int number = 0;
    {
      absl::MutexLock lock(&mu_);
      number = ++streams_;
    }
    if (streams_unimplemented_) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "");
    v1::Completion completion;
    while (stream->Read(&completion)) {
      Step step = Step::kAck;
      {
        absl::MutexLock lock(&mu_);
        seen_.push_back({completion, number});
        if (!script_.empty()) {
          step = script_.front();
          script_.pop_front();
        }
      }
      if (step == Step::kHold) continue;
      if (step == Step::kBreak) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "broken");
      v1::CompletionAck ack;
      ack.set_cid(completion.cid());
      ack.set_delivery_attempt(completion.delivery_attempt());
      if (step == Step::kFail) {
        ack.set_status_code(static_cast<int>(grpc::StatusCode::INTERNAL));
        ack.set_status_message("handler failed");
      }
      stream->Write(ack);
    }
    if (context->IsCancelled()) {
      absl::MutexLock lock(&mu_);
      ++cancelled_;
    }
    return grpc::Status::OK;
  }

 private:
  const bool streams_unimplemented_;
  mutable absl::Mutex mu_;
  std::deque<Step> script_ ABSL_GUARDED_BY(mu_);
  std::vector<Seen> seen_ ABSL_GUARDED_BY(mu_);
  int streams_ ABSL_GUARDED_BY(mu_) = 0;
  int cancelled_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

class StreamDeliveryTest : public ::testing::Test {
 protected:
  explicit StreamDeliveryTest(bool streams_unimplemented = false)
      : callback_(streams_unimplemented), deliverer_(MakeDeliverer(/*tracer=*/nullptr)) {
    EXPECT_TRUE(h_.registry.AddStatic("audit", callback_.address()).ok());
  }

  std::unique_ptr<CallbackDeliverer> MakeDeliverer(tracing::CallTracer* tracer) {
    return std::make_unique<CallbackDeliverer>(&h_.store, &h_.invoker, &h_.runner,
                                               DeliveryPolicy{.retry = ThreeAttemptsNoJitter(),
                                                              .attempt_timeout = absl::Seconds(30),
                                                              .jitter_seed = 7,
                                                              .tracer = tracer});
  }
  ~StreamDeliveryTest() override {
    h_.runner.Stop();
    deliverer_.reset();
  }

  // A call that ended SUCCEEDED with its completion owed to "audit".
  v1::Completion Completed() { return h_.Completed("audit"); }

  void ExpectDelivered(const v1::Completion& completion) {
    absl::StatusOr<v1::Call> done =
        h_.store.AwaitDelivery(completion.cid(), v1::DELIVERY_STATE_DELIVERED);
    ASSERT_TRUE(done.ok()) << done.status();
  }

  v1::DeliveryState DeliveryOf(const v1::Completion& completion) {
    absl::StatusOr<v1::Call> call = h_.store.GetCall(completion.cid());
    EXPECT_TRUE(call.ok()) << call.status();
    return call.ok() ? call->callback_delivery() : v1::DELIVERY_STATE_UNSPECIFIED;
  }

  // Lets the back-off after failed attempts run out (jitter 0: exactly the policy's delay).
  void AdvancePastBackoff(absl::Duration backoff) {
    const absl::Time due = h_.clock.Now() + backoff;
    ASSERT_TRUE(h_.clock.AwaitTimerDueBy(due));
    ASSERT_EQ(h_.clock.next_timer(), due);
    h_.clock.AdvanceTo(due);
  }

  LifecycleHarness h_;
  StreamingCallback callback_;
  std::unique_ptr<CallbackDeliverer> deliverer_;
};

TEST_F(StreamDeliveryTest, ManyCompletionsGoOnOneStreamAndAreMarkedDeliveredOnTheirAcks) {
  std::vector<v1::Completion> completions;
  for (int i = 0; i < 5; ++i) completions.push_back(Completed());
  for (const v1::Completion& completion : completions) deliverer_->Deliver(completion, "audit");
  for (const v1::Completion& completion : completions) ExpectDelivered(completion);
  const std::vector<StreamingCallback::Seen> seen = callback_.seen();
  ASSERT_EQ(seen.size(), 5u);
  for (const StreamingCallback::Seen& s : seen) {
    EXPECT_EQ(s.stream, 1);  // no unary call, one stream
    EXPECT_EQ(s.completion.delivery_attempt(), 1u);
    EXPECT_EQ(s.completion.reply(), "reply");
  }
  EXPECT_EQ(callback_.streams_opened(), 1);
}

// A process that is an instance of two callback services at one address (a ServiceHost's
// "<app>" and "<app>-async-callback") keeps one stream per service: deliveries to the two do not
// replace each other's stream.
TEST_F(StreamDeliveryTest, TwoServicesAtOneAddressEachKeepTheirStream) {
  ASSERT_TRUE(h_.registry.AddStatic("audit-async-callback", callback_.address()).ok());
  const v1::Completion first = h_.Completed("audit");
  deliverer_->Deliver(first, "audit");
  ExpectDelivered(first);
  const v1::Completion second = h_.Completed("audit-async-callback");
  deliverer_->Deliver(second, "audit-async-callback");
  ExpectDelivered(second);
  const v1::Completion third = h_.Completed("audit");
  deliverer_->Deliver(third, "audit");
  ExpectDelivered(third);
  const std::vector<StreamingCallback::Seen> seen = callback_.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].stream, 1);
  EXPECT_EQ(seen[1].stream, 2);
  EXPECT_EQ(seen[2].stream, 1);  // the first service's stream, still open
  EXPECT_EQ(callback_.streams_opened(), 2);
}

TEST_F(StreamDeliveryTest, AHeldAckKeepsTheCompletionPendingUntilItsTimeoutThenItIsRetried) {
  callback_.Script({StreamingCallback::Step::kHold});
  const v1::Completion completion = Completed();
  deliverer_->Deliver(completion, "audit");
  ASSERT_TRUE(callback_.AwaitSeen(1));
  // Received but not acknowledged: not delivered.
  EXPECT_EQ(DeliveryOf(completion), v1::DELIVERY_STATE_PENDING);
  h_.clock.Advance(absl::Seconds(30));  // the attempt timeout
  AdvancePastBackoff(absl::Seconds(1));
  ExpectDelivered(completion);
  const std::vector<StreamingCallback::Seen> seen = callback_.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].completion.delivery_attempt(), 2u);
  EXPECT_EQ(seen[1].stream, 1);  // a timeout does not end the stream
  EXPECT_EQ(callback_.streams_opened(), 1);
}

TEST_F(StreamDeliveryTest, AnAckedErrorIsRetriedWithBackoffThenDeadLettered) {
  callback_.Script({StreamingCallback::Step::kFail, StreamingCallback::Step::kFail,
                    StreamingCallback::Step::kFail});
  const v1::Completion completion = Completed();
  deliverer_->Deliver(completion, "audit");
  ASSERT_TRUE(callback_.AwaitSeen(1));
  AdvancePastBackoff(absl::Seconds(1));
  ASSERT_TRUE(callback_.AwaitSeen(2));
  AdvancePastBackoff(absl::Seconds(2));
  const v1::DeadLetter letter = h_.OnlyDeadLetter(completion.cid());
  EXPECT_EQ(letter.delivery_attempts(), 3u);
  EXPECT_EQ(letter.last_status_code(), static_cast<int>(grpc::StatusCode::INTERNAL));
  EXPECT_EQ(letter.last_status_message(), "handler failed");
  const std::vector<StreamingCallback::Seen> seen = callback_.seen();
  ASSERT_EQ(seen.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(seen[i].completion.delivery_attempt(), i + 1);
    EXPECT_EQ(seen[i].stream, 1);
  }
}

TEST_F(StreamDeliveryTest, ABrokenStreamFailsWhatIsOutstandingOnItAndANewStreamDeliversIt) {
  // The first completion is held (received, never acked); the second breaks the stream.
  callback_.Script({StreamingCallback::Step::kHold, StreamingCallback::Step::kBreak});
  const v1::Completion first = Completed();
  const v1::Completion second = Completed();
  deliverer_->Deliver(first, "audit");
  ASSERT_TRUE(callback_.AwaitSeen(1));
  deliverer_->Deliver(second, "audit");
  ASSERT_TRUE(callback_.AwaitSeen(2));
  // Both attempts failed with the stream: both wait out the first back-off, neither delivered.
  // (Their retries are scheduled by two runner threads: wait for both before moving time. The
  // stream cancels its attempts' timers before it reports any failure, so two timers both due
  // after the back-off are the two retries.)
  const absl::Time retry_at = h_.clock.Now() + absl::Seconds(1);
  const absl::Time safety_net = absl::Now() + absl::Seconds(60);
  while (!(h_.clock.pending_timers() == 2 && h_.clock.next_timer() == retry_at) &&
         absl::Now() < safety_net) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(h_.clock.pending_timers(), 2u);
  EXPECT_EQ(DeliveryOf(first), v1::DELIVERY_STATE_PENDING);
  EXPECT_EQ(DeliveryOf(second), v1::DELIVERY_STATE_PENDING);
  AdvancePastBackoff(absl::Seconds(1));
  ExpectDelivered(first);
  ExpectDelivered(second);
  const std::vector<StreamingCallback::Seen> seen = callback_.seen();
  ASSERT_EQ(seen.size(), 4u);
  for (size_t i = 2; i < 4; ++i) {
    EXPECT_EQ(seen[i].stream, 2);
    EXPECT_EQ(seen[i].completion.delivery_attempt(), 2u);
  }
  EXPECT_EQ(callback_.streams_opened(), 2);
}

// Stop, as Sidecar::Shutdown calls it: the stream open at that moment is cancelled (the callback
// service sees it), the completion outstanding on it stays PENDING and is not retried (the next
// start delivers it), and a delivery asked for afterwards starts nothing.
TEST_F(StreamDeliveryTest, StopCancelsTheOpenStreamLeavesItsCompletionPendingAndStartsNothing) {
  callback_.Script({StreamingCallback::Step::kHold});
  const v1::Completion held = Completed();
  deliverer_->Deliver(held, "audit");
  ASSERT_TRUE(callback_.AwaitSeen(1));
  deliverer_->Stop();
  EXPECT_TRUE(callback_.AwaitStreamsCancelled(1));
  EXPECT_EQ(DeliveryOf(held), v1::DELIVERY_STATE_PENDING);
  // The cancelled attempt's result was not taken as a failure: no retry is scheduled (and the
  // attempt's own timeout timer went with the stream).
  EXPECT_EQ(h_.clock.pending_timers(), 0u);

  const v1::Completion later = Completed();
  deliverer_->Deliver(later, "audit");
  ASSERT_TRUE(h_.runner.AwaitIdle());
  EXPECT_EQ(h_.clock.pending_timers(), 0u);
  EXPECT_EQ(DeliveryOf(later), v1::DELIVERY_STATE_PENDING);
  EXPECT_EQ(callback_.streams_opened(), 1);  // no new stream (nor a unary call: seen is 1)
  EXPECT_EQ(callback_.seen().size(), 1u);
  deliverer_->Stop();  // idempotent; the destructor calls it once more
}

// A completion wraps a reply of up to max_payload_bytes (the target's channel takes no more) in
// its envelope: at the limit it goes on the stream like any other. One beyond even the envelope's
// allowance is not written on the stream (the receiver would refuse the message and break the
// stream for every completion outstanding on it): it goes the unary way, where the invoker
// refuses it alone before sending anything, attempt after attempt, until it is dead-lettered with
// the reason. The stream is untouched: completions before and after it go on it.
TEST_F(StreamDeliveryTest,
       AReplyAtThePayloadLimitGoesOnTheStreamAndAMessageBeyondItsEnvelopeUnary) {
  const v1::Completion before = Completed();
  deliverer_->Deliver(before, "audit");
  ExpectDelivered(before);
  const uint64_t limit = h_.invoker.options().max_payload_bytes;
  v1::Completion at_limit = Completed();
  at_limit.set_reply(std::string(limit, 'r'));
  ASSERT_GT(at_limit.ByteSizeLong(), limit);  // the envelope on top of the reply
  deliverer_->Deliver(at_limit, "audit");
  ExpectDelivered(at_limit);

  v1::Completion oversized = Completed();
  oversized.set_reply(std::string(MaxWrappedMessageBytes(limit), 'x'));
  deliverer_->Deliver(oversized, "audit");
  AdvancePastBackoff(absl::Seconds(1));
  AdvancePastBackoff(absl::Seconds(2));
  const v1::DeadLetter letter = h_.OnlyDeadLetter(oversized.cid());
  EXPECT_EQ(letter.delivery_attempts(), 3u);
  v1::Completion last_sent = oversized;
  last_sent.set_delivery_attempt(3);
  EXPECT_EQ(
      letter.last_status_message(),
      absl::StrCat("message of ", last_sent.ByteSizeLong(), " bytes exceeds max_payload_bytes (",
                   limit, ") plus ", kEnvelopeAllowanceBytes, " bytes for its envelope"));

  const v1::Completion after = Completed();
  deliverer_->Deliver(after, "audit");
  ExpectDelivered(after);
  const std::vector<StreamingCallback::Seen> seen = callback_.seen();
  ASSERT_EQ(seen.size(), 3u);  // the oversized one never reached the service
  EXPECT_EQ(seen[0].completion.cid(), before.cid());
  EXPECT_EQ(seen[1].completion.cid(), at_limit.cid());
  EXPECT_EQ(seen[1].completion.reply().size(), limit);
  EXPECT_EQ(seen[2].completion.cid(), after.cid());
  for (const StreamingCallback::Seen& one : seen) EXPECT_EQ(one.stream, 1);  // one stream
  EXPECT_EQ(callback_.streams_opened(), 1);
}

class UnaryOnlyDeliveryTest : public StreamDeliveryTest {
 protected:
  UnaryOnlyDeliveryTest() : StreamDeliveryTest(/*streams_unimplemented=*/true) {}
};

TEST_F(UnaryOnlyDeliveryTest, UnimplementedFallsBackToOnCompletionAndIsRememberedForAWhile) {
  const v1::Completion first = Completed();
  deliverer_->Deliver(first, "audit");
  ExpectDelivered(first);
  const v1::Completion second = Completed();
  deliverer_->Deliver(second, "audit");
  ExpectDelivered(second);
  std::vector<StreamingCallback::Seen> seen = callback_.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].stream, 0);                          // OnCompletion
  EXPECT_EQ(seen[0].completion.delivery_attempt(), 1u);  // turned away, not a failed attempt
  EXPECT_EQ(seen[1].stream, 0);
  EXPECT_EQ(callback_.streams_opened(), 1);  // asked once, not per completion

  h_.clock.Advance(CallbackDeliverer::kAskStreamAgainAfter);
  const v1::Completion third = Completed();
  deliverer_->Deliver(third, "audit");
  ExpectDelivered(third);
  EXPECT_EQ(callback_.streams_opened(), 2);  // asked again once the time is up
  EXPECT_EQ(callback_.seen().size(), 3u);
}

// With tracing on, each delivery attempt records a "callmesh.callback" span, whichever way it went,
// and the callback receives that span as its traceparent (on the stream, in the message).
class TracedDeliveryTest : public StreamDeliveryTest {
 protected:
  TracedDeliveryTest()
      : exporter_(*tracing::SpanExporter::Create({.endpoint = receiver_.url(),
                                                  .service_name = "callmeshd/test",
                                                  // Only Flush sends.
                                                  .flush_interval = absl::Hours(1)})),
        tracer_(exporter_.get(), &h_.clock) {
    deliverer_ = MakeDeliverer(&tracer_);
  }
  ~TracedDeliveryTest() override {
    // Before the tracer goes: the deliverer ends spans until it has stopped.
    h_.runner.Stop();
    deliverer_.reset();
  }

  // The exported delivery spans by CID and attempt.
  std::map<std::pair<std::string, std::string>, tracing::ReceivedSpan> DeliverySpans() {
    exporter_->Flush();
    std::map<std::pair<std::string, std::string>, tracing::ReceivedSpan> spans;
    for (tracing::ReceivedSpan& span : receiver_.spans()) {
      EXPECT_EQ(span.name, "callmesh.callback");
      spans[{span.attributes["callmesh.cid"], span.attributes["callmesh.delivery_attempt"]}] = span;
    }
    EXPECT_TRUE(receiver_.malformed().empty());
    return spans;
  }

  tracing::OtlpReceiver receiver_;
  std::unique_ptr<tracing::SpanExporter> exporter_;
  tracing::CallTracer tracer_;
};

TEST_F(TracedDeliveryTest, AStreamedDeliveryRecordsTheSameSpanAsAUnaryOne) {
  StreamingCallback legacy(/*streams_unimplemented=*/true);
  ASSERT_TRUE(h_.registry.AddStatic("legacy", legacy.address()).ok());
  // The streamed completion's first attempt is refused by its ack, the second taken.
  callback_.Script({StreamingCallback::Step::kFail});
  const v1::Completion streamed = h_.Completed("audit");
  deliverer_->Deliver(streamed, "audit");
  ASSERT_TRUE(callback_.AwaitSeen(1));
  AdvancePastBackoff(absl::Seconds(1));
  ExpectDelivered(streamed);
  const v1::Completion unary = h_.Completed("legacy");
  deliverer_->Deliver(unary, "legacy");
  ExpectDelivered(unary);

  auto spans = DeliverySpans();
  ASSERT_EQ(spans.size(), 3u);
  const tracing::ReceivedSpan& refused = spans[{streamed.cid(), "1"}];
  const tracing::ReceivedSpan& taken = spans[{streamed.cid(), "2"}];
  const tracing::ReceivedSpan& pushed = spans[{unary.cid(), "1"}];
  // The unary delivery's span is the reference: the streamed ones carry the same attributes,
  // rpc.method naming the stream.
  EXPECT_EQ(pushed.kind, static_cast<int>(tracing::SpanKind::kClient));
  EXPECT_EQ(pushed.status_code, static_cast<int>(tracing::SpanStatus::kOk));
  EXPECT_EQ(pushed.attributes.at("callmesh.callback"), "legacy");
  EXPECT_EQ(pushed.attributes.at("rpc.method"), "callmesh.v1.Callback/OnCompletion");
  EXPECT_EQ(pushed.attributes.at("rpc.grpc.status_code"), "0");
  for (const tracing::ReceivedSpan* span : {&refused, &taken}) {
    EXPECT_EQ(span->kind, pushed.kind);
    EXPECT_EQ(span->service_name, pushed.service_name);
    EXPECT_EQ(span->attributes.at("callmesh.callback"), "audit");
    EXPECT_EQ(span->attributes.at("rpc.method"), "callmesh.v1.Callback/OnCompletions");
    std::set<std::string> keys, reference_keys;
    for (const auto& [key, value] : span->attributes) keys.insert(key);
    for (const auto& [key, value] : pushed.attributes) reference_keys.insert(key);
    EXPECT_EQ(keys, reference_keys);
  }
  EXPECT_EQ(refused.status_code, static_cast<int>(tracing::SpanStatus::kError));
  EXPECT_EQ(refused.attributes.at("rpc.grpc.status_code"),
            absl::StrCat(static_cast<int>(grpc::StatusCode::INTERNAL)));
  EXPECT_EQ(taken.status_code, static_cast<int>(tracing::SpanStatus::kOk));
  EXPECT_EQ(taken.attributes.at("rpc.grpc.status_code"), "0");

  // Each streamed attempt carried its own span as the message's traceparent.
  const std::vector<StreamingCallback::Seen> seen = callback_.seen();
  ASSERT_EQ(seen.size(), 2u);
  for (const StreamingCallback::Seen& s : seen) {
    EXPECT_EQ(s.stream, 1);
    const std::optional<tracing::SpanContext> sent =
        tracing::ParseTraceparent(s.completion.traceparent());
    ASSERT_TRUE(sent.has_value()) << s.completion.traceparent();
    const tracing::ReceivedSpan& span = s.completion.delivery_attempt() == 1 ? refused : taken;
    EXPECT_EQ(sent->span_id, span.span_id);
    EXPECT_EQ(sent->trace_id, span.trace_id);
  }
  ASSERT_EQ(legacy.seen().size(), 1u);
  EXPECT_EQ(legacy.seen()[0].stream, 0);  // OnCompletion
}

}  // namespace
}  // namespace callmesh::sidecar
