// InvokeAsync end to end: a real callmeshd with its RocksDB journal, the greeter and a callback
// service hosted in this process, and the sidecar killed with SIGKILL and restarted.
#include <grpcpp/create_channel.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "callmesh/v1/callback.grpc.pb.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gtest/gtest.h"
#include "runtime/sdk/service_host.h"
#include "services/greeter/greeter_service.h"
#include "tests/support/process.h"
#include "tests/support/sidecar_process.h"
#include "tests/support/wait_call.h"

namespace callmesh {
namespace {

using ::callmesh::testing::Process;
using ::callmesh::testing::SidecarProcess;
using ::greeter::v1::HelloReply;
using ::greeter::v1::HelloRequest;

constexpr char kSayHello[] = "greeter.v1.Greeter/SayHello";

// Records every completion pushed to it; fails the first `fail_first` deliveries.
class RecordingCallback final : public v1::Callback::Service {
 public:
  explicit RecordingCallback(int fail_first = 0) : fail_first_(fail_first) {}
  grpc::Status OnCompletion(grpc::ServerContext*, const v1::Completion* completion,
                            v1::OnCompletionResponse*) override {
    absl::MutexLock lock(&mu_);
    if (fail_first_ > 0) {
      --fail_first_;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "not ready yet");
    }
    received_.push_back(*completion);
    return grpc::Status::OK;
  }
  std::vector<v1::Completion> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  // Waits until a completion of `cid` arrived (up to 60 s).
  std::optional<v1::Completion> WaitFor(const std::string& cid) {
    const absl::Time until = absl::Now() + absl::Seconds(60);
    while (absl::Now() < until) {
      for (const v1::Completion& c : received()) {
        if (c.cid() == cid) return c;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return std::nullopt;
  }

 private:
  absl::Mutex mu_;
  int fail_first_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Completion> received_ ABSL_GUARDED_BY(mu_);
};

HelloRequest Hello(const std::string& name, uint32_t delay_ms = 0, int fail_code = 0) {
  HelloRequest request;
  request.set_name(name);
  request.set_delay_ms(delay_ms);
  request.set_fail_code(fail_code);
  return request;
}

class AsyncTest : public ::testing::Test {
 protected:
  void Start(const std::string& config_yaml) {
    auto started = SidecarProcess::Start({.config_yaml = config_yaml});
    ASSERT_TRUE(started.ok()) << started.status();
    sidecar_ = std::make_unique<SidecarProcess>(*std::move(started));
    Connect();
    greeter_host_ = std::make_unique<ServiceHost>(
        ServiceHostOptions{.name = "greeter", .sidecar = sidecar_->address()});
    greeter_host_->AddService(&greeter_);
    ASSERT_TRUE(greeter_host_->Start().ok());
  }
  void SetUp() override {
    Start(
        "default_retry: {max_attempts: 4, initial_backoff: 50ms, max_backoff: 200ms}\n"
        "callback_retry: {max_attempts: 3, initial_backoff: 50ms, max_backoff: 100ms}\n");
  }
  void Connect() { stub_ = v1::Sidecar::NewStub(sidecar_->Channel()); }

  std::unique_ptr<ServiceHost> HostCallback(const std::string& name, RecordingCallback* service) {
    auto host = std::make_unique<ServiceHost>(
        ServiceHostOptions{.name = name, .sidecar = sidecar_->address()});
    host->AddService(service);
    EXPECT_TRUE(host->Start().ok());
    return host;
  }

  grpc::Status InvokeAsync(const HelloRequest& hello, v1::InvokeAsyncResponse* response,
                           const std::string& callback = "", const std::string& key = "",
                           int timeout_ms = 0, const std::string& service = "greeter") {
    v1::InvokeAsyncRequest request;
    request.set_service(service);
    request.set_method(kSayHello);
    request.set_payload(hello.SerializeAsString());
    request.set_source("tester");
    request.set_callback(callback);
    request.set_idempotency_key(key);
    if (timeout_ms > 0) {
      request.mutable_timeout()->set_seconds(timeout_ms / 1000);
      request.mutable_timeout()->set_nanos((timeout_ms % 1000) * 1000000);
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub_->InvokeAsync(&context, request, response);
  }

  v1::Call Wait(const std::string& cid, int seconds = 30) {
    return testing::WaitCall(*stub_, cid, seconds);
  }

  v1::SidecarStats Stats() {
    v1::SidecarStats stats;
    grpc::ClientContext context;
    EXPECT_TRUE(stub_->GetStats(&context, {}, &stats).ok());
    return stats;
  }

  std::unique_ptr<SidecarProcess> sidecar_;
  std::unique_ptr<v1::Sidecar::Stub> stub_;
  greeter::GreeterService greeter_;
  std::unique_ptr<ServiceHost> greeter_host_;
};

TEST_F(AsyncTest, InvokeAsyncRunsAndIsPollableWithSameCid) {
  v1::InvokeAsyncResponse accepted;
  ASSERT_TRUE(InvokeAsync(Hello("async"), &accepted).ok());
  EXPECT_EQ(accepted.cid().size(), 36u);
  v1::Call call = Wait(accepted.cid());
  ASSERT_EQ(call.state(), v1::CALL_STATE_SUCCEEDED);
  HelloReply reply;
  ASSERT_TRUE(reply.ParseFromString(call.completion().reply()));
  EXPECT_EQ(reply.message(), "Hello, async!");
  EXPECT_EQ(reply.cid(), accepted.cid());  // the target saw the same CID
  EXPECT_EQ(reply.attempt(), 1u);
  EXPECT_EQ(call.attempts(), 1u);
  EXPECT_GT(call.completion().sequence(), 0u);
  // GetCall answers the same; an unknown CID is NOT_FOUND.
  v1::GetCallRequest get;
  get.set_cid(accepted.cid());
  v1::Call got;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->GetCall(&context, get, &got).ok());
  EXPECT_EQ(got.state(), v1::CALL_STATE_SUCCEEDED);
  get.set_cid("01900000-0000-7000-8000-000000000000");
  grpc::ClientContext context2;
  EXPECT_EQ(stub_->GetCall(&context2, get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AsyncTest, ExplicitAndConventionCallbacksReceiveCompletion) {
  RecordingCallback explicit_callback, convention_callback;
  auto explicit_host = HostCallback("audit", &explicit_callback);
  auto convention_host = HostCallback("tester-async-callback", &convention_callback);
  v1::InvokeAsyncResponse first, second;
  ASSERT_TRUE(InvokeAsync(Hello("explicit"), &first, "audit").ok());
  ASSERT_TRUE(InvokeAsync(Hello("convention"), &second).ok());
  auto got_first = explicit_callback.WaitFor(first.cid());
  auto got_second = convention_callback.WaitFor(second.cid());
  ASSERT_TRUE(got_first.has_value());
  ASSERT_TRUE(got_second.has_value());
  EXPECT_EQ(got_first->state(), v1::CALL_STATE_SUCCEEDED);
  EXPECT_EQ(got_first->delivery_attempt(), 1u);
  EXPECT_EQ(got_second->source(), "tester");
  for (const auto& c : explicit_callback.received()) EXPECT_NE(c.cid(), second.cid());
  // Delivery is recorded.
  const absl::Time until = absl::Now() + absl::Seconds(10);
  v1::Call call;
  do {
    call = Wait(first.cid());
  } while (call.callback_delivery() != v1::DELIVERY_STATE_DELIVERED && absl::Now() < until);
  EXPECT_EQ(call.callback_delivery(), v1::DELIVERY_STATE_DELIVERED);
  EXPECT_EQ(call.callback(), "audit");
}

TEST_F(AsyncTest, FailingCallbackIsRetriedThenDeadLetteredAndRedriven) {
  RecordingCallback flaky(/*fail_first=*/3);  // callback_retry allows 3 attempts
  auto host = HostCallback("flaky", &flaky);
  v1::InvokeAsyncResponse accepted;
  ASSERT_TRUE(InvokeAsync(Hello("dl"), &accepted, "flaky").ok());
  v1::ListDeadLettersResponse dead;
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (absl::Now() < until) {
    dead.Clear();
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->ListDeadLetters(&context, {}, &dead).ok());
    if (dead.dead_letters_size() > 0) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(dead.dead_letters_size(), 1);
  EXPECT_EQ(Stats().dead_letters(), 1u);
  EXPECT_EQ(Stats().completions_delivered(), 0u);
  EXPECT_EQ(dead.dead_letters(0).completion().cid(), accepted.cid());
  EXPECT_EQ(dead.dead_letters(0).callback(), "flaky");
  EXPECT_EQ(dead.dead_letters(0).delivery_attempts(), 3u);
  EXPECT_EQ(dead.dead_letters(0).last_status_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(flaky.received().empty());

  v1::RedriveDeadLetterRequest redrive;
  redrive.set_cid(accepted.cid());
  v1::RedriveDeadLetterResponse redriven;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->RedriveDeadLetter(&context, redrive, &redriven).ok());
  auto delivered = flaky.WaitFor(accepted.cid());
  ASSERT_TRUE(delivered.has_value());
  EXPECT_EQ(delivered->state(), v1::CALL_STATE_SUCCEEDED);
  EXPECT_TRUE(testing::WaitUntil([&] { return Stats().completions_delivered() == 1; }));
  EXPECT_EQ(Stats().dead_letters(), 0u);
  grpc::ClientContext again;
  EXPECT_EQ(stub_->RedriveDeadLetter(&again, redrive, &redriven).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(AsyncTest, RetriesRetryableCodesThenFails) {
  v1::InvokeAsyncResponse retried, not_retried;
  ASSERT_TRUE(InvokeAsync(Hello("x", 0, /*UNAVAILABLE*/ 14), &retried).ok());
  ASSERT_TRUE(InvokeAsync(Hello("x", 0, /*INVALID_ARGUMENT*/ 3), &not_retried).ok());
  v1::Call a = Wait(retried.cid());
  v1::Call b = Wait(not_retried.cid());
  EXPECT_EQ(a.state(), v1::CALL_STATE_FAILED);
  EXPECT_EQ(a.attempts(), 4u);
  EXPECT_EQ(a.completion().status_code(), 14);
  EXPECT_EQ(b.state(), v1::CALL_STATE_FAILED);
  EXPECT_EQ(b.attempts(), 1u);
  EXPECT_EQ(b.completion().status_code(), 3);
}

TEST_F(AsyncTest, DeadlineExpiresAndTargetIsCancelled) {
  v1::InvokeAsyncResponse accepted;
  ASSERT_TRUE(InvokeAsync(Hello("slow", 10000), &accepted, "", "", /*timeout_ms=*/500).ok());
  v1::Call call = Wait(accepted.cid());
  EXPECT_EQ(call.state(), v1::CALL_STATE_EXPIRED);
  EXPECT_EQ(call.completion().status_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  testing::WaitUntil([&] { return greeter_.cancelled_calls() > 0; });
  EXPECT_EQ(greeter_.cancelled_calls(), 1u);
}

TEST_F(AsyncTest, CancelCallEndsRunningCallCancelled) {
  v1::InvokeAsyncResponse accepted;
  ASSERT_TRUE(InvokeAsync(Hello("slow", 10000), &accepted).ok());
  while (greeter_.started_calls() == 0) absl::SleepFor(absl::Milliseconds(5));
  v1::CancelCallRequest cancel;
  cancel.set_cid(accepted.cid());
  cancel.set_reason("test");
  v1::Call call;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->CancelCall(&context, cancel, &call).ok());
  EXPECT_EQ(call.state(), v1::CALL_STATE_CANCELLED);
  testing::WaitUntil([&] { return greeter_.cancelled_calls() > 0; });
  EXPECT_EQ(greeter_.cancelled_calls(), 1u);
  // The outcome never changes afterwards.
  EXPECT_EQ(Wait(accepted.cid()).state(), v1::CALL_STATE_CANCELLED);
}

TEST_F(AsyncTest, IdempotencyKeyReturnsSameCidAndRunsOnce) {
  v1::InvokeAsyncResponse first, second;
  ASSERT_TRUE(InvokeAsync(Hello("once"), &first, "", "order-42").ok());
  ASSERT_TRUE(InvokeAsync(Hello("once"), &second, "", "order-42").ok());
  EXPECT_EQ(first.cid(), second.cid());
  EXPECT_FALSE(first.deduplicated());
  EXPECT_TRUE(second.deduplicated());
  Wait(first.cid());
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(greeter_.started_calls(), 1u);
}

TEST_F(AsyncTest, InvalidRequestsAreRefusedAndPersistNothing) {
  v1::InvokeAsyncResponse response;
  EXPECT_EQ(InvokeAsync(Hello("x"), &response, "", "", 0, "").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status unknown = InvokeAsync(Hello("x"), &response, "", "", 0, "nobody");
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(absl::StrContains(unknown.error_message(), "nobody"));
  grpc::Status bad_callback = InvokeAsync(Hello("x"), &response, "Bad Callback!");
  EXPECT_EQ(bad_callback.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(bad_callback.error_message(), "callback"))
      << bad_callback.error_message();
  EXPECT_EQ(InvokeAsync(Hello(std::string(5 << 20, 'x')), &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Context that could not travel to the target as metadata is refused up front.
  for (const auto& [source, parent, field] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"not a name", "", "source"},
           {"tester", "line\nbreak", "parent_cid"},
           {"tester", std::string(200, 'p'), "parent_cid"}}) {
    v1::InvokeAsyncRequest request;
    request.set_service("greeter");
    request.set_method(kSayHello);
    request.set_payload(Hello("x").SerializeAsString());
    request.set_source(source);
    request.set_parent_cid(parent);
    grpc::ClientContext bad_context;
    grpc::Status bad = stub_->InvokeAsync(&bad_context, request, &response);
    EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field;
    EXPECT_TRUE(absl::StrContains(bad.error_message(), field)) << bad.error_message();
  }
  v1::ListCallsResponse listed;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->ListCalls(&context, {}, &listed).ok());
  EXPECT_EQ(listed.calls_size(), 0);
}

TEST_F(AsyncTest, WatchCompletionsStreamsAndResumesAfterSequence) {
  v1::InvokeAsyncResponse earlier;
  ASSERT_TRUE(InvokeAsync(Hello("earlier"), &earlier).ok());
  Wait(earlier.cid());
  // From now on: subscribed once the response headers arrive; the earlier completion is not
  // replayed.
  v1::WatchCompletionsRequest watch;
  watch.set_source("tester");
  grpc::ClientContext context;
  auto reader = stub_->WatchCompletions(&context, watch);
  reader->WaitForInitialMetadata();
  std::vector<std::string> cids;
  for (int i = 0; i < 3; ++i) {
    v1::InvokeAsyncResponse accepted;
    ASSERT_TRUE(InvokeAsync(Hello("w" + std::to_string(i)), &accepted).ok());
    cids.push_back(accepted.cid());
  }
  std::set<std::string> seen;
  uint64_t second_sequence = 0;
  std::string third_cid;  // completions come in sequence order, not submission order
  v1::Completion completion;
  while (seen.size() < 3 && reader->Read(&completion)) {
    EXPECT_NE(completion.cid(), earlier.cid());
    seen.insert(completion.cid());
    if (seen.size() == 2) second_sequence = completion.sequence();
    if (seen.size() == 3) third_cid = completion.cid();
  }
  EXPECT_EQ(seen, std::set<std::string>(cids.begin(), cids.end()));
  // Another source's completion is filtered out; the next one of ours arrives.
  v1::InvokeAsyncRequest other;
  other.set_service("greeter");
  other.set_method(kSayHello);
  other.set_payload(Hello("other").SerializeAsString());
  other.set_source("someone-else");
  v1::InvokeAsyncResponse other_accepted;
  grpc::ClientContext other_context;
  ASSERT_TRUE(stub_->InvokeAsync(&other_context, other, &other_accepted).ok());
  Wait(other_accepted.cid());
  v1::InvokeAsyncResponse live;
  ASSERT_TRUE(InvokeAsync(Hello("live"), &live).ok());
  ASSERT_TRUE(reader->Read(&completion));
  EXPECT_EQ(completion.cid(), live.cid());
  context.TryCancel();
  // Resuming after the second sequence gives the rest.
  watch.set_after_sequence(second_sequence);
  grpc::ClientContext resumed_context;
  auto resumed = stub_->WatchCompletions(&resumed_context, watch);
  ASSERT_TRUE(resumed->Read(&completion));
  EXPECT_GT(completion.sequence(), second_sequence);
  EXPECT_EQ(completion.cid(), third_cid);
  resumed_context.TryCancel();
  // Named CIDs also get their retained completions, even from before the stream opened.
  v1::WatchCompletionsRequest by_cid;
  by_cid.add_cids(earlier.cid());
  grpc::ClientContext by_cid_context;
  auto retained = stub_->WatchCompletions(&by_cid_context, by_cid);
  ASSERT_TRUE(retained->Read(&completion));
  EXPECT_EQ(completion.cid(), earlier.cid());
  EXPECT_EQ(completion.state(), v1::CALL_STATE_SUCCEEDED);
  by_cid_context.TryCancel();
}

TEST_F(AsyncTest, AcceptedCallsSurviveKill9AndRunOnceAfterRestartWithHigherAttempt) {
  // A call running at the moment of the crash, and calls waiting behind the per-target limit.
  std::vector<std::string> cids;
  v1::InvokeAsyncResponse running;
  ASSERT_TRUE(InvokeAsync(Hello("crash", 3000), &running).ok());
  cids.push_back(running.cid());
  while (greeter_.started_calls() == 0) absl::SleepFor(absl::Milliseconds(5));
  sidecar_->Kill();
  ASSERT_TRUE(sidecar_->Restart().ok());
  Connect();
  v1::Call call = Wait(running.cid(), 60);
  ASSERT_EQ(call.state(), v1::CALL_STATE_SUCCEEDED) << call.DebugString();
  EXPECT_GE(call.attempts(), 2u);
  HelloReply reply;
  ASSERT_TRUE(reply.ParseFromString(call.completion().reply()));
  EXPECT_EQ(reply.cid(), running.cid());
  EXPECT_GE(reply.attempt(), 2u);
}

TEST_F(AsyncTest, CastRunsRetriedWithItsCidAndKeepsNoResultOrCallback) {
  RecordingCallback convention;
  auto host = HostCallback("tester-async-callback", &convention);
  auto cast = [&](const HelloRequest& hello, v1::CastResponse* response) {
    v1::CastRequest request;
    request.set_service("greeter");
    request.set_method(kSayHello);
    request.set_payload(hello.SerializeAsString());
    request.set_source("tester");
    grpc::ClientContext context;
    return stub_->Cast(&context, request, response);
  };
  v1::CastResponse failing, succeeding;
  ASSERT_TRUE(cast(Hello("cast", 0, /*UNAVAILABLE*/ 14), &failing).ok());
  ASSERT_TRUE(cast(Hello("cast"), &succeeding).ok());
  EXPECT_FALSE(failing.cid().empty());
  EXPECT_NE(failing.cid(), succeeding.cid());
  // default_retry allows 4 attempts of the retryable failure; the target sees the cast's CID.
  auto attempts_of = [&](const std::string& cid) {
    const std::vector<std::string> seen = greeter_.seen_cids();
    return std::count(seen.begin(), seen.end(), cid);
  };
  ASSERT_TRUE(testing::WaitUntil([&] { return attempts_of(failing.cid()) == 4; }));
  EXPECT_EQ(attempts_of(succeeding.cid()), 1);
  // Once finished, nothing is kept: not pollable, not listed, no callback.
  for (const std::string& cid : {failing.cid(), succeeding.cid()}) {
    EXPECT_TRUE(testing::WaitUntil([&] {
      v1::GetCallRequest get;
      get.set_cid(cid);
      v1::Call call;
      grpc::ClientContext context;
      return stub_->GetCall(&context, get, &call).error_code() == grpc::StatusCode::NOT_FOUND;
    })) << cid;
  }
  // A later async call's completion reaches the convention callback, so it was listening.
  v1::InvokeAsyncResponse marker;
  ASSERT_TRUE(InvokeAsync(Hello("marker"), &marker).ok());
  ASSERT_TRUE(convention.WaitFor(marker.cid()).has_value());
  for (const v1::Completion& completion : convention.received()) {
    EXPECT_EQ(completion.cid(), marker.cid()) << "a cast produced a callback";
  }
  EXPECT_EQ(attempts_of(failing.cid()), 4);
}

TEST_F(AsyncTest, CastIdempotencyKeyHoldsAfterTheCastRan) {
  auto cast = [&](const std::string& name, v1::CastResponse* response) {
    v1::CastRequest request;
    request.set_service("greeter");
    request.set_method(kSayHello);
    request.set_payload(Hello(name).SerializeAsString());
    request.set_source("tester");
    request.set_idempotency_key("cast-once");
    grpc::ClientContext context;
    return stub_->Cast(&context, request, response);
  };
  v1::CastResponse first, again;
  ASSERT_TRUE(cast("first", &first).ok());
  EXPECT_FALSE(first.deduplicated());
  auto runs_of = [&](const std::string& cid) {
    const std::vector<std::string> seen = greeter_.seen_cids();
    return std::count(seen.begin(), seen.end(), cid);
  };
  ASSERT_TRUE(testing::WaitUntil([&] { return runs_of(first.cid()) == 1; }));
  // Once it has run (and its record is gone), the same key still answers with the first CID, also
  // after a kill -9, and the target does not run it again.
  ASSERT_TRUE(testing::WaitUntil([&] {
    v1::GetCallRequest get;
    get.set_cid(first.cid());
    v1::Call call;
    grpc::ClientContext context;
    return stub_->GetCall(&context, get, &call).error_code() == grpc::StatusCode::NOT_FOUND;
  }));
  ASSERT_TRUE(cast("again", &again).ok());
  EXPECT_TRUE(again.deduplicated());
  EXPECT_EQ(again.cid(), first.cid());
  sidecar_->Kill();
  ASSERT_TRUE(sidecar_->Restart().ok());
  Connect();
  // Retried until the greeter has registered again (the service must be known to accept).
  ASSERT_TRUE(testing::WaitUntil([&] {
    again.Clear();
    return cast("after restart", &again).ok();
  }));
  EXPECT_TRUE(again.deduplicated());
  EXPECT_EQ(again.cid(), first.cid());
  v1::InvokeAsyncResponse marker;       // runs after anything the casts could have started
  ASSERT_TRUE(testing::WaitUntil([&] {  // once the greeter has registered again
    return InvokeAsync(Hello("marker"), &marker).ok();
  }));
  EXPECT_EQ(Wait(marker.cid()).state(), v1::CALL_STATE_SUCCEEDED);
  EXPECT_EQ(runs_of(first.cid()), 1);
  for (const std::string& cid : greeter_.seen_cids()) {
    EXPECT_TRUE(cid == first.cid() || cid == marker.cid()) << "an unexpected run " << cid;
  }
}

TEST_F(AsyncTest, CallsAtThePayloadLimitCanBeReadBack) {
  // Requests and replies just under max_payload_bytes (4 MiB by default): GetCall with the
  // payload holds both, and a ListCalls page over such calls must still fit in one message.
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // this client takes whatever the sidecar sends
  auto big_reader = v1::Sidecar::NewStub(
      grpc::CreateCustomChannel(sidecar_->address(), grpc::InsecureChannelCredentials(), args));
  std::set<std::string> cids;
  for (int i = 0; i < 2; ++i) {
    v1::InvokeAsyncResponse accepted;
    ASSERT_TRUE(InvokeAsync(Hello(std::string((4 << 20) - 256, 'a' + i)), &accepted).ok());
    v1::WaitCallRequest wait;
    wait.set_cid(accepted.cid());
    wait.mutable_timeout()->set_seconds(30);
    v1::Call call;
    grpc::ClientContext context;
    grpc::Status status = big_reader->WaitCall(&context, wait, &call);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(call.state(), v1::CALL_STATE_SUCCEEDED);
    cids.insert(accepted.cid());
  }
  for (const std::string& cid : cids) {
    v1::GetCallRequest get;
    get.set_cid(cid);
    get.set_include_payload(true);
    v1::Call call;
    grpc::ClientContext context;
    grpc::Status status = big_reader->GetCall(&context, get, &call);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_GT(call.envelope().payload().size(), 4u << 19);
    EXPECT_GT(call.completion().reply().size(), 4u << 19);
  }
  std::set<std::string> listed;
  std::string token;
  do {
    v1::ListCallsRequest list;
    list.set_page_token(token);
    v1::ListCallsResponse page;
    grpc::ClientContext context;
    grpc::Status status = big_reader->ListCalls(&context, list, &page);
    ASSERT_TRUE(status.ok()) << status.error_message();
    for (const v1::Call& call : page.calls()) listed.insert(call.envelope().cid());
    token = page.next_page_token();
  } while (!token.empty());
  EXPECT_EQ(listed, cids);
}

TEST_F(AsyncTest, TargetKilledMidCallIsRetriedOnceItIsBack) {
  // The target is a real greeter_server process on a fixed port, killed with SIGKILL while it
  // holds the call and started again on the same port.
  const int port = testing::FreeLoopbackPort();
  ASSERT_GT(port, 0);
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  const std::string dir = testing::NewTempDir("target");
  auto start_target = [&](const std::string& label) {
    const std::string ready = dir + "/" + label + ".ready";
    absl::StatusOr<Process> target =
        Process::Start(testing::RunfilePath("services/greeter/greeter_server"),
                       {"--name=worker", "--listen=" + listen, "--sidecar=" + sidecar_->address(),
                        "--ready_file=" + ready},
                       label);
    EXPECT_TRUE(target.ok()) << target.status();
    if (target.ok()) {
      absl::StatusOr<std::string> address = target->WaitReady(ready, absl::Seconds(30));
      EXPECT_TRUE(address.ok()) << address.status();
    }
    return target;
  };
  absl::StatusOr<Process> target = start_target("worker-1");
  ASSERT_TRUE(target.ok());

  v1::InvokeAsyncResponse accepted;
  ASSERT_TRUE(InvokeAsync(Hello("survivor", 4000), &accepted, "", "", 0, "worker").ok());
  // Wait until the first attempt is under way, then give it time to reach the target.
  ASSERT_TRUE(testing::WaitUntil([&] {
    v1::GetCallRequest get;
    get.set_cid(accepted.cid());
    v1::Call call;
    grpc::ClientContext context;
    return stub_->GetCall(&context, get, &call).ok() && call.state() == v1::CALL_STATE_RUNNING;
  }));
  absl::SleepFor(absl::Milliseconds(300));
  target->Signal(SIGKILL);
  ASSERT_TRUE(target->Wait(absl::Seconds(10)).ok());

  absl::StatusOr<Process> restarted = start_target("worker-2");
  ASSERT_TRUE(restarted.ok());
  v1::Call call = Wait(accepted.cid(), 60);
  ASSERT_EQ(call.state(), v1::CALL_STATE_SUCCEEDED) << call.DebugString();
  EXPECT_GE(call.attempts(), 2u);
  HelloReply reply;
  ASSERT_TRUE(reply.ParseFromString(call.completion().reply()));
  EXPECT_EQ(reply.cid(), accepted.cid());
  EXPECT_GE(reply.attempt(), 2u);
  EXPECT_TRUE(absl::StrContains(restarted->output(), accepted.cid())) << restarted->output();
  restarted->Signal(SIGTERM);
  EXPECT_TRUE(restarted->Wait(absl::Seconds(10)).ok());
}

TEST(AsyncRestart, ACallWaitingForAnInstanceStaysParkedAcrossARestart) {
  // A static service whose only instance is down, one attempt allowed: the call waits without
  // spending it, and a kill -9 and restart of the sidecar does not spend it either.
  const int port = testing::FreeLoopbackPort();
  ASSERT_GT(port, 0);
  auto started = SidecarProcess::Start(
      {.config_yaml = absl::StrCat("services: [{name: ghost, addresses: ['127.0.0.1:", port,
                                   "'], retry: {max_attempts: 1}}]\n"
                                   "health_check_interval: 200ms\n")});
  ASSERT_TRUE(started.ok()) << started.status();
  SidecarProcess sidecar = *std::move(started);
  auto stub = v1::Sidecar::NewStub(sidecar.Channel());
  auto state_after = [&](const std::string& cid, int wait_ms) {
    v1::WaitCallRequest wait;
    wait.set_cid(cid);
    wait.mutable_timeout()->set_seconds(wait_ms / 1000);
    wait.mutable_timeout()->set_nanos(wait_ms % 1000 * 1000000);
    v1::Call call;
    grpc::ClientContext context;
    grpc::Status status = stub->WaitCall(&context, wait, &call);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return call;
  };
  // Once the probes know the instance is down (within a few health checks).
  ASSERT_TRUE(testing::WaitUntil([&] {
    v1::ListServicesResponse services;
    grpc::ClientContext context;
    return stub->ListServices(&context, {}, &services).ok() && services.services_size() == 1 &&
           services.services(0).instances_size() == 1 &&
           !services.services(0).instances(0).healthy();
  }));
  v1::InvokeAsyncRequest request;
  request.set_service("ghost");
  request.set_method(kSayHello);
  request.set_payload(Hello("anyone?").SerializeAsString());
  v1::InvokeAsyncResponse accepted;
  grpc::ClientContext context;
  ASSERT_TRUE(stub->InvokeAsync(&context, request, &accepted).ok());
  v1::Call call = state_after(accepted.cid(), 800);
  EXPECT_EQ(call.state(), v1::CALL_STATE_ACCEPTED) << call.DebugString();
  EXPECT_EQ(call.attempts(), 0u);

  sidecar.Kill();
  ASSERT_TRUE(sidecar.Restart().ok());
  stub = v1::Sidecar::NewStub(sidecar.Channel());
  ASSERT_TRUE(testing::WaitUntil([&] {  // past the connection the kill broke
    v1::GetCallRequest get;
    get.set_cid(accepted.cid());
    grpc::ClientContext get_context;
    return stub->GetCall(&get_context, get, &call).ok();
  }));
  call = state_after(accepted.cid(), 1500);
  EXPECT_EQ(call.state(), v1::CALL_STATE_ACCEPTED) << call.DebugString();
  EXPECT_EQ(call.attempts(), 0u);
}

// The callback service is configured statically at an address where nothing listens yet.
class CallbackDownTest : public AsyncTest {
 protected:
  void SetUp() override {
    port_ = testing::FreeLoopbackPort();
    ASSERT_GT(port_, 0);
    Start(
        "callback_retry: {max_attempts: 200, initial_backoff: 50ms, max_backoff: 200ms}\n"
        "services:\n"
        "  - name: late-callback\n"
        "    addresses: [127.0.0.1:" +
        std::to_string(port_) + "]\n");
  }
  int port_ = -1;
};

TEST_F(CallbackDownTest, CompletionIsDeliveredOnceTheCallbackServiceIsUp) {
  v1::InvokeAsyncResponse accepted;
  ASSERT_TRUE(InvokeAsync(Hello("later"), &accepted, "late-callback").ok());
  v1::Call call = Wait(accepted.cid());
  ASSERT_EQ(call.state(), v1::CALL_STATE_SUCCEEDED);
  EXPECT_EQ(call.callback(), "late-callback");
  // Deliveries fail while nothing listens; the completion stays pending, not dead-lettered.
  absl::SleepFor(absl::Milliseconds(500));
  v1::GetCallRequest get;
  get.set_cid(accepted.cid());
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->GetCall(&context, get, &call).ok());
    EXPECT_EQ(call.callback_delivery(), v1::DELIVERY_STATE_PENDING);
  }

  RecordingCallback late;
  ServiceHost host(ServiceHostOptions{
      .name = "late-callback", .listen = "127.0.0.1:" + std::to_string(port_), .sidecar = ""});
  host.AddService(&late);
  ASSERT_TRUE(host.Start().ok());
  std::optional<v1::Completion> delivered = late.WaitFor(accepted.cid());
  ASSERT_TRUE(delivered.has_value());
  EXPECT_EQ(delivered->state(), v1::CALL_STATE_SUCCEEDED);
  EXPECT_GE(delivered->delivery_attempt(), 2u);
  EXPECT_TRUE(testing::WaitUntil([&] {
    grpc::ClientContext context;
    return stub_->GetCall(&context, get, &call).ok() &&
           call.callback_delivery() == v1::DELIVERY_STATE_DELIVERED;
  }));
  EXPECT_EQ(late.received().size(), 1u);
  host.Shutdown();
}

TEST(AsyncLimits, OverPendingLimitIsResourceExhausted) {
  auto sidecar = SidecarProcess::Start(
      {.config_yaml = "limits: {max_pending_calls: 2, max_in_flight_per_target: 1}\n"});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  greeter::GreeterService greeter;
  auto host = testing::HostService("greeter", sidecar->address(), &greeter);
  ASSERT_NE(host, nullptr);
  auto stub = v1::Sidecar::NewStub(sidecar->Channel());
  int accepted = 0, exhausted = 0;
  for (int i = 0; i < 4; ++i) {
    v1::InvokeAsyncRequest request;
    request.set_service("greeter");
    request.set_method(kSayHello);
    request.set_payload(Hello("slow", 3000).SerializeAsString());
    v1::InvokeAsyncResponse response;
    grpc::ClientContext context;
    grpc::Status status = stub->InvokeAsync(&context, request, &response);
    if (status.ok()) ++accepted;
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++exhausted;
      EXPECT_TRUE(absl::StrContains(status.error_message(), "max_pending_calls"));
    }
  }
  EXPECT_EQ(accepted, 2);
  EXPECT_EQ(exhausted, 2);
}

TEST(AsyncStartup, CorruptedJournalExitsTwoWithClearError) {
  auto sidecar = SidecarProcess::Start({});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  const std::string data_dir = sidecar->data_dir();
  ASSERT_EQ(*sidecar->Stop(), 0);
  // Overwrite the MANIFEST and CURRENT files with garbage.
  for (const char* name : {"CURRENT"}) {
    std::ofstream(data_dir + "/" + name, std::ios::trunc) << "garbage\n";
  }
  auto restarted = sidecar->Restart();
  EXPECT_FALSE(restarted.ok());
  absl::StatusOr<int> code = sidecar->process().Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 2) << sidecar->process().output();
  EXPECT_TRUE(absl::StrContains(sidecar->process().output(), data_dir))
      << sidecar->process().output();
}

// As root (CI) permissions do not stop anything, so the unusable directories here are ones no
// user can create: a path that is a regular file, a path below a regular file, and one in /proc.
TEST(AsyncStartup, UnusableDataDirExitsTwoNamingIt) {
  const std::string dir = testing::NewTempDir("baddata");
  const std::string file = dir + "/not-a-directory";
  std::ofstream(file) << "x";
  for (const std::string& data_dir : {file, file + "/below", std::string("/proc/callmesh-data")}) {
    absl::StatusOr<Process> process =
        Process::Start(testing::RunfilePath("runtime/sidecar/callmeshd"),
                       {"--listen=127.0.0.1:0", "--data-dir=" + data_dir}, "baddata");
    ASSERT_TRUE(process.ok());
    absl::StatusOr<int> code = process->Wait(absl::Seconds(30));
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, 2) << data_dir << ": " << process->output();
    EXPECT_TRUE(absl::StrContains(process->output(), data_dir)) << process->output();
  }
}

}  // namespace
}  // namespace callmesh
