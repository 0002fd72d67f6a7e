// The durable asynchronous part of the Sidecar API: InvokeAsync, Cast, GetCall, WaitCall,
// ListCalls, CancelCall, WatchCompletions, ListDeadLetters, RedriveDeadLetter.
#include <deque>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "runtime/common/grpc_status.h"
#include "runtime/common/metadata.h"
#include "runtime/common/names.h"
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/calls/call_context.h"
#include "runtime/sidecar/calls/call_states.h"
#include "runtime/sidecar/calls/callback.h"
#include "runtime/sidecar/calls/envelope.h"
#include "runtime/sidecar/server/finish_now.h"
#include "runtime/sidecar/server/sidecar_service.h"

namespace callmesh::sidecar {
namespace {

constexpr absl::Duration kDefaultWait = absl::Seconds(30);
constexpr absl::Duration kMaxWait = absl::Minutes(10);
// What one WatchCompletions stream reads from the journal at a time, and holds at most.
constexpr size_t kWatchPageSize = 16;
constexpr size_t kWatchBufferBytes = 64 << 10;

absl::Status ValidateCid(const std::string& cid) {
  if (cid.empty()) return absl::InvalidArgumentError("cid: must not be empty");
  if (cid.size() > 128) return absl::InvalidArgumentError("cid: longer than 128 bytes");
  return absl::OkStatus();
}

// Finishes a WaitCall once: with the call when it turns terminal, with its current state when
// the wait times out, or with the caller's cancellation. Shared with the hub's wake-up and the
// timer, which may run after the RPC ended; they find `finished` set then.
struct WaitState {
  absl::Mutex mu;
  bool finished ABSL_GUARDED_BY(mu) = false;
  grpc::ServerUnaryReactor* reactor = nullptr;
  v1::Call* response = nullptr;

  // True if this call finished the RPC.
  bool FinishWith(const absl::StatusOr<v1::Call>& call) {
    {
      absl::MutexLock lock(&mu);
      if (finished) return false;
      finished = true;
      if (call.ok()) *response = *call;
    }
    reactor->Finish(call.ok() ? grpc::Status::OK : ToGrpcStatus(call.status()));
    return true;
  }
};

class WaitReactor final : public grpc::ServerUnaryReactor {
 public:
  std::shared_ptr<WaitState> state = std::make_shared<WaitState>();
  CompletionHub* hub = nullptr;
  uint64_t waiter = 0;

  void OnCancel() override {
    state->FinishWith(absl::CancelledError("WaitCall cancelled by the caller"));
  }
  void OnDone() override {
    if (waiter != 0) hub->RemoveWaiter(waiter);
    delete this;
  }
};

// Streams completions from the journal's completion log, one write in flight, resuming after
// `after_sequence`. The hub only wakes it; it reads from the journal, so a slow watcher holds at
// most one page of completions in memory.
class WatchReactor final : public grpc::ServerWriteReactor<v1::Completion> {
 public:
  struct Core {
    absl::Mutex mu;
    WatchReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
    bool writing ABSL_GUARDED_BY(mu) = false;
    bool finished ABSL_GUARDED_BY(mu) = false;
    uint64_t cursor ABSL_GUARDED_BY(mu) = 0;
    std::deque<v1::Completion> buffer ABSL_GUARDED_BY(mu);
    v1::Completion current;  // the message being written; touched only while `writing`
    CallStore* store = nullptr;
    TaskRunner* runner = nullptr;
    std::string source;
    std::set<std::string> cids;

    bool Matches(const v1::Completion& c) const {
      return (source.empty() || c.source() == source) && (cids.empty() || cids.count(c.cid()));
    }

    // Writes the next matching completion if no write is in flight.
    void Pump() {
      WatchReactor* target = nullptr;
      {
        absl::MutexLock lock(&mu);
        if (reactor == nullptr || finished || writing) return;
        // Refill from the journal only when empty, and stop at kWatchBufferBytes: a watcher that
        // does not read holds at most that much here plus the one message being written, and
        // gRPC's flow control holds the rest back in the journal.
        size_t buffered_bytes = 0;
        while (buffer.empty()) {
          absl::StatusOr<std::vector<v1::Completion>> page =
              store->CompletionsAfter(cursor, kWatchPageSize);
          if (!page.ok() || page->empty()) break;
          for (v1::Completion& completion : *page) {
            cursor = completion.sequence();
            if (!Matches(completion)) continue;
            buffered_bytes += completion.ByteSizeLong();
            buffer.push_back(std::move(completion));
            if (buffered_bytes >= kWatchBufferBytes) break;
          }
        }
        if (buffer.empty()) return;  // caught up: the hub wakes us
        current = std::move(buffer.front());
        buffer.pop_front();
        writing = true;
        target = reactor;
      }
      target->StartWrite(&current);
    }

    // Ends the stream once; deferred to OnWriteDone while a write is in flight.
    void End(const grpc::Status& status) {
      WatchReactor* target = nullptr;
      {
        absl::MutexLock lock(&mu);
        if (finished || reactor == nullptr) return;
        finished = true;
        if (!writing) target = reactor;
      }
      if (target != nullptr) target->Finish(status);
    }
  };

  std::shared_ptr<Core> core = std::make_shared<Core>();
  CompletionHub* hub = nullptr;
  std::atomic<uint32_t>* watchers = nullptr;
  uint64_t watcher = 0;
  // The caller's share of the watcher slots (security::Gatekeeper), given back on deletion.
  std::shared_ptr<void> identity_slot;

  void OnWriteDone(bool ok) override {
    bool finish = false;
    {
      absl::MutexLock lock(&core->mu);
      core->writing = false;
      if (!ok) core->finished = true;
      finish = core->finished;
    }
    if (finish) {
      Finish(grpc::Status::OK);
      return;
    }
    std::shared_ptr<Core> c = core;
    core->runner->Post([c] { c->Pump(); });
  }
  void OnCancel() override { core->End(grpc::Status::OK); }
  void OnDone() override {
    {
      absl::MutexLock lock(&core->mu);
      core->reactor = nullptr;
    }
    if (watcher != 0) hub->RemoveWatcher(watcher);
    watchers->fetch_sub(1);
    delete this;
  }
};

}  // namespace

absl::StatusOr<v1::Call> SidecarService::Visible(const security::Caller& caller,
                                                 absl::StatusOr<v1::Call> call) const {
  if (call.ok() && !gatekeeper_->MaySee(caller, call->envelope().source())) {
    // The journal's own words for an unknown CID: a hidden call looks like no call at all.
    call = absl::NotFoundError(absl::StrCat("no call with CID ", call->envelope().cid()));
  }
  if (absl::IsNotFound(call.status()) && options_.cluster_state) {
    return absl::NotFoundError(absl::StrCat(call.status().message(),
                                            " here; in cluster mode a call is kept by the "
                                            "sidecar that accepted it (ask that one)"));
  }
  return call;
}

v1::Call SidecarService::Present(v1::Call call, bool include_payload) const {
  if (!include_payload) call.mutable_envelope()->clear_payload();
  call.set_callback(calls::ShownCallback(
      call, [this](absl::string_view name) { return registry_->Contains(name); }));
  return call;
}

absl::StatusOr<v1::CallEnvelope> SidecarService::DurableEnvelope(const security::Caller& caller,
                                                                 calls::DurableRequest durable,
                                                                 const grpc::ServerContextBase& rpc,
                                                                 const calls::TraceContext* trace) {
  absl::StatusOr<std::string> source = gatekeeper_->SourceOf(caller, durable.source, rpc);
  absl::Status allowed = source.status();
  // A malformed method is BuildEnvelope's to name; the policy sees well-formed ones.
  if (absl::StatusOr<std::string> path = MethodPath(durable.method, "method");
      allowed.ok() && path.ok()) {
    allowed = gatekeeper_->CheckCall(caller, durable.service, *path);
  }
  if (!allowed.ok()) {
    async_rejected_.fetch_add(1);
    return allowed;
  }
  if (!caller.anonymous()) durable.source = *source;
  calls::CallContext context =
      calls::ReadCallContext(rpc, durable.source, durable.parent_cid, options_.name, *clock_);
  if (trace != nullptr && !trace->traceparent.empty()) {
    const calls::TraceContext checked =
        calls::CheckTraceContext(trace->traceparent, trace->tracestate);
    context.traceparent = checked.traceparent;
    context.tracestate = checked.tracestate;
  }
  absl::StatusOr<v1::CallEnvelope> envelope = calls::BuildEnvelope(
      durable, context,
      {.max_payload_bytes = async_.max_payload_bytes,
       .default_call_timeout = async_.policies->DefaultCallTimeout()},
      [this](absl::string_view name) { return registry_->Contains(name); }, clock_->Now(),
      [this] { return invoker_->NextCid(); });
  if (!envelope.ok()) async_rejected_.fetch_add(1);
  return envelope;
}

grpc::Status SidecarService::AcceptStatus(const absl::StatusOr<CallStore::AcceptResult>& result,
                                          const std::string& cid) {
  if (result.ok()) {
    async_accepted_.fetch_add(1);
    return grpc::Status::OK;
  }
  async_rejected_.fetch_add(1);
  if (absl::IsUnavailable(result.status())) {
    // A write whose sync failed may still reach the disk (the OS holds it), and then the call
    // runs after a restart. Never acknowledged, but not certainly absent either: say so, and give
    // the caller the CID to look up.
    return grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        absl::StrCat(result.status().message(), "; call ", cid,
                     " was not acknowledged, but if the failed write still reached the disk it "
                     "runs after a restart: retry with the same idempotency_key, or look the CID "
                     "up with GetCall"));
  }
  return ToGrpcStatus(result.status());
}

// Shared by InvokeAsync and Cast, whose responses both carry `cid` and `deduplicated`.
template <typename Request, typename Response>
grpc::ServerUnaryReactor* SidecarService::Accept(grpc::CallbackServerContext* context,
                                                 const Request& request, Response* response) {
  absl::StatusOr<security::Caller> caller = gatekeeper_->Authenticate(*context);
  if (!caller.ok()) {
    async_rejected_.fetch_add(1);
    return FinishNow(context, ToGrpcStatus(caller.status()));
  }
  absl::StatusOr<v1::CallEnvelope> envelope =
      DurableEnvelope(*caller, calls::DurableRequest::Of(request), *context, nullptr);
  if (!envelope.ok()) return FinishNow(context, ToGrpcStatus(envelope.status()));
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const std::string cid = envelope->cid();
  async_.dispatcher->Submit(*std::move(envelope), [this, context, reactor, response,
                                                   cid](absl::StatusOr<CallStore::AcceptResult> r) {
    const grpc::Status status = AcceptStatus(r, cid);
    if (r.ok()) {
      response->set_cid(r->cid);
      response->set_deduplicated(r->deduplicated);
    } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      context->AddTrailingMetadata(kCidMetadata, cid);
    }
    reactor->Finish(status);
  });
  return reactor;
}

grpc::ServerUnaryReactor* SidecarService::InvokeAsync(grpc::CallbackServerContext* context,
                                                      const v1::InvokeAsyncRequest* request,
                                                      v1::InvokeAsyncResponse* response) {
  return Accept(context, *request, response);
}

grpc::ServerUnaryReactor* SidecarService::Cast(grpc::CallbackServerContext* context,
                                               const v1::CastRequest* request,
                                               v1::CastResponse* response) {
  return Accept(context, *request, response);
}

grpc::ServerUnaryReactor* SidecarService::GetCall(grpc::CallbackServerContext* context,
                                                  const v1::GetCallRequest* request,
                                                  v1::Call* response) {
  absl::StatusOr<security::Caller> caller = gatekeeper_->Authenticate(*context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  if (absl::Status s = ValidateCid(request->cid()); !s.ok()) {
    return FinishNow(context, ToGrpcStatus(s));
  }
  absl::StatusOr<v1::Call> call = Visible(*caller, async_.store->GetCall(request->cid()));
  if (!call.ok()) return FinishNow(context, ToGrpcStatus(call.status()));
  *response = Present(*std::move(call), request->include_payload());
  async_.dispatcher->DescribeProgress(response);
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* SidecarService::WaitCall(grpc::CallbackServerContext* context,
                                                   const v1::WaitCallRequest* request,
                                                   v1::Call* response) {
  absl::StatusOr<security::Caller> caller = gatekeeper_->Authenticate(*context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  if (absl::Status s = ValidateCid(request->cid()); !s.ok()) {
    return FinishNow(context, ToGrpcStatus(s));
  }
  // A call's source never changes: once visible, every later look at it is too.
  if (!caller->anonymous()) {
    absl::StatusOr<v1::Call> call = Visible(*caller, async_.store->GetCall(request->cid()));
    if (!call.ok()) return FinishNow(context, ToGrpcStatus(call.status()));
  }
  absl::Duration wait = kDefaultWait;
  if (request->has_timeout()) {
    absl::StatusOr<absl::Duration> timeout =
        NonNegativeDurationFromProto(request->timeout(), "timeout");
    if (!timeout.ok()) return FinishNow(context, ToGrpcStatus(timeout.status()));
    wait = std::min(*timeout, kMaxWait);
  }
  auto* reactor = new WaitReactor();
  reactor->hub = async_.hub;
  std::shared_ptr<WaitState> state = reactor->state;
  state->reactor = reactor;
  state->response = response;
  const std::string cid = request->cid();
  auto present = [this, cid]() -> absl::StatusOr<v1::Call> {
    absl::StatusOr<v1::Call> call = async_.store->GetCall(cid);
    if (!call.ok()) return call.status();
    return Present(*std::move(call), false);
  };
  // Register before looking, so a completion between the look and the registration is not missed.
  TaskRunner* runner = async_.runner;
  reactor->waiter = async_.hub->AddWaiter(cid, [runner, state, present] {
    runner->Post([state, present] { state->FinishWith(present()); });
  });
  absl::StatusOr<v1::Call> now = present();
  if (!now.ok() || calls::IsTerminal(now->state()) || wait <= absl::ZeroDuration()) {
    state->FinishWith(now);
    return reactor;
  }
  runner->PostAt(
      std::min(clock_->Now() + wait, calls::DeadlineOf(*context, *clock_) - absl::Milliseconds(50)),
      [state, present] { state->FinishWith(present()); });
  return reactor;
}

grpc::ServerUnaryReactor* SidecarService::ListCalls(grpc::CallbackServerContext* context,
                                                    const v1::ListCallsRequest* request,
                                                    v1::ListCallsResponse* response) {
  absl::StatusOr<security::Caller> caller = gatekeeper_->Authenticate(*context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  absl::StatusOr<std::string> source = gatekeeper_->ListFilter(*caller, request->source());
  if (!source.ok()) return FinishNow(context, ToGrpcStatus(source.status()));
  CallStore::ListFilter filter;
  for (int state : request->states()) filter.states.push_back(static_cast<v1::CallState>(state));
  filter.service = request->service();
  filter.source = *source;
  auto page = async_.store->ListCalls(filter, request->page_size(), request->page_token());
  if (!page.ok()) return FinishNow(context, ToGrpcStatus(page.status()));
  for (v1::Call& call : page->first) *response->add_calls() = Present(std::move(call), false);
  response->set_next_page_token(page->second);
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* SidecarService::CancelCall(grpc::CallbackServerContext* context,
                                                     const v1::CancelCallRequest* request,
                                                     v1::Call* response) {
  absl::StatusOr<security::Caller> caller = gatekeeper_->Authenticate(*context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  if (absl::Status s = ValidateCid(request->cid()); !s.ok()) {
    return FinishNow(context, ToGrpcStatus(s));
  }
  // Cancelling writes the outcome durably (an fsync): done on a worker, answered from there.
  return FinishOnWorker(context,
                        [this, caller = *std::move(caller), cid = request->cid(),
                         reason = request->reason(), response]() -> grpc::Status {
                          if (!caller.anonymous()) {
                            absl::StatusOr<v1::Call> visible =
                                Visible(caller, async_.store->GetCall(cid));
                            if (!visible.ok()) return ToGrpcStatus(visible.status());
                          }
                          absl::StatusOr<v1::Call> call = async_.dispatcher->Cancel(cid, reason);
                          if (!call.ok()) return ToGrpcStatus(call.status());
                          *response = Present(*std::move(call), false);
                          return grpc::Status::OK;
                        });
}

grpc::ServerUnaryReactor* SidecarService::FinishOnWorker(grpc::CallbackServerContext* context,
                                                         std::function<grpc::Status()> work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The RPC cannot end before Finish, so `this`, the request and the response outlive the work;
  // a runner that is stopping drops the work and the server's shutdown cancels the RPC.
  async_.runner->Post([reactor, work = std::move(work)] { reactor->Finish(work()); });
  return reactor;
}

grpc::ServerWriteReactor<v1::Completion>* SidecarService::WatchCompletions(
    grpc::CallbackServerContext* context, const v1::WatchCompletionsRequest* request) {
  auto* reactor = new WatchReactor();
  reactor->hub = async_.hub;
  reactor->watchers = &watchers_;
  if (watchers_.fetch_add(1) >= async_.max_watchers) {
    absl::MutexLock lock(&reactor->core->mu);
    reactor->core->finished = true;
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 absl::StrCat("callmeshd already serves ", async_.max_watchers,
                                              " completion watchers (limits.max_watchers)")));
    return reactor;
  }
  // The caller, the source it may watch and its share of the slots, or the refusal.
  absl::StatusOr<security::Caller> caller = gatekeeper_->Authenticate(*context);
  absl::StatusOr<std::string> source = caller.ok()
                                           ? gatekeeper_->ListFilter(*caller, request->source())
                                           : absl::StatusOr<std::string>(caller.status());
  absl::StatusOr<std::shared_ptr<void>> slot =
      source.ok() ? gatekeeper_->TakeWatchSlot(*caller)
                  : absl::StatusOr<std::shared_ptr<void>>(source.status());
  if (!slot.ok()) {
    absl::MutexLock lock(&reactor->core->mu);
    reactor->core->finished = true;
    reactor->Finish(ToGrpcStatus(slot.status()));
    return reactor;
  }
  reactor->identity_slot = *std::move(slot);
  std::shared_ptr<WatchReactor::Core> core = reactor->core;
  core->store = async_.store;
  core->runner = async_.runner;
  core->source = *source;
  core->cids.insert(request->cids().begin(), request->cids().end());
  const uint64_t last_sequence = async_.store->last_sequence();
  {
    absl::MutexLock lock(&core->mu);
    core->reactor = reactor;
    // 0 means "from now on", except that named CIDs also get their retained completions.
    core->cursor = request->after_sequence() != 0 ? request->after_sequence()
                   : core->cids.empty()           ? last_sequence
                                                  : 0;
  }
  context->AddInitialMetadata(kLastSequenceMetadata, absl::StrCat(last_sequence));
  TaskRunner* runner = async_.runner;
  reactor->watcher =
      async_.hub->AddWatcher([runner, core] { runner->Post([core] { core->Pump(); }); });
  // Tells the client the subscription is in place (see sidecar.proto), before any write.
  reactor->StartSendInitialMetadata();
  runner->Post([core] { core->Pump(); });
  return reactor;
}

grpc::ServerUnaryReactor* SidecarService::ListDeadLetters(grpc::CallbackServerContext* context,
                                                          const v1::ListDeadLettersRequest* request,
                                                          v1::ListDeadLettersResponse* response) {
  absl::StatusOr<security::Caller> caller = gatekeeper_->Authenticate(*context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  auto page = async_.store->ListDeadLetters(request->page_size(), request->page_token());
  if (!page.ok()) return FinishNow(context, ToGrpcStatus(page.status()));
  // Others' dead letters are left out, so a page may hold fewer than page_size (or none) while
  // next_page_token goes on.
  for (v1::DeadLetter& dead : page->first) {
    if (!gatekeeper_->MaySee(*caller, dead.completion().source())) continue;
    *response->add_dead_letters() = std::move(dead);
  }
  response->set_next_page_token(page->second);
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* SidecarService::RedriveDeadLetter(
    grpc::CallbackServerContext* context, const v1::RedriveDeadLetterRequest* request,
    v1::RedriveDeadLetterResponse*) {
  absl::StatusOr<security::Caller> caller = gatekeeper_->Authenticate(*context);
  if (!caller.ok()) return FinishNow(context, ToGrpcStatus(caller.status()));
  if (absl::Status s = ValidateCid(request->cid()); !s.ok()) {
    return FinishNow(context, ToGrpcStatus(s));
  }
  return FinishOnWorker(context, [this, caller = *std::move(caller), cid = request->cid()] {
    if (!caller.anonymous()) {
      absl::StatusOr<v1::Call> visible = Visible(caller, async_.store->GetCall(cid));
      if (!visible.ok()) return ToGrpcStatus(visible.status());
    }
    return ToGrpcStatus(async_.deliverer->Redrive(cid));
  });
}

}  // namespace callmesh::sidecar
