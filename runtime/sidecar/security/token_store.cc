#include "runtime/sidecar/security/token_store.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar::security {
namespace {

struct FileState {
  ino_t inode = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
};

absl::StatusOr<FileState> StatFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read: ", std::strerror(errno)));
  }
  return FileState{st.st_ino, st.st_size,
                   static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

// The token in `path`, whitespace around it removed.
absl::StatusOr<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read: ", std::strerror(errno)));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError("cannot read: I/O error");
  std::string token(absl::StripAsciiWhitespace(text.str()));
  if (token.empty()) return absl::InvalidArgumentError("is empty");
  return token;
}

}  // namespace

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Walk the longer of the two whole, so that the time does not tell how much of a prefix matched.
  const size_t n = std::max(a.size(), b.size());
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | (x ^ y);
  }
  return diff == 0;
}

absl::StatusOr<std::unique_ptr<TokenStore>> TokenStore::Load(
    const google::protobuf::RepeatedPtrField<v1::TokenConfig>& tokens, Clock* clock,
    absl::Duration recheck_every) {
  std::vector<Entry> entries;
  for (int i = 0; i < tokens.size(); ++i) {
    const std::string where =
        absl::StrCat("security.tokens[", i, "].file ", tokens[i].file(), ": ");
    absl::StatusOr<FileState> state = StatFile(tokens[i].file());
    absl::StatusOr<std::string> token =
        state.ok() ? ReadToken(tokens[i].file()) : absl::StatusOr<std::string>(state.status());
    if (!token.ok())
      return absl::InvalidArgumentError(absl::StrCat(where, token.status().message()));
    entries.push_back({.app = tokens[i].app(),
                       .file = tokens[i].file(),
                       .token = *std::move(token),
                       .inode = state->inode,
                       .size = state->size,
                       .mtime_ns = state->mtime_ns});
  }
  return std::unique_ptr<TokenStore>(new TokenStore(std::move(entries), clock, recheck_every));
}

TokenStore::TokenStore(std::vector<Entry> entries, Clock* clock, absl::Duration recheck_every)
    : clock_(clock),
      recheck_every_(recheck_every),
      entries_(std::move(entries)),
      next_check_(clock->Now() + recheck_every) {}

std::optional<std::string> TokenStore::Identify(absl::string_view token) {
  bool due;
  {
    absl::ReaderMutexLock lock(&mu_);
    due = clock_->Now() >= next_check_;
  }
  if (due) ReloadChangedFiles();
  std::optional<std::string> app;
  absl::ReaderMutexLock lock(&mu_);
  // Every entry is compared, also after a match: the time does not tell which one matched.
  for (const Entry& entry : entries_) {
    if (ConstantTimeEquals(entry.token, token) && !app.has_value()) app = entry.app;
  }
  return app;
}

void TokenStore::ReloadChangedFiles() {
  absl::MutexLock lock(&mu_);
  next_check_ = clock_->Now() + recheck_every_;
  for (Entry& entry : entries_) {
    absl::StatusOr<FileState> state = StatFile(entry.file);
    if (state.ok() && state->inode == entry.inode && state->size == entry.size &&
        state->mtime_ns == entry.mtime_ns) {
      continue;
    }
    absl::StatusOr<std::string> token =
        state.ok() ? ReadToken(entry.file) : absl::StatusOr<std::string>(state.status());
    if (!token.ok()) {
      if (!entry.warned) {
        spdlog::warn("callmeshd: token file {} of {}: {}; keeping its previous token", entry.file,
                     entry.app, std::string(token.status().message()));
        entry.warned = true;
      }
      continue;
    }
    entry.warned = false;
    entry.inode = state->inode;
    entry.size = state->size;
    entry.mtime_ns = state->mtime_ns;
    if (*token != entry.token) {
      entry.token = *std::move(token);
      spdlog::info("callmeshd: token of {} reloaded from {}", entry.app, entry.file);
    }
  }
}

}  // namespace callmesh::sidecar::security
