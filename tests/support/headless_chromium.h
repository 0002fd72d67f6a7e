// Debian's `chromium`, headless, driven over the Chrome DevTools Protocol on a pipe
// (--remote-debugging-pipe: JSON messages ending in '\0' on file descriptors 3 and 4), so tests can
// load a page, read what it shows, click, and take screenshots without a WebSocket client or Node.
//
//   auto browser = HeadlessChromium::Start();
//   ASSERT_TRUE(browser.ok()) << browser.status();
//   ASSERT_TRUE((*browser)->Open("http://127.0.0.1:4771/ui").ok());
//   absl::StatusOr<std::string> text = (*browser)->Evaluate("document.body.innerText");
//   (*browser)->Screenshot(path);
//
// One page per browser. Not thread-safe. The destructor closes the browser and waits for it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"

namespace callmesh::testing {

class HeadlessChromium {
 public:
  // Starts chromium (FAILED_PRECONDITION naming the package if it is not installed) with a fresh
  // profile under $TEST_TMPDIR and a `width` x `height` window.
  static absl::StatusOr<std::unique_ptr<HeadlessChromium>> Start(int width = 1400,
                                                                 int height = 1000);
  ~HeadlessChromium();

  // Opens `url` in the page (the first call creates it) and waits for its load event.
  absl::Status Open(const std::string& url);

  // The value of the JavaScript `expression` in the page (awaited if it is a promise), as a
  // string (JSON.stringify for non-strings). INTERNAL with the exception text if it throws.
  absl::StatusOr<std::string> Evaluate(const std::string& expression);

  // Evaluates `expression` until it is "true"; DEADLINE_EXCEEDED (with its last value) after
  // `timeout` — a hang guard, not a timing assertion.
  absl::Status WaitFor(const std::string& expression, absl::Duration timeout = absl::Seconds(30));

  // Writes a PNG of the page's viewport to `path`.
  absl::Status Screenshot(const std::string& path);

 private:
  HeadlessChromium() = default;
  // Sends `method` with `params_json` (to the page's session unless `browser_level`) and returns
  // the response's "result". UNAVAILABLE if the browser went away.
  absl::StatusOr<google::protobuf::Struct> Call(const std::string& method,
                                                const std::string& params_json,
                                                bool browser_level = false);

  pid_t pid_ = -1;
  int to_browser_ = -1;
  int from_browser_ = -1;
  std::string buffered_;
  int64_t next_id_ = 1;
  std::string session_;
};

}  // namespace callmesh::testing
