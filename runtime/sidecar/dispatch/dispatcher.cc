#include "runtime/sidecar/dispatch/dispatcher.h"

#include "absl/random/distributions.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "runtime/common/byte_buffers.h"
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/calls/call_states.h"
#include "runtime/sidecar/calls/callback.h"
#include "runtime/sidecar/calls/envelope.h"
#include "runtime/sidecar/calls/retry_decision.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar {
namespace {

std::string MethodPathOf(const std::string& method) {
  return absl::StartsWith(method, "/") ? method : absl::StrCat("/", method);
}

// How often a target without instances is checked again while calls are parked for it.
constexpr absl::Duration kWaitForInstance = absl::Milliseconds(250);

using calls::IsTerminal;

// Call.waiting_for of a call parked because `service` has no instance to call.
std::string NoInstance(const std::string& service, const absl::Status& why) {
  return absl::StrCat("an instance of service \"", service, "\": ", why.message());
}

// What UpdateCall writes of `record`: its CID and mutable fields, without the envelope's payload.
v1::Call MutableFieldsOf(const v1::Call& record) {
  v1::Call fields;
  fields.mutable_envelope()->set_cid(record.envelope().cid());
  calls::CopyMutableFields(record, &fields);
  return fields;
}

}  // namespace

Dispatcher::Dispatcher(CallStore* store, Invoker* invoker, Registry* registry,
                       const DispatchPolicies* policies, TaskRunner* runner, Options options,
                       OnCompleted on_completed)
    : store_(store),
      invoker_(invoker),
      registry_(registry),
      policies_(policies),
      runner_(runner),
      options_(options),
      on_completed_(std::move(on_completed)),
      clock_(runner->clock()),
      random_(options.jitter_seed) {}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  auto written = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return writes_in_flight_ == 0; };
  mu_.Await(absl::Condition(&written));
}

bool Dispatcher::Stopping() {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

template <typename Result>
std::function<void(Result)> Dispatcher::Counted(std::function<void(Result)> done) {
  {
    absl::MutexLock lock(&mu_);
    ++writes_in_flight_;
  }
  return [this, done = std::move(done)](Result result) {
    done(std::move(result));
    absl::MutexLock lock(&mu_);
    --writes_in_flight_;
  };
}

std::shared_ptr<v1::Call> Dispatcher::HeldRecord(const std::string& cid) {
  absl::MutexLock lock(&mu_);
  auto active = active_.find(cid);
  return active == active_.end() ? nullptr : active->second.record;
}

void Dispatcher::Hold(const std::string& cid, std::shared_ptr<v1::Call> record) {
  const size_t bytes = record->ByteSizeLong();
  absl::MutexLock lock(&mu_);
  auto active = active_.find(cid);
  if (active == active_.end() || active->second.record != nullptr) return;
  if (held_bytes_ + bytes > options_.held_record_bytes) return;
  held_bytes_ += bytes;
  active->second.record = std::move(record);
  active->second.record_bytes = bytes;
}

double Dispatcher::Draw() {
  absl::MutexLock lock(&mu_);
  return absl::Uniform(random_, 0.0, 1.0);
}

void Dispatcher::Submit(v1::CallEnvelope envelope,
                        std::function<void(absl::StatusOr<CallStore::AcceptResult>)> done) {
  {
    absl::MutexLock lock(&mu_);
    if (store_->pending_count() + submitting_ >= options_.max_pending_calls) {
      done(absl::ResourceExhaustedError(
          absl::StrCat("callmeshd holds ", options_.max_pending_calls,
                       " pending calls (limits.max_pending_calls); try again later")));
      return;
    }
    ++submitting_;
  }
  const std::string service = envelope.service();
  const absl::Time deadline =
      calls::CallDeadline(envelope, policies_->DefaultCallTimeout(), clock_->Now());
  tracing::CallTracer::Open span;
  if (options_.tracer != nullptr) span = options_.tracer->StartAccept(&envelope);
  // The record as Accept stores it, held for the call's attempts if the budget allows (checked
  // again by Hold once the call is tracked).
  std::shared_ptr<v1::Call> record;
  if (options_.held_record_bytes > 0) {
    record = std::make_shared<v1::Call>();
    record->set_state(v1::CALL_STATE_ACCEPTED);
    record->set_callback(envelope.callback());
    *record->mutable_accepted_at() = envelope.accepted_at();
    *record->mutable_envelope() = envelope;
  }
  // When the target has an instance and a free slot now, the slot is taken here and the first
  // attempt's number goes into the accept's own write (CallStore::FirstAttempt): the attempt
  // starts once the call is durable, without a write and a round trip through the journal's
  // threads of its own. Only with a record in hand, which the attempt is started from.
  std::optional<CallStore::FirstAttempt> first_attempt;
  if (record != nullptr && TakeSlotNow(service)) {
    first_attempt = CallStore::FirstAttempt{.started_at = clock_->Now()};
    calls::BeginAttempt(first_attempt->started_at, record.get());
  }
  std::function<void(absl::StatusOr<CallStore::AcceptResult>)> accepted =
      [this, service, deadline, done = std::move(done), span = std::move(span),
       record = std::move(record), slot_taken = first_attempt.has_value()](
          absl::StatusOr<CallStore::AcceptResult> result) mutable {
        {
          absl::MutexLock lock(&mu_);
          --submitting_;
        }
        if (options_.tracer != nullptr) {
          options_.tracer->EndAccept(std::move(span), result.ok() ? result->cid : "",
                                     result.status());
        }
        if (result.ok() && !result->deduplicated) {
          Track(result->cid, service, deadline, std::move(record), slot_taken);
        } else if (slot_taken) {
          ReleaseSlot(service);
        }
        done(std::move(result));
      };
  store_->Accept(std::move(envelope), first_attempt, Counted(std::move(accepted)));
}

bool Dispatcher::TakeSlotNow(const std::string& service) {
  if (!registry_->Pick(service).ok()) return false;
  absl::MutexLock lock(&mu_);
  Target& target = targets_[service];
  if (stopping_ || target.in_flight >= policies_->MaxInFlight(service)) return false;
  ++target.in_flight;
  return true;
}

void Dispatcher::Resume(const v1::Call& call) {
  if (IsTerminal(call.state())) return;
  Track(call.envelope().cid(), call.envelope().service(),
        calls::CallDeadline(call.envelope(), policies_->DefaultCallTimeout(), clock_->Now()),
        options_.held_record_bytes > 0 ? std::make_shared<v1::Call>(call) : nullptr,
        /*first_attempt_journaled=*/false);
}

void Dispatcher::Track(const std::string& cid, const std::string& service, absl::Time deadline,
                       std::shared_ptr<v1::Call> record, bool first_attempt_journaled) {
  {
    absl::MutexLock lock(&mu_);
    active_[cid] = Active{.service = service, .deadline = deadline};
  }
  if (record != nullptr) Hold(cid, record);
  const TaskRunner::TimerKey expiry = runner_->PostAt(deadline, [this, cid] { Expire(cid); });
  bool forgotten = false;
  {
    absl::MutexLock lock(&mu_);
    auto active = active_.find(cid);
    if (active != active_.end()) {
      active->second.expiry = expiry;
    } else {
      forgotten = true;  // ended meanwhile (cancelled)
    }
  }
  if (forgotten) runner_->CancelTimer(expiry);
  if (first_attempt_journaled) {
    StartJournaledAttempt(cid, service, std::move(record));
  } else {
    MakeReady(cid);
  }
}

std::shared_ptr<ForwardedCall> Dispatcher::Forget(const std::string& cid) {
  std::shared_ptr<ForwardedCall> rpc;
  TaskRunner::TimerKey expiry = TaskRunner::kNoTimer;
  {
    absl::MutexLock lock(&mu_);
    auto active = active_.find(cid);
    if (active == active_.end()) return nullptr;
    rpc = std::move(active->second.rpc);
    expiry = active->second.expiry;
    held_bytes_ -= active->second.record_bytes;
    active_.erase(active);
  }
  runner_->CancelTimer(expiry);
  return rpc;
}

void Dispatcher::MakeReady(const std::string& cid) {
  std::string service;
  {
    absl::MutexLock lock(&mu_);
    auto active = active_.find(cid);
    if (active == active_.end()) return;
    service = active->second.service;
    active->second.parked = false;
  }
  if (absl::StatusOr<std::shared_ptr<Instance>> picked = registry_->Pick(service); !picked.ok()) {
    SetWaitingFor(cid, NoInstance(service, picked.status()));
    Park(cid, service);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    Target& target = targets_[service];
    if (target.in_flight >= policies_->MaxInFlight(service)) {
      target.waiting.push_back(cid);
      if (auto active = active_.find(cid); active != active_.end()) {
        active->second.waiting_for =
            absl::StrCat("a free slot of service \"", service, "\" (", target.in_flight,
                         " attempts in flight, its max_in_flight)");
      }
      return;
    }
    ++target.in_flight;
    if (auto active = active_.find(cid); active != active_.end()) {
      active->second.waiting_for = "a worker to start its next attempt";
    }
  }
  Launch(cid, service);
}

void Dispatcher::Launch(const std::string& cid, const std::string& service) {
  if (HeldRecord(cid) != nullptr) {
    RunAttempt(cid, service);
  } else {
    runner_->Post([this, cid, service] { RunAttempt(cid, service); });
  }
}

void Dispatcher::Park(const std::string& cid, const std::string& service) {
  bool schedule = false;
  {
    absl::MutexLock lock(&mu_);
    Target& target = targets_[service];
    target.parked.push_back(cid);
    if (auto active = active_.find(cid); active != active_.end()) active->second.parked = true;
    schedule = !target.wake_scheduled;
    target.wake_scheduled = true;
  }
  if (schedule) {
    runner_->PostAt(clock_->Now() + kWaitForInstance, [this, service] { WakeParked(service); });
  }
}

void Dispatcher::WakeParked(const std::string& service) {
  const bool reachable = registry_->Pick(service).ok();
  std::deque<std::string> parked;
  bool again = false;
  {
    absl::MutexLock lock(&mu_);
    Target& target = targets_[service];
    if (!reachable) {
      // Forget calls that ended meanwhile (expired, cancelled); check again while any is left.
      while (!target.parked.empty() && active_.count(target.parked.front()) == 0) {
        target.parked.pop_front();
      }
      target.wake_scheduled = again = !target.parked.empty();
    } else {
      parked.swap(target.parked);
      target.wake_scheduled = false;
    }
  }
  if (again) {
    runner_->PostAt(clock_->Now() + kWaitForInstance, [this, service] { WakeParked(service); });
  }
  for (const std::string& cid : parked) MakeReady(cid);
}

void Dispatcher::ReleaseSlot(const std::string& service) {
  std::string next;
  {
    absl::MutexLock lock(&mu_);
    Target& target = targets_[service];
    --target.in_flight;
    while (!target.waiting.empty()) {
      std::string cid = std::move(target.waiting.front());
      target.waiting.pop_front();
      if (active_.count(cid) > 0) {
        next = std::move(cid);
        ++target.in_flight;
        break;
      }
    }
  }
  if (!next.empty()) Launch(next, service);
}

void Dispatcher::RunAttempt(const std::string& cid, const std::string& service) {
  if (Stopping()) return;  // resumed from the journal at the next start
  std::shared_ptr<v1::Call> record = HeldRecord(cid);
  if (record == nullptr) {
    absl::StatusOr<v1::Call> stored = store_->GetCall(cid);
    if (!stored.ok() || IsTerminal(stored->state())) {
      if (!stored.ok())
        spdlog::error("[cid={}] cannot read the call: {}", cid, stored.status().ToString());
      Forget(cid);
      ReleaseSlot(service);
      return;
    }
    record = std::make_shared<v1::Call>(*std::move(stored));
    Hold(cid, record);
  }
  const std::optional<absl::Time> deadline = ReadyToStart(cid, service, *record);
  if (!deadline.has_value()) return;
  // The attempt's number is written before the attempt starts (not synced: it survives kill -9).
  // Only the mutable fields go to the store (the stored envelope is kept).
  v1::Call attempt_record = MutableFieldsOf(*record);
  calls::BeginAttempt(clock_->Now(), &attempt_record);
  store_->UpdateCall(attempt_record,
                     Counted<absl::Status>([this, cid, service, record, attempt_record,
                                            deadline = *deadline](absl::Status s) {
                       if (!s.ok()) {
                         // Terminal meanwhile (cancelled or expired), or the journal failed: no
                         // attempt without its number on disk.
                         if (!absl::IsFailedPrecondition(s)) {
                           spdlog::error("[cid={}] cannot journal attempt {}: {}", cid,
                                         attempt_record.attempts(), s.ToString());
                         }
                         Forget(cid);
                         ReleaseSlot(service);
                         return;
                       }
                       calls::CopyMutableFields(attempt_record, record.get());
                       StartAttempt(cid, service, record, deadline);
                     }));
}

void Dispatcher::StartJournaledAttempt(const std::string& cid, const std::string& service,
                                       std::shared_ptr<v1::Call> record) {
  if (Stopping()) return;
  if (const std::optional<absl::Time> deadline = ReadyToStart(cid, service, *record)) {
    StartAttempt(cid, service, std::move(record), *deadline);
  }
}

std::optional<absl::Time> Dispatcher::ReadyToStart(const std::string& cid,
                                                   const std::string& service,
                                                   const v1::Call& record) {
  const absl::Time now = clock_->Now();
  const absl::Time deadline =
      calls::CallDeadline(record.envelope(), policies_->DefaultCallTimeout(), now);
  if (now >= deadline) {
    ReleaseSlot(service);
    Expire(cid);
    return std::nullopt;
  }
  // No instance to call (it went away while the call waited for a slot): park it again, without
  // using up an attempt; its deadline timer still ends it EXPIRED.
  if (absl::StatusOr<std::shared_ptr<Instance>> picked = registry_->Pick(service); !picked.ok()) {
    ReleaseSlot(service);
    SetWaitingFor(cid, NoInstance(service, picked.status()));
    Park(cid, service);
    return std::nullopt;
  }
  return deadline;
}

void Dispatcher::StartAttempt(const std::string& cid, const std::string& service,
                              std::shared_ptr<v1::Call> record, absl::Time deadline) {
  if (Stopping()) return;
  const v1::CallEnvelope& envelope = record->envelope();
  const uint32_t attempt = record->attempts();
  InvokeCall invoke;
  invoke.service = envelope.service();
  invoke.method_path = MethodPathOf(envelope.method());
  invoke.cid = cid;
  invoke.source = envelope.source();
  invoke.parent_cid = envelope.parent_cid();
  invoke.traceparent = envelope.traceparent();
  invoke.tracestate = envelope.tracestate();
  invoke.attempt = attempt;
  invoke.deadline =
      std::min(deadline, clock_->Now() + policies_->AttemptTimeout(envelope.service()));
  invoke.call_deadline = deadline;
  for (const auto& [key, value] : envelope.headers()) invoke.headers.emplace_back(key, value);
  // The attempt's span, ended by whichever of the two paths below reports the attempt's status.
  std::shared_ptr<tracing::CallTracer::Open> span;
  if (options_.tracer != nullptr) {
    span = std::make_shared<tracing::CallTracer::Open>(
        options_.tracer->StartAttempt(envelope, attempt));
    invoke.traceparent = span->traceparent;
  }
  spdlog::debug("[cid={}] attempt {} of {} to {}", cid, attempt, invoke.method_path, service);
  // Whether the record was held when the attempt started: its reply is then handled on gRPC's
  // thread (nothing to read); otherwise on a worker, which reads the call.
  const bool held = HeldRecord(cid) == record;
  auto started = invoker_->Start(
      std::move(invoke), StringToByteBuffer(envelope.payload()),
      [this, cid, service, attempt, span, record = held ? record : nullptr](
          const grpc::Status& status, grpc::ByteBuffer* reply) {
        if (span != nullptr) {
          options_.tracer->EndAttempt(std::move(*span), static_cast<int>(status.error_code()),
                                      status.error_message());
        }
        std::string bytes = status.ok() ? ByteBufferToString(*reply) : std::string();
        if (record != nullptr) {
          AttemptDone(cid, service, attempt, status, std::move(bytes), record);
          return;
        }
        runner_->Post([this, cid, service, attempt, status, bytes = std::move(bytes)]() mutable {
          AttemptDone(cid, service, attempt, status, std::move(bytes), nullptr);
        });
      });
  if (!started.ok()) {
    // Not registered or no healthy instance: the mesh is unavailable for now.
    const absl::Status& s = started.status();
    const grpc::StatusCode code = absl::IsNotFound(s) || absl::IsUnavailable(s)
                                      ? grpc::StatusCode::UNAVAILABLE
                                      : static_cast<grpc::StatusCode>(static_cast<int>(s.code()));
    if (span != nullptr) {
      options_.tracer->EndAttempt(std::move(*span), static_cast<int>(code),
                                  std::string(s.message()));
    }
    AttemptDone(cid, service, attempt, grpc::Status(code, std::string(s.message())), "",
                held ? record : nullptr);
    return;
  }
  absl::MutexLock lock(&mu_);
  auto active = active_.find(cid);
  if (active == active_.end()) {
    (*started)->Cancel();  // ended (cancelled, expired) while the attempt was starting
    return;
  }
  // Where the attempt went, also if its reply was handled already (on gRPC's thread, while this
  // one was returning from Start); what the call waits for only if not.
  active->second.last_instance = (*started)->instance_address();
  if (active->second.attempts_done < attempt) {
    active->second.waiting_for =
        absl::StrCat("the reply of attempt ", attempt, " from ", active->second.last_instance);
    active->second.rpc = *std::move(started);
  }
}

void Dispatcher::AttemptDone(const std::string& cid, const std::string& service, uint32_t attempt,
                             const grpc::Status& status, std::string reply,
                             std::shared_ptr<v1::Call> record) {
  // Shutting down: the reply is dropped (the attempt was likely cancelled by the shutdown) and the
  // call resumes from the journal at the next start.
  if (Stopping()) return;
  ReleaseSlot(service);
  absl::Time deadline;
  {
    absl::MutexLock lock(&mu_);
    auto active = active_.find(cid);
    if (active == active_.end()) return;  // already terminal
    active->second.rpc = nullptr;
    active->second.attempts_done = std::max(active->second.attempts_done, attempt);
    deadline = active->second.deadline;
  }
  if (record == nullptr) {
    absl::StatusOr<v1::Call> stored = store_->GetCall(cid);
    if (!stored.ok() || IsTerminal(stored->state())) {
      Forget(cid);
      return;
    }
    record = std::make_shared<v1::Call>(*std::move(stored));
  }
  const v1::Call& call = *record;
  const int code = static_cast<int>(status.error_code());
  if (options_.metrics != nullptr) options_.metrics->AttemptFinished(code);
  const calls::Decision next =
      calls::DecideAfterAttempt({.attempt = attempt, .deadline = deadline}, code, clock_->Now(),
                                policies_->Retry(service, call.envelope().method()), Draw());
  switch (next.step) {
    case calls::Step::kSucceed:
      Finish(call, v1::CALL_STATE_SUCCEEDED, 0, "", std::move(reply));
      return;
    case calls::Step::kExpire:
      Finish(call, v1::CALL_STATE_EXPIRED, static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED),
             absl::StrCat("deadline passed after ", attempt,
                          " attempt(s); last: ", status.error_message()),
             "");
      return;
    case calls::Step::kFail:
      Finish(call, v1::CALL_STATE_FAILED, code, status.error_message(), "");
      return;
    case calls::Step::kRetry:
      if (options_.metrics != nullptr) options_.metrics->RetryScheduled(code);
      break;
  }
  v1::Call backoff_record = MutableFieldsOf(call);
  backoff_record.set_last_status_code(code);
  backoff_record.set_last_status_message(status.error_message());
  *backoff_record.mutable_next_attempt_at() = ToProtoTimestamp(next.retry_at);
  // Described before the store shows the back-off, so whoever sees next_attempt_at there also
  // sees why (this runs on a gRPC thread, not on the runner).
  SetWaitingFor(
      cid, absl::StrCat(
               "attempt ", attempt + 1, " at ",
               absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", next.retry_at, absl::UTCTimeZone()),
               " (back-off after ", absl::StatusCodeToString(static_cast<absl::StatusCode>(code)),
               ": ", status.error_message(), ")"));
  store_->UpdateCall(
      backoff_record,
      Counted<absl::Status>([this, cid, record, backoff_record, next, attempt](absl::Status s) {
        if (!s.ok()) return;
        calls::CopyMutableFields(backoff_record, record.get());
        spdlog::info("[cid={}] attempt {} failed ({} {}); retrying in {}", cid, attempt,
                     backoff_record.last_status_code(), backoff_record.last_status_message(),
                     absl::FormatDuration(next.delay));
        runner_->PostAt(next.retry_at, [this, cid] { MakeReady(cid); });
      }));
}

void Dispatcher::Finish(const v1::Call& call, v1::CallState state, int code,
                        const std::string& message, std::string reply,
                        std::function<void()> finished) {
  const std::string& cid = call.envelope().cid();
  if (std::shared_ptr<ForwardedCall> rpc = Forget(cid); rpc != nullptr) rpc->Cancel();
  if (call.envelope().kind() == v1::CALL_KIND_CAST) {
    store_->Delete(cid, Counted<absl::Status>([this, cid, state, method = call.envelope().method(),
                                               finished = std::move(finished)](absl::Status s) {
                     if (!s.ok() && !absl::IsNotFound(s)) {
                       spdlog::error("[cid={}] cannot delete finished cast: {}", cid, s.ToString());
                     }
                     spdlog::debug("[cid={}] cast {} ended {}", cid, method,
                                   v1::CallState_Name(state));
                     if (options_.metrics != nullptr) options_.metrics->CallCompleted(state);
                     if (finished) finished();
                   }));
    return;
  }
  v1::Completion completion;
  completion.set_cid(cid);
  completion.set_state(state);
  completion.set_status_code(code);
  completion.set_status_message(message);
  completion.set_reply(std::move(reply));
  completion.set_traceparent(call.envelope().traceparent());
  completion.set_tracestate(call.envelope().tracestate());
  std::string callback = calls::ResolveCallback(
      call.envelope(), [this](absl::string_view name) { return registry_->Contains(name); });
  const v1::DeliveryState delivery =
      callback.empty() ? v1::DELIVERY_STATE_NONE : v1::DELIVERY_STATE_PENDING;
  // Reported once durable: no one hears of an outcome the journal could still lose.
  store_->Complete(cid, std::move(completion), delivery,
                   Counted<absl::StatusOr<v1::Completion>>(
                       [this, cid, state, code, message, callback = std::move(callback),
                        method = call.envelope().method(),
                        finished = std::move(finished)](absl::StatusOr<v1::Completion> stored) {
                         if (!stored.ok()) {
                           if (!absl::IsFailedPrecondition(stored.status())) {
                             spdlog::error("[cid={}] cannot journal its outcome: {}", cid,
                                           stored.status().ToString());
                           }
                         } else {
                           // Debug, not info: one line per call on the hot path (STYLE.md);
                           // failures are counted in the metrics and kept in the journal.
                           spdlog::debug("[cid={}] {} ended {} after {} attempt(s){}", cid, method,
                                         v1::CallState_Name(state), stored->attempts(),
                                         code == 0 ? "" : absl::StrCat(": ", code, " ", message));
                           if (options_.metrics != nullptr) options_.metrics->CallCompleted(state);
                           if (options_.tracer != nullptr)
                             options_.tracer->RecordCompletion(*stored);
                           on_completed_(*stored, callback);
                         }
                         if (finished) finished();
                       }));
}

void Dispatcher::Expire(const std::string& cid) {
  {
    absl::MutexLock lock(&mu_);
    if (active_.count(cid) == 0) return;
  }
  absl::StatusOr<v1::Call> stored = store_->GetCall(cid);
  if (!stored.ok() || IsTerminal(stored->state())) return;
  Finish(*stored, v1::CALL_STATE_EXPIRED, static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED),
         "the call's deadline passed before it finished", "");
}

absl::StatusOr<v1::Call> Dispatcher::Cancel(const std::string& cid, const std::string& reason) {
  absl::StatusOr<v1::Call> stored = store_->GetCall(cid);
  if (!stored.ok()) return stored.status();
  if (!IsTerminal(stored->state())) {
    absl::Notification finished;
    Finish(*stored, v1::CALL_STATE_CANCELLED, static_cast<int>(grpc::StatusCode::CANCELLED),
           reason.empty() ? "cancelled through CancelCall" : absl::StrCat("cancelled: ", reason),
           "", [&finished] { finished.Notify(); });
    finished.WaitForNotification();
  }
  return store_->GetCall(cid);
}

void Dispatcher::SetWaitingFor(const std::string& cid, std::string waiting_for) {
  absl::MutexLock lock(&mu_);
  auto active = active_.find(cid);
  if (active != active_.end()) active->second.waiting_for = std::move(waiting_for);
}

void Dispatcher::DescribeProgress(v1::Call* call) const {
  if (IsTerminal(call->state())) return;
  std::string service, waiting_for, last_instance;
  bool parked = false;
  {
    absl::MutexLock lock(&mu_);
    auto active = active_.find(call->envelope().cid());
    if (active == active_.end()) return;
    service = active->second.service;
    waiting_for = active->second.waiting_for;
    last_instance = active->second.last_instance;
    parked = active->second.parked;
  }
  // A parked call is only looked at once per check of its target: say why there is no instance
  // as of now (the instances may have changed, or been removed, since it was parked).
  if (parked) {
    if (absl::StatusOr<std::shared_ptr<Instance>> picked = registry_->Pick(service); !picked.ok()) {
      waiting_for = NoInstance(service, picked.status());
    }
  }
  call->set_waiting_for(std::move(waiting_for));
  call->set_last_instance(std::move(last_instance));
}

size_t Dispatcher::active() const {
  absl::MutexLock lock(&mu_);
  return active_.size();
}

std::vector<std::pair<std::string, uint32_t>> Dispatcher::InFlightByTarget() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, uint32_t>> in_flight;
  in_flight.reserve(targets_.size());
  for (const auto& [service, target] : targets_) in_flight.emplace_back(service, target.in_flight);
  return in_flight;
}

}  // namespace callmesh::sidecar
