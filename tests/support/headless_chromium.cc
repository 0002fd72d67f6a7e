#include "tests/support/headless_chromium.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "runtime/common/json_string.h"
#include "tests/support/process.h"

namespace callmesh::testing {
namespace {

namespace pb = google::protobuf;

std::string JsonString(const std::string& text) {
  std::string out;
  AppendJsonString(&out, text);
  return out;
}

const pb::Value* Member(const pb::Struct& object, const std::string& key) {
  auto it = object.fields().find(key);
  return it == object.fields().end() ? nullptr : &it->second;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HeadlessChromium>> HeadlessChromium::Start(int width, int height) {
  const std::string binary = "/usr/bin/chromium";
  if (access(binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        "chromium is not installed (Debian package chromium; make deps installs it)");
  }
  int commands[2], events[2];
  if (pipe(commands) != 0 || pipe(events) != 0) return absl::InternalError("pipe failed");
  const std::string profile = NewTempDir("chromium-profile");
  std::vector<std::string> args = {binary,
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--disable-dev-shm-usage",
                                   "--no-first-run",
                                   "--remote-debugging-pipe",
                                   absl::StrCat("--user-data-dir=", profile),
                                   absl::StrCat("--window-size=", width, ",", height),
                                   "about:blank"};
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    // The protocol: the browser reads commands on fd 3 and writes answers on fd 4.
    dup2(commands[0], 3);
    dup2(events[1], 4);
    for (int fd : {commands[0], commands[1], events[0], events[1]}) {
      if (fd > 4) close(fd);
    }
    const std::string log = absl::StrCat(profile, "/chromium.log");
    freopen(log.c_str(), "w", stdout);
    freopen(log.c_str(), "a", stderr);
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(commands[0]);
  close(events[1]);
  std::unique_ptr<HeadlessChromium> browser(new HeadlessChromium());
  browser->pid_ = pid;
  browser->to_browser_ = commands[1];
  browser->from_browser_ = events[0];
  return browser;
}

HeadlessChromium::~HeadlessChromium() {
  if (pid_ > 0) {
    (void)Call("Browser.close", "{}", /*browser_level=*/true);
    close(to_browser_);
    close(from_browser_);
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

absl::StatusOr<pb::Struct> HeadlessChromium::Call(const std::string& method,
                                                  const std::string& params_json,
                                                  bool browser_level) {
  const int64_t id = next_id_++;
  std::string message =
      absl::StrCat("{\"id\":", id, ",\"method\":", JsonString(method), ",\"params\":", params_json);
  if (!browser_level && !session_.empty()) {
    absl::StrAppend(&message, ",\"sessionId\":", JsonString(session_));
  }
  message += "}";
  message.push_back('\0');
  for (size_t sent = 0; sent < message.size();) {
    const ssize_t n = write(to_browser_, message.data() + sent, message.size() - sent);
    if (n <= 0) return absl::UnavailableError("chromium went away (write failed)");
    sent += n;
  }
  // Read messages until the answer to `id`; events and other answers are skipped.
  while (true) {
    size_t end;
    while ((end = buffered_.find('\0')) == std::string::npos) {
      char chunk[65536];
      const ssize_t n = read(from_browser_, chunk, sizeof(chunk));
      if (n <= 0) return absl::UnavailableError("chromium went away (read failed)");
      buffered_.append(chunk, n);
    }
    const std::string json = buffered_.substr(0, end);
    buffered_.erase(0, end + 1);
    pb::Struct answer;
    if (!pb::util::JsonStringToMessage(json, &answer).ok()) continue;
    const pb::Value* answer_id = Member(answer, "id");
    if (answer_id == nullptr || static_cast<int64_t>(answer_id->number_value()) != id) continue;
    if (const pb::Value* error = Member(answer, "error"); error != nullptr) {
      return absl::InternalError(absl::StrCat(method, ": ", json));
    }
    const pb::Value* result = Member(answer, "result");
    return result == nullptr ? pb::Struct() : result->struct_value();
  }
}

absl::Status HeadlessChromium::Open(const std::string& url) {
  if (session_.empty()) {
    absl::StatusOr<pb::Struct> target =
        Call("Target.createTarget", "{\"url\":\"about:blank\"}", /*browser_level=*/true);
    if (!target.ok()) return target.status();
    const pb::Value* target_id = Member(*target, "targetId");
    if (target_id == nullptr) return absl::InternalError("Target.createTarget: no targetId");
    absl::StatusOr<pb::Struct> attached = Call(
        "Target.attachToTarget",
        absl::StrCat("{\"targetId\":", JsonString(target_id->string_value()), ",\"flatten\":true}"),
        /*browser_level=*/true);
    if (!attached.ok()) return attached.status();
    const pb::Value* session = Member(*attached, "sessionId");
    if (session == nullptr) return absl::InternalError("Target.attachToTarget: no sessionId");
    session_ = session->string_value();
  }
  absl::StatusOr<pb::Struct> navigated =
      Call("Page.navigate", absl::StrCat("{\"url\":", JsonString(url), "}"));
  if (!navigated.ok()) return navigated.status();
  if (const pb::Value* error = Member(*navigated, "errorText"); error != nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot open ", url, ": ", error->string_value()));
  }
  return WaitFor("document.readyState === 'complete'");
}

absl::StatusOr<std::string> HeadlessChromium::Evaluate(const std::string& expression) {
  absl::StatusOr<pb::Struct> evaluated =
      Call("Runtime.evaluate",
           absl::StrCat("{\"expression\":",
                        JsonString(absl::StrCat("(async () => { const v = await (", expression,
                                                "); return typeof v === 'string' ? v : "
                                                "JSON.stringify(v); })()")),
                        ",\"awaitPromise\":true,\"returnByValue\":true}"));
  if (!evaluated.ok()) return evaluated.status();
  if (const pb::Value* thrown = Member(*evaluated, "exceptionDetails"); thrown != nullptr) {
    std::string text;
    (void)pb::util::MessageToJsonString(thrown->struct_value(), &text);
    return absl::InternalError(absl::StrCat("JavaScript threw: ", text));
  }
  const pb::Value* result = Member(*evaluated, "result");
  if (result == nullptr) return absl::InternalError("Runtime.evaluate: no result");
  const pb::Value* value = Member(result->struct_value(), "value");
  return value == nullptr ? std::string() : value->string_value();
}

absl::Status HeadlessChromium::WaitFor(const std::string& expression, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  std::string last;
  while (absl::Now() < until) {
    absl::StatusOr<std::string> value = Evaluate(expression);
    if (value.ok() && *value == "true") return absl::OkStatus();
    if (absl::IsUnavailable(value.status())) return value.status();
    last = value.ok() ? *value : std::string(value.status().message());
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("waited ", absl::FormatDuration(timeout), " for ",
                                                  expression, "; last: ", last));
}

absl::Status HeadlessChromium::Screenshot(const std::string& path) {
  absl::StatusOr<pb::Struct> shot = Call("Page.captureScreenshot", "{\"format\":\"png\"}");
  if (!shot.ok()) return shot.status();
  const pb::Value* data = Member(*shot, "data");
  std::string png;
  if (data == nullptr || !absl::Base64Unescape(data->string_value(), &png)) {
    return absl::InternalError("Page.captureScreenshot: no image");
  }
  std::ofstream(path, std::ios::binary) << png;
  return absl::OkStatus();
}

}  // namespace callmesh::testing
