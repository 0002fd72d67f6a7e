#include "runtime/sidecar/dispatch/dispatcher.h"

#include "absl/random/distributions.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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
  store_->Accept(std::move(envelope), [this, service, deadline, done = std::move(done),
                                       span = std::move(span)](
                                          absl::StatusOr<CallStore::AcceptResult> result) mutable {
    {
      absl::MutexLock lock(&mu_);
      --submitting_;
    }
    if (options_.tracer != nullptr) {
      options_.tracer->EndAccept(std::move(span), result.ok() ? result->cid : "", result.status());
    }
    if (result.ok() && !result->deduplicated) {
      Track(result->cid, service, deadline);
    }
    done(std::move(result));
  });
}

void Dispatcher::Resume(const v1::Call& call) {
  if (IsTerminal(call.state())) return;
  Track(call.envelope().cid(), call.envelope().service(),
        calls::CallDeadline(call.envelope(), policies_->DefaultCallTimeout(), clock_->Now()));
}

void Dispatcher::Track(const std::string& cid, const std::string& service, absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    active_[cid] = Active{.service = service, .deadline = deadline};
  }
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
  MakeReady(cid);
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
  runner_->Post([this, cid, service] { RunAttempt(cid, service); });
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
  if (!next.empty()) runner_->Post([this, next, service] { RunAttempt(next, service); });
}

void Dispatcher::RunAttempt(const std::string& cid, const std::string& service) {
  absl::StatusOr<v1::Call> stored = store_->GetCall(cid);
  if (!stored.ok() || IsTerminal(stored->state())) {
    if (!stored.ok())
      spdlog::error("[cid={}] cannot read the call: {}", cid, stored.status().ToString());
    Forget(cid);
    ReleaseSlot(service);
    return;
  }
  v1::Call call = *std::move(stored);
  const v1::CallEnvelope& envelope = call.envelope();
  const absl::Time now = clock_->Now();
  const absl::Time deadline = calls::CallDeadline(envelope, policies_->DefaultCallTimeout(), now);
  if (now >= deadline) {
    ReleaseSlot(service);
    Expire(cid);
    return;
  }
  // No instance to call (it went away while the call waited for a slot): park it again, without
  // using up an attempt; its deadline timer still ends it EXPIRED.
  if (absl::StatusOr<std::shared_ptr<Instance>> picked = registry_->Pick(service); !picked.ok()) {
    ReleaseSlot(service);
    SetWaitingFor(cid, NoInstance(service, picked.status()));
    Park(cid, service);
    return;
  }
  const uint32_t attempt = call.attempts() + 1;
  call.set_state(v1::CALL_STATE_RUNNING);
  call.set_attempts(attempt);
  if (!call.has_started_at()) *call.mutable_started_at() = ToProtoTimestamp(now);
  call.clear_next_attempt_at();
  if (absl::Status s = store_->UpdateCall(call); !s.ok()) {
    // Terminal meanwhile (cancelled or expired), or the journal failed: no attempt without its
    // number on disk.
    if (!absl::IsFailedPrecondition(s)) {
      spdlog::error("[cid={}] cannot journal attempt {}: {}", cid, attempt, s.ToString());
    }
    Forget(cid);
    ReleaseSlot(service);
    return;
  }

  InvokeCall invoke;
  invoke.service = envelope.service();
  invoke.method_path = MethodPathOf(envelope.method());
  invoke.cid = cid;
  invoke.source = envelope.source();
  invoke.parent_cid = envelope.parent_cid();
  invoke.traceparent = envelope.traceparent();
  invoke.tracestate = envelope.tracestate();
  invoke.attempt = attempt;
  invoke.deadline = std::min(deadline, now + policies_->AttemptTimeout(envelope.service()));
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
  auto started = invoker_->Start(
      std::move(invoke), StringToByteBuffer(envelope.payload()),
      [this, cid, service, attempt, span](const grpc::Status& status, grpc::ByteBuffer* reply) {
        if (span != nullptr) {
          options_.tracer->EndAttempt(std::move(*span), static_cast<int>(status.error_code()),
                                      status.error_message());
        }
        std::string bytes = status.ok() ? ByteBufferToString(*reply) : std::string();
        runner_->Post([this, cid, service, attempt, status, bytes = std::move(bytes)]() mutable {
          AttemptDone(cid, service, attempt, status, std::move(bytes));
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
    AttemptDone(cid, service, attempt, grpc::Status(code, std::string(s.message())), "");
    return;
  }
  absl::MutexLock lock(&mu_);
  auto active = active_.find(cid);
  if (active == active_.end()) {
    (*started)->Cancel();  // ended (cancelled, expired) while the attempt was starting
  } else if (active->second.attempts_done < attempt) {
    active->second.last_instance = (*started)->instance_address();
    active->second.waiting_for =
        absl::StrCat("the reply of attempt ", attempt, " from ", active->second.last_instance);
    active->second.rpc = *std::move(started);
  }
}

void Dispatcher::AttemptDone(const std::string& cid, const std::string& service, uint32_t attempt,
                             const grpc::Status& status, std::string reply) {
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
  absl::StatusOr<v1::Call> stored = store_->GetCall(cid);
  if (!stored.ok() || IsTerminal(stored->state())) {
    Forget(cid);
    return;
  }
  v1::Call call = *std::move(stored);
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
  call.clear_envelope();
  call.mutable_envelope()->set_cid(cid);
  call.set_last_status_code(code);
  call.set_last_status_message(status.error_message());
  *call.mutable_next_attempt_at() = ToProtoTimestamp(next.retry_at);
  // Described before the store shows the back-off, so whoever sees next_attempt_at there also
  // sees why (this runs on a gRPC thread, not on the runner).
  SetWaitingFor(
      cid, absl::StrCat(
               "attempt ", attempt + 1, " at ",
               absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", next.retry_at, absl::UTCTimeZone()),
               " (back-off after ", absl::StatusCodeToString(static_cast<absl::StatusCode>(code)),
               ": ", status.error_message(), ")"));
  if (absl::Status s = store_->UpdateCall(call); !s.ok()) return;
  spdlog::info("[cid={}] attempt {} failed ({} {}); retrying in {}", cid, attempt, code,
               status.error_message(), absl::FormatDuration(next.delay));
  runner_->PostAt(next.retry_at, [this, cid] { MakeReady(cid); });
}

void Dispatcher::Finish(const v1::Call& call, v1::CallState state, int code,
                        const std::string& message, std::string reply) {
  const std::string& cid = call.envelope().cid();
  if (std::shared_ptr<ForwardedCall> rpc = Forget(cid); rpc != nullptr) rpc->Cancel();
  if (call.envelope().kind() == v1::CALL_KIND_CAST) {
    if (absl::Status s = store_->Delete(cid); !s.ok() && !absl::IsNotFound(s)) {
      spdlog::error("[cid={}] cannot delete finished cast: {}", cid, s.ToString());
    }
    spdlog::debug("[cid={}] cast {} ended {}", cid, call.envelope().method(),
                  v1::CallState_Name(state));
    if (options_.metrics != nullptr) options_.metrics->CallCompleted(state);
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
  const std::string callback = calls::ResolveCallback(
      call.envelope(), [this](absl::string_view name) { return registry_->Contains(name); });
  absl::StatusOr<v1::Completion> stored =
      store_->Complete(cid, std::move(completion),
                       callback.empty() ? v1::DELIVERY_STATE_NONE : v1::DELIVERY_STATE_PENDING);
  if (!stored.ok()) {
    if (!absl::IsFailedPrecondition(stored.status())) {
      spdlog::error("[cid={}] cannot journal its outcome: {}", cid, stored.status().ToString());
    }
    return;
  }
  // Debug, not info: one line per call on the hot path (STYLE.md); failures are counted in the
  // metrics and kept in the journal.
  spdlog::debug("[cid={}] {} ended {} after {} attempt(s){}", cid, call.envelope().method(),
                v1::CallState_Name(state), stored->attempts(),
                code == 0 ? "" : absl::StrCat(": ", code, " ", message));
  if (options_.metrics != nullptr) options_.metrics->CallCompleted(state);
  if (options_.tracer != nullptr) options_.tracer->RecordCompletion(*stored);
  on_completed_(*stored, callback);
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
    Finish(*stored, v1::CALL_STATE_CANCELLED, static_cast<int>(grpc::StatusCode::CANCELLED),
           reason.empty() ? "cancelled through CancelCall" : absl::StrCat("cancelled: ", reason),
           "");
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
