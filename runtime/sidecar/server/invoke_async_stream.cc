// Sidecar.InvokeAsyncStream: many InvokeAsync calls on one bidirectional stream. Each call goes
// through what a unary InvokeAsync does (SidecarService::DurableEnvelope, the dispatcher's Submit,
// SidecarService::AcceptStatus), and its answer is written back with its tag once the journal has
// reported it. What the stream saves is gRPC's per-call work (a call object, its headers,
// trailers and reactor on both sides), and more so by batching: a message carries every call the
// client had ready, and every answer that became ready while the previous message was written
// goes out in one message (the journal reports a whole group commit at once).
//
// Flow: one read and one write in flight at a time (gRPC's rule for a reactor). A call is
// "unanswered" from its read until its answer has been written; while kMaxUnanswered or more
// are, the reactor reads no further message until answers drain, so a client that writes faster
// than the journal accepts is held back by the stream's flow control instead of growing the
// sidecar's memory. The stream
// finishes OK once the client has half-closed and every request is answered; it finishes at once
// with the caller's authentication error; and with CANCELLED/UNAVAILABLE when the client goes away
// or a write fails. Answers still owed then are dropped (their calls were or were not accepted as
// the journal decides; a client retries with idempotency keys).
//
// Lifetime: the journal's callbacks may come after the stream has ended. They share the stream's
// state (and its mutex) with the reactor, and touch the reactor only while the stream is not
// finished — gRPC calls OnDone, where the reactor is deleted, only after Finish.
//
// Every gRPC operation (StartRead, StartWrite, Finish) is started under the state's mutex, so
// none can start after Finish. This relies on gRPC 1.51 running no reaction inline from them:
// seen in its behaviour here (the tests, cancellations included), not checked in its source.
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "runtime/common/grpc_status.h"
#include "runtime/sidecar/server/sidecar_service.h"

namespace callmesh::sidecar {

class InvokeAsyncStreamReactor final
    : public grpc::ServerBidiReactor<v1::InvokeAsyncStreamRequest, v1::InvokeAsyncStreamResponse> {
 public:
  // Calls read ahead of their answers before the reactor stops reading (one message may take it
  // past this).
  static constexpr size_t kMaxUnanswered = 1024;
  // Answers in one message at most (about 60 bytes each).
  static constexpr int kMaxAnswersPerMessage = 1024;

  InvokeAsyncStreamReactor(SidecarService* service, grpc::CallbackServerContext* context)
      : service_(service), context_(context), state_(std::make_shared<State>(this)) {
    absl::StatusOr<security::Caller> caller = service_->gatekeeper_->Authenticate(*context);
    absl::MutexLock lock(&state_->mu);
    if (!caller.ok()) {
      service_->async_rejected_.fetch_add(1);
      state_->FinishLocked(ToGrpcStatus(caller.status()));
      return;
    }
    caller_ = *std::move(caller);
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed (or went away: OnCancel comes too)
      absl::MutexLock lock(&state_->mu);
      state_->read_closed = true;
      state_->FinishIfAnsweredLocked();
      return;
    }
    v1::InvokeAsyncStreamRequest request = std::move(request_);
    request_.Clear();
    {
      absl::MutexLock lock(&state_->mu);
      state_->unanswered += request.calls_size();
      if (state_->unanswered < kMaxUnanswered) {
        if (!state_->finished) StartRead(&request_);
      } else {
        state_->read_paused = true;
      }
    }
    for (v1::InvokeAsyncStreamCall& call : *request.mutable_calls()) Handle(std::move(call));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&state_->mu);
    state_->writing = false;
    if (state_->finish_after_write.has_value()) {
      state_->FinishLocked(*state_->finish_after_write);
      return;
    }
    if (!ok) {
      state_->FinishLocked(
          grpc::Status(grpc::StatusCode::UNAVAILABLE,
                       "InvokeAsyncStream: an answer could not be written (the client is gone)"));
      return;
    }
    state_->unanswered -= state_->written.answers_size();
    if (state_->read_paused && !state_->finished && state_->unanswered < kMaxUnanswered) {
      state_->read_paused = false;
      StartRead(&request_);
    }
    state_->WriteNextLocked();
    state_->FinishIfAnsweredLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&state_->mu);
    state_->FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "InvokeAsyncStream cancelled"));
  }

  void OnDone() override { delete this; }

 private:
  // What the reactor and the journal's callbacks share.
  struct State {
    explicit State(InvokeAsyncStreamReactor* reactor) : reactor(reactor) {}

    // Queues an answer and writes it if no write is in flight; dropped once the stream is over.
    void QueueLocked(v1::InvokeAsyncStreamAnswer answer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      if (finished) return;
      answers.push_back(std::move(answer));
      WriteNextLocked();
    }

    // Writes the queued answers (up to kMaxAnswersPerMessage) as one message.
    void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      if (writing || finished || answers.empty()) return;
      writing = true;
      written.Clear();
      while (!answers.empty() && written.answers_size() < kMaxAnswersPerMessage) {
        *written.add_answers() = std::move(answers.front());
        answers.pop_front();
      }
      reactor->StartWrite(&written);
    }

    void FinishIfAnsweredLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      if (read_closed && unanswered == 0 && !writing) FinishLocked(grpc::Status::OK);
    }

    // Ends the stream once; deferred to OnWriteDone while a write is in flight (gRPC takes
    // Finish only with no write outstanding). The first status asked for is the one sent.
    void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      if (finished) return;
      if (writing) {
        if (!finish_after_write.has_value()) finish_after_write = status;
        return;
      }
      finished = true;
      answers.clear();
      reactor->Finish(status);
    }

    absl::Mutex mu;
    // Valid while !finished (gRPC deletes it in OnDone, after Finish).
    InvokeAsyncStreamReactor* const reactor;
    // Read and not yet answered on the stream (counts toward kMaxUnanswered).
    size_t unanswered ABSL_GUARDED_BY(mu) = 0;
    std::deque<v1::InvokeAsyncStreamAnswer> answers ABSL_GUARDED_BY(mu);
    // The message being written (gRPC reads it until OnWriteDone).
    v1::InvokeAsyncStreamResponse written ABSL_GUARDED_BY(mu);
    bool writing ABSL_GUARDED_BY(mu) = false;
    bool read_paused ABSL_GUARDED_BY(mu) = false;
    bool read_closed ABSL_GUARDED_BY(mu) = false;
    bool finished ABSL_GUARDED_BY(mu) = false;
    std::optional<grpc::Status> finish_after_write ABSL_GUARDED_BY(mu);
  };

  static v1::InvokeAsyncStreamAnswer Answer(uint64_t tag, const grpc::Status& status) {
    v1::InvokeAsyncStreamAnswer answer;
    answer.set_tag(tag);
    answer.set_code(static_cast<int32_t>(status.error_code()));
    answer.set_message(status.error_message());
    return answer;
  }

  // Checks and journals one call; its answer is queued now (refused) or from the journal.
  void Handle(v1::InvokeAsyncStreamCall call) {
    const uint64_t tag = call.tag();
    const calls::TraceContext trace{call.traceparent(), call.tracestate()};
    absl::StatusOr<v1::CallEnvelope> envelope = service_->DurableEnvelope(
        caller_, calls::DurableRequest::Of(call.request()), *context_, &trace);
    if (!envelope.ok()) {
      absl::MutexLock lock(&state_->mu);
      state_->QueueLocked(Answer(tag, ToGrpcStatus(envelope.status())));
      return;
    }
    const std::string cid = envelope->cid();
    service_->async_.dispatcher->Submit(
        *std::move(envelope), [service = service_, state = state_, tag,
                               cid](absl::StatusOr<CallStore::AcceptResult> result) {
          v1::InvokeAsyncStreamAnswer answer = Answer(tag, service->AcceptStatus(result, cid));
          if (result.ok()) {
            answer.mutable_response()->set_cid(result->cid);
            answer.mutable_response()->set_deduplicated(result->deduplicated);
          } else if (answer.code() == grpc::StatusCode::UNAVAILABLE) {
            answer.mutable_response()->set_cid(cid);
          }
          absl::MutexLock lock(&state->mu);
          state->QueueLocked(std::move(answer));
        });
  }

  SidecarService* const service_;
  grpc::CallbackServerContext* const context_;
  const std::shared_ptr<State> state_;
  // Set in the constructor, read-only afterwards.
  security::Caller caller_;
  // Written by gRPC between StartRead and OnReadDone; read only in OnReadDone.
  v1::InvokeAsyncStreamRequest request_;
};

grpc::ServerBidiReactor<v1::InvokeAsyncStreamRequest, v1::InvokeAsyncStreamResponse>*
SidecarService::InvokeAsyncStream(grpc::CallbackServerContext* context) {
  return new InvokeAsyncStreamReactor(this, context);
}

}  // namespace callmesh::sidecar
