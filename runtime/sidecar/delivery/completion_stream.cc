#include "runtime/sidecar/delivery/completion_stream.h"

#include <vector>

#include "callmesh/v1/callback.pb.h"
#include "runtime/common/byte_buffers.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar {

constexpr char kOnCompletionsPath[] = "/callmesh.v1.Callback/OnCompletions";

CompletionStream::CompletionStream(std::shared_ptr<Instance> instance, Clock* clock)
    : instance_(std::move(instance)), clock_(clock) {}

std::shared_ptr<CompletionStream> CompletionStream::Open(std::shared_ptr<Instance> instance,
                                                         Clock* clock) {
  auto stream = std::make_shared<CompletionStream>(std::move(instance), clock);
  stream->self_ = stream;
  stream->instance_->stub()->PrepareBidiStreamingCall(&stream->context_, kOnCompletionsPath,
                                                      grpc::StubOptions(), stream.get());
  stream->StartRead(&stream->read_);
  stream->StartCall();
  spdlog::debug("completion stream to {} opened", stream->instance_->address());
  return stream;
}

bool CompletionStream::Send(const v1::Completion& completion, absl::Time deadline, Done done) {
  const Key key(completion.cid(), completion.delivery_attempt());
  {
    absl::MutexLock lock(&mu_);
    // Until OnDone has run, an entry is answered by it at the latest (with the status that tells
    // an UNIMPLEMENTED stream from a broken one).
    if (answered_all_) return false;
    Outstanding& entry = outstanding_[key];
    if (entry.done) {
      // The same attempt twice would leave one of them without an answer: refuse it as a
      // programming error of the caller, loudly but without crashing the sidecar.
      spdlog::error("[cid={}] delivery attempt {} sent twice on one stream", key.first, key.second);
      return false;
    }
    entry.done = std::move(done);
  }
  // The timer is set before the write (so the attempt's time runs from before the receiver can
  // see it) and outside the lock (a FakeClock may run it at once). Finish finds the entry or not,
  // so a timer that races with the ack or the stream's end is harmless.
  const Clock::TimerId timer = clock_->ScheduleAt(deadline, [weak = weak_from_this(), key] {
    if (std::shared_ptr<CompletionStream> stream = weak.lock()) {
      stream->Finish(key, grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                       "no acknowledgement within the attempt timeout"));
    }
  });
  bool cancel = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = outstanding_.find(key);
    if (it != outstanding_.end()) {
      it->second.timer = timer;
      // Once the stream is ending, OnDone answers the entry with the stream's status.
      if (!ending_) {
        queued_.push_back(StringToByteBuffer(completion.SerializeAsString()));
        WriteNextLocked();
      }
    } else {
      cancel = true;  // already answered (timed out at once, or the stream ended)
    }
  }
  if (cancel) clock_->Cancel(timer);
  return true;
}

bool CompletionStream::ended() const {
  absl::MutexLock lock(&mu_);
  return ending_;
}

bool CompletionStream::unimplemented() const {
  absl::MutexLock lock(&mu_);
  return unimplemented_;
}

void CompletionStream::AwaitEnded() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&ended_));
}

void CompletionStream::WriteNextLocked() {
  if (writing_ || queued_.empty() || ending_) return;
  writing_ = true;
  write_ = std::move(queued_.front());
  queued_.pop_front();
  StartWrite(&write_);
}

void CompletionStream::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  // A failed write means the stream is broken; its read fails too and OnDone follows.
  if (ok) WriteNextLocked();
}

void CompletionStream::OnReadDone(bool ok) {
  if (!ok) {
    absl::MutexLock lock(&mu_);
    ending_ = true;
    queued_.clear();
    return;
  }
  v1::CompletionAck ack;
  if (!ack.ParseFromString(ByteBufferToString(read_))) {
    spdlog::warn("completion stream to {}: unreadable acknowledgement, ending the stream",
                 instance_->address());
    {
      absl::MutexLock lock(&mu_);
      ending_ = true;
    }
    context_.TryCancel();
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    acked_any_ = true;
  }
  Finish(Key(ack.cid(), ack.delivery_attempt()),
         grpc::Status(static_cast<grpc::StatusCode>(ack.status_code()), ack.status_message()));
  StartRead(&read_);
}

void CompletionStream::Finish(const Key& key, const grpc::Status& status) {
  Outstanding entry;
  {
    absl::MutexLock lock(&mu_);
    auto it = outstanding_.find(key);
    if (it == outstanding_.end()) return;  // timed out before, or a stray ack
    entry = std::move(it->second);
    outstanding_.erase(it);
  }
  if (entry.timer != 0) clock_->Cancel(entry.timer);
  entry.done(status, /*stream_unimplemented=*/false);
}

void CompletionStream::OnDone(const grpc::Status& status) {
  std::map<Key, Outstanding> outstanding;
  bool unimplemented = false;
  {
    absl::MutexLock lock(&mu_);
    ending_ = true;
    answered_all_ = true;
    outstanding.swap(outstanding_);
    unimplemented = status.error_code() == grpc::StatusCode::UNIMPLEMENTED && !acked_any_;
    unimplemented_ = unimplemented;
  }
  const grpc::Status ended =
      status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "the completion stream ended before the acknowledgement")
                  : status;
  if (unimplemented) {
    spdlog::info("completion stream to {}: OnCompletions not implemented, using OnCompletion",
                 instance_->address());
  } else {
    spdlog::info("completion stream to {} ended ({} {}) with {} completions unacknowledged",
                 instance_->address(), static_cast<int>(status.error_code()),
                 status.error_message(), outstanding.size());
  }
  // Every timer goes before any `done` runs, so that no attempt's timer is pending next to the
  // retries these schedule.
  for (auto& [key, entry] : outstanding) {
    if (entry.timer != 0) clock_->Cancel(entry.timer);
  }
  for (auto& [key, entry] : outstanding) entry.done(ended, unimplemented);
  std::shared_ptr<CompletionStream> self;
  {
    absl::MutexLock lock(&mu_);
    ended_ = true;
    self = std::move(self_);
  }
  // `self` (and maybe the last reference) goes here, after the lock is released.
}

}  // namespace callmesh::sidecar
