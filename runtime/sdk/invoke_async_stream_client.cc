#include "runtime/sdk/invoke_async_stream_client.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace callmesh {

// One InvokeAsyncStream. Its queue and write state are guarded by the client's mutex. A hold
// keeps gRPC from ending it (OnDone) until its reading side has ended and the client has marked
// it ending under that mutex: so no write is ever started on a stream gRPC is done with.
class InvokeAsyncStreamClient::Stream final
    : public grpc::ClientBidiReactor<v1::InvokeAsyncStreamRequest, v1::InvokeAsyncStreamResponse> {
 public:
  explicit Stream(InvokeAsyncStreamClient* client) : client_(client) {
    client_->stub_->async()->InvokeAsyncStream(&context_, this);
    AddHold();
    StartRead(&answers_);
    StartCall();
  }

  void SendLocked(v1::InvokeAsyncStreamCall call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(client_->mu_) {
    queue_.push_back(std::move(call));
    WriteNextLocked();
  }

  void Cancel() { context_.TryCancel(); }

  // Set by Ended, under the client's mutex: gRPC is done with this stream.
  bool done = false;

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&client_->mu_);
    writing_ = false;
    if (ok) WriteNextLocked();  // else the reading side learns how the stream ends
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      client_->Answered(answers_);
      StartRead(&answers_);
      return;
    }
    client_->Ending(this);
    RemoveHold();
  }

  void OnDone(const grpc::Status& status) override { client_->Ended(this, status); }

 private:
  // Writes the queued calls as one message: up to kMaxCallsPerMessage, and kMaxBatchBytes unless
  // it is a single call.
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(client_->mu_) {
    if (writing_ || queue_.empty()) return;
    writing_ = true;
    message_.Clear();
    size_t bytes = 0;
    while (!queue_.empty() && message_.calls_size() < kMaxCallsPerMessage) {
      const size_t size = queue_.front().ByteSizeLong();
      if (message_.calls_size() > 0 && bytes + size > kMaxBatchBytes) break;
      bytes += size;
      *message_.add_calls() = std::move(queue_.front());
      queue_.pop_front();
    }
    StartWrite(&message_);
  }

  InvokeAsyncStreamClient* const client_;
  grpc::ClientContext context_;
  // Written by gRPC between StartRead and OnReadDone.
  v1::InvokeAsyncStreamResponse answers_;
  std::deque<v1::InvokeAsyncStreamCall> queue_;
  // The message being written (gRPC reads it until OnWriteDone).
  v1::InvokeAsyncStreamRequest message_;
  bool writing_ = false;
};

InvokeAsyncStreamClient::InvokeAsyncStreamClient(v1::Sidecar::Stub* stub) : stub_(stub) {}

InvokeAsyncStreamClient::~InvokeAsyncStreamClient() {
  absl::MutexLock lock(&mu_);
  closing_ = true;
  for (const std::unique_ptr<Stream>& stream : streams_) {
    if (!stream->done) stream->Cancel();
  }
  auto all_done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::all_of(streams_.begin(), streams_.end(),
                       [](const std::unique_ptr<Stream>& stream) { return stream->done; });
  };
  mu_.Await(absl::Condition(&all_done));
}

InvokeAsyncStreamClient::Stream* InvokeAsyncStreamClient::OpenLocked(absl::Status* why) {
  if (closing_) {
    *why = absl::CancelledError("callmesh::Mesh is being destroyed");
    return nullptr;
  }
  if (unimplemented_) {
    *why = absl::UnimplementedError("the sidecar does not serve InvokeAsyncStream");
    return nullptr;
  }
  if (current_ != nullptr) return current_;
  // Streams gRPC is done with go now; a new one takes the calls.
  streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                [](const std::unique_ptr<Stream>& stream) { return stream->done; }),
                 streams_.end());
  streams_.push_back(std::make_unique<Stream>(this));
  current_ = streams_.back().get();
  return current_;
}

void InvokeAsyncStreamClient::Start(v1::InvokeAsyncStreamCall call, Done done) {
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    Stream* stream = OpenLocked(&refused);
    if (stream != nullptr) {
      const uint64_t tag = ++last_tag_;
      call.set_tag(tag);
      waiting_[tag] = {std::move(done), stream};
      stream->SendLocked(std::move(call));
      return;
    }
  }
  done(refused);
}

absl::StatusOr<v1::InvokeAsyncResponse> InvokeAsyncStreamClient::Call(
    v1::InvokeAsyncStreamCall call, absl::Duration timeout) {
  // Shared with `done`, which may still run after a timeout.
  struct Answer {
    absl::Mutex mu;
    std::optional<absl::StatusOr<v1::InvokeAsyncResponse>> result ABSL_GUARDED_BY(mu);
  };
  auto answer = std::make_shared<Answer>();
  Start(std::move(call), [answer](absl::StatusOr<v1::InvokeAsyncResponse> result) {
    absl::MutexLock lock(&answer->mu);
    answer->result = std::move(result);
  });
  absl::MutexLock lock(&answer->mu);
  auto answered = [&answer]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(answer->mu) {
    return answer->result.has_value();
  };
  if (!answer->mu.AwaitWithTimeout(absl::Condition(&answered), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "InvokeAsync: no answer from the sidecar within ", absl::FormatDuration(timeout),
        "; the call may still have been accepted (retry with the same idempotency key)"));
  }
  return *std::move(answer->result);
}

void InvokeAsyncStreamClient::Answered(const v1::InvokeAsyncStreamResponse& answers) {
  std::vector<std::pair<Done, absl::StatusOr<v1::InvokeAsyncResponse>>> answered;
  {
    absl::MutexLock lock(&mu_);
    for (const v1::InvokeAsyncStreamAnswer& answer : answers.answers()) {
      auto it = waiting_.find(answer.tag());
      if (it == waiting_.end()) continue;
      absl::StatusOr<v1::InvokeAsyncResponse> result =
          answer.code() == 0
              ? absl::StatusOr<v1::InvokeAsyncResponse>(answer.response())
              : absl::Status(static_cast<absl::StatusCode>(answer.code()), answer.message());
      answered.emplace_back(std::move(it->second.first), std::move(result));
      waiting_.erase(it);
    }
  }
  for (auto& [done, result] : answered) done(std::move(result));
}

void InvokeAsyncStreamClient::Ending(Stream* stream) {
  absl::MutexLock lock(&mu_);
  if (current_ == stream) current_ = nullptr;
}

void InvokeAsyncStreamClient::Ended(Stream* stream, const grpc::Status& status) {
  std::vector<Done> lost;
  absl::Status why;
  {
    absl::MutexLock lock(&mu_);
    stream->done = true;  // no longer current: Ending came first (the stream's hold)
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) unimplemented_ = true;
    if (unimplemented_) {
      why = absl::UnimplementedError("the sidecar does not serve InvokeAsyncStream");
    } else if (closing_) {
      why = absl::CancelledError("callmesh::Mesh is being destroyed");
    } else {
      why = absl::UnavailableError(absl::StrCat(
          "InvokeAsync: the stream to the sidecar ended before the answer came (",
          status.error_message(),
          "); the call may still have been accepted (retry with the same idempotency key)"));
    }
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->second.second != stream) {
        ++it;
        continue;
      }
      lost.push_back(std::move(it->second.first));
      it = waiting_.erase(it);
    }
  }
  for (Done& done : lost) done(why);
}

}  // namespace callmesh
