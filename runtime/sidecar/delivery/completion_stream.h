// One `callmesh.v1.Callback/OnCompletions` stream from this sidecar to one callback instance: many
// completions in flight at once, each answered by its own CompletionAck (callback.proto).
//
//   std::shared_ptr<CompletionStream> stream = CompletionStream::Open(instance, clock);
//   bool sent = stream->Send(completion, clock->Now() + absl::Seconds(30),
//                            [](const grpc::Status& status, bool stream_unimplemented) {...});
//   if (!sent) { /* the stream has ended: open a new one */ }
//
// Each sent completion gets exactly one result through its `done`: the status of its ack (keyed by
// CID and delivery attempt), DEADLINE_EXCEEDED when no ack came by its deadline (on `clock`; the
// stream stays open and a late ack is ignored), or the stream's own status when the stream ends
// before the ack (UNAVAILABLE if it ended OK). `stream_unimplemented` is true only when the
// receiver answered the stream itself UNIMPLEMENTED before acknowledging anything: it serves
// OnCompletion only, and the completion was not handed to it.
//
// Writes go out one at a time in the order of Send (gRPC's flow control is the back-pressure: a
// receiver that stops reading makes later sends wait in memory, each bounded by its deadline).
// The stream uses the instance's channel, hence its credentials (mTLS). It stays open until the
// receiver or the network ends it, or Cancel. Thread-safe; `done` runs on a gRPC or clock thread,
// never under the stream's lock.
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/client_callback.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "callmesh/v1/call.pb.h"
#include "runtime/common/clock.h"
#include "runtime/sidecar/registry/registry.h"

namespace callmesh::sidecar {

class CompletionStream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
                               public std::enable_shared_from_this<CompletionStream> {
 public:
  using Done = std::function<void(const grpc::Status& status, bool stream_unimplemented)>;

  // Starts the stream on `instance`'s channel. `clock` must outlive the stream.
  static std::shared_ptr<CompletionStream> Open(std::shared_ptr<Instance> instance, Clock* clock);

  // Queues `completion` (its cid and delivery_attempt name the ack that answers it). False when
  // the stream has already ended (OnDone has run; see unimplemented()): then `done` never runs.
  // While the stream is ending, the completion is not written and `done` gets the stream's status.
  bool Send(const v1::Completion& completion, absl::Time deadline, Done done);

  // True once the stream has ended or is ending: a new stream is needed for new completions.
  bool ended() const;
  // True once the stream has ended UNIMPLEMENTED without any ack (the receiver has no stream).
  bool unimplemented() const;
  // The instance the stream goes to.
  const std::shared_ptr<Instance>& instance() const { return instance_; }

  // Ends the stream: what is outstanding gets CANCELLED.
  void Cancel() { context_.TryCancel(); }
  // Waits until the stream has ended and every `done` has returned.
  void AwaitEnded();

  // gRPC's reactions.
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  CompletionStream(std::shared_ptr<Instance> instance, Clock* clock);  // use Open

 private:
  struct Outstanding {
    Done done;
    Clock::TimerId timer = 0;
  };
  using Key = std::pair<std::string, uint32_t>;  // cid, delivery attempt

  // Starts the next queued write if none is in flight.
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes `key`'s entry (if still there) and runs its `done` with `status`.
  void Finish(const Key& key, const grpc::Status& status);

  const std::shared_ptr<Instance> instance_;
  Clock* const clock_;
  grpc::ClientContext context_;
  grpc::ByteBuffer read_;
  mutable absl::Mutex mu_;
  // Set when the stream is ending (its read failed): no more sends.
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  // Set by OnDone when it takes what is outstanding: later sends are refused.
  bool answered_all_ ABSL_GUARDED_BY(mu_) = false;
  // Set when OnDone has returned everything it owes.
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool acked_any_ ABSL_GUARDED_BY(mu_) = false;
  bool unimplemented_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ByteBuffer write_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::ByteBuffer> queued_ ABSL_GUARDED_BY(mu_);
  std::map<Key, Outstanding> outstanding_ ABSL_GUARDED_BY(mu_);
  // Keeps the reactor alive until OnDone has returned.
  std::shared_ptr<CompletionStream> self_;
};

}  // namespace callmesh::sidecar
