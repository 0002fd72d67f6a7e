// How callmesh shows a piece of user input inside an error message: in double quotes, with C
// escapes for quotes, backslashes and unprintable bytes, and cut after 80 characters ("...") so
// that a huge value cannot flood a log line.
//
//   absl::StrCat("unknown key ", Quoted("listn"))   // unknown key "listn"
#pragma once

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace callmesh {

inline std::string Quoted(absl::string_view text) {
  constexpr size_t kMaxShown = 80;
  if (text.size() > kMaxShown) {
    return absl::StrCat("\"", absl::CEscape(text.substr(0, kMaxShown)), "...\"");
  }
  return absl::StrCat("\"", absl::CEscape(text), "\"");
}

}  // namespace callmesh
