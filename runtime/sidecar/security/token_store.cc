#include "runtime/sidecar/security/token_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace callmesh::sidecar::security {

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
    absl::StatusOr<std::unique_ptr<tls::TokenFile>> file =
        tls::TokenFile::Open(tokens[i].file(), clock, recheck_every);
    if (!file.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("security.tokens[", i, "].file: ", file.status().message()));
    }
    entries.push_back({.app = tokens[i].app(), .file = *std::move(file)});
  }
  return std::unique_ptr<TokenStore>(new TokenStore(std::move(entries)));
}

std::optional<std::string> TokenStore::Identify(absl::string_view token) {
  std::optional<std::string> app;
  // Every entry is compared, also after a match: the time does not tell which one matched.
  for (const Entry& entry : entries_) {
    if (ConstantTimeEquals(entry.file->Current(), token) && !app.has_value()) app = entry.app;
  }
  return app;
}

void TokenStore::ReloadChangedFiles() {
  for (const Entry& entry : entries_) entry.file->Recheck();
}

}  // namespace callmesh::sidecar::security
