// The web view's one page (HTML, CSS and JavaScript in one document), compiled into the binary.
// It reads the JSON routes of WebView and listens to /ui/events; see web_view.h.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace callmesh::webview {

// The page, titled with the sidecar's `name` (HTML-escaped).
std::string WebPage(absl::string_view name);

}  // namespace callmesh::webview
