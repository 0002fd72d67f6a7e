// The live web view of a sidecar, served by the admin listener (`admin_listen`): an operator tool
// for looking at what the sidecar does now. Plain HTML, CSS and a little JavaScript compiled into
// the binary (web_page.cc); no build step, nothing fetched from elsewhere.
//
//   GET  /ui                                  the page
//   GET  /ui/api/services                     registry: services, instances, health and why
//   GET  /ui/api/calls?service=&state=&source=&cid=&limit=
//                                             calls newest first (in flight and recent), with what
//                                             each one waits for; state: a CallState name such
//                                             as RUNNING or CALL_STATE_RUNNING
//   GET  /ui/api/calls/<cid>                  one call: attempts, timings, outcome, trace id
//   GET  /ui/api/dead-letters                 dead letters
//   POST /ui/api/dead-letters/<cid>/redrive   re-drives a dead letter (as RedriveDeadLetter)
//   GET  /ui/events                           server-sent events: "completion" (the CID and state
//   of
//                                             each completion as it becomes durable) and a
//                                             "tick" every second, on which the page refreshes
//                                             the calls in flight
//
// JSON is protobuf's JSON mapping of the Sidecar API messages (payload and reply bytes left out).
// Errors answer with an HTTP status (400, 404, 409, 503) and {"error": "<message>"}.
//
// No authentication: like /metrics it relies on the admin listener being on loopback (the
// default) or a private network. Once the security work's admin rule lands, the redrive route
// must be subject to it.
//
// Thread-safe. Stop ends the open event streams; call it before the admin listener stops (which
// waits for its handler threads).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/synchronization/mutex.h"
#include "runtime/common/http/http_router.h"
#include "runtime/sidecar/delivery/callback_deliverer.h"
#include "runtime/sidecar/delivery/completion_hub.h"
#include "runtime/sidecar/dispatch/dispatcher.h"
#include "runtime/sidecar/registry/registry.h"
#include "runtime/sidecar/store/call_store.h"

namespace callmesh::webview {

class WebView {
 public:
  // What the page shows and acts on; every pointer must outlive the web view.
  struct Sources {
    sidecar::CallStore* store = nullptr;
    sidecar::Registry* registry = nullptr;
    sidecar::Dispatcher* dispatcher = nullptr;
    sidecar::CallbackDeliverer* deliverer = nullptr;
    sidecar::CompletionHub* hub = nullptr;
    // The sidecar's name, shown in the title.
    std::string name;
  };

  explicit WebView(Sources sources);
  ~WebView();
  WebView(const WebView&) = delete;
  WebView& operator=(const WebView&) = delete;

  // Adds the routes above to `router` (the admin listener's, before it serves).
  void AddRoutes(http::HttpRouter* router);

  // Ends the event streams (each within a second) and refuses new ones. Idempotent.
  void Stop();

 private:
  const Sources sources_;
  std::atomic<bool> stopping_{false};
};

}  // namespace callmesh::webview
