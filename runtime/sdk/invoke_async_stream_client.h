// The client side of Sidecar.InvokeAsyncStream, for Mesh::InvokeAsync and bench/async/async_load:
// the InvokeAsync calls of every thread go on one stream to the sidecar instead of one RPC each.
// Calls queued while a message is being written go out together in the next one (at most
// kMaxCallsPerMessage, and within the sidecar's request size limit); each answer goes to the
// caller of its tag.
//
//   InvokeAsyncStreamClient stream(stub.get());
//   absl::StatusOr<v1::InvokeAsyncResponse> accepted =
//       stream.Call(std::move(call), absl::Seconds(30));          // waits for the answer
//   if (absl::IsUnimplemented(accepted.status())) { /* an older sidecar: use the unary RPC */ }
//   stream.Start(std::move(call), [](absl::StatusOr<v1::InvokeAsyncResponse> answer) {...});
//
// The stream is opened at the first call and opened again by the first call after it ended.
// Errors (Call's result, Start's `done`):
//   - the status the sidecar answered for the call (as a unary InvokeAsync would have ended);
//   - UNIMPLEMENTED when the sidecar does not serve the stream (no call was taken; from then on
//     every Call answers so at once, and the caller makes unary RPCs);
//   - UNAVAILABLE when the stream ended before the answer came: the call may still have been
//     accepted (retry with the same idempotency key);
//   - DEADLINE_EXCEEDED (Call only) when no answer came within `timeout` (likewise ambiguous);
//   - CANCELLED once the client is being destroyed.
//
// `done` runs on a gRPC thread (or at once on the caller's, for an error found before sending);
// it must not block. Thread-safe. The destructor cancels the stream and waits until gRPC has
// ended it; the calls waiting then get CANCELLED.
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/support/client_callback.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "callmesh/v1/sidecar.grpc.pb.h"

namespace callmesh {

class InvokeAsyncStreamClient {
 public:
  // Calls in one message at most.
  static constexpr int kMaxCallsPerMessage = 256;
  // Bytes of calls in one message at most, when it holds more than one call: a fraction of the
  // sidecar's smallest request limit (max_payload_bytes 1 MiB, plus 64 KiB of envelope).
  static constexpr size_t kMaxBatchBytes = 512 << 10;

  // `stub` (whose channel carries the credentials) must outlive this client.
  explicit InvokeAsyncStreamClient(v1::Sidecar::Stub* stub);
  ~InvokeAsyncStreamClient();

  InvokeAsyncStreamClient(const InvokeAsyncStreamClient&) = delete;
  InvokeAsyncStreamClient& operator=(const InvokeAsyncStreamClient&) = delete;

  using Done = std::function<void(absl::StatusOr<v1::InvokeAsyncResponse>)>;

  // Sends `call` (its tag is set here); `done` gets its answer once. See the errors above.
  void Start(v1::InvokeAsyncStreamCall call, Done done);

  // Start, then waits up to `timeout` for the answer.
  absl::StatusOr<v1::InvokeAsyncResponse> Call(v1::InvokeAsyncStreamCall call,
                                               absl::Duration timeout);

 private:
  class Stream;

  // The stream to send on: the current one, or a new one if it is ending. nullptr once the
  // sidecar answered UNIMPLEMENTED or the client is closing (`why` says which).
  Stream* OpenLocked(absl::Status* why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Called by a stream: the answers of one message; the end of its reading side (no answer comes
  // any more, nothing more is sent on it); its end (gRPC is done with it).
  void Answered(const v1::InvokeAsyncStreamResponse& answers);
  void Ending(Stream* stream);
  void Ended(Stream* stream, const grpc::Status& status);

  v1::Sidecar::Stub* const stub_;

  absl::Mutex mu_;
  uint64_t last_tag_ ABSL_GUARDED_BY(mu_) = 0;
  // Calls sent (or queued) and not answered yet, by tag; each with the stream it went on.
  std::map<uint64_t, std::pair<Done, Stream*>> waiting_ ABSL_GUARDED_BY(mu_);
  // The stream new calls go on (nullptr before the first call and after it started ending), and
  // every stream gRPC is not done with yet (deleted once it is).
  Stream* current_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<std::unique_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
  bool unimplemented_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace callmesh
