#include "runtime/common/tls/token_file.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/common/tls/test_pki.h"

namespace callmesh::tls {
namespace {

using ::testing::HasSubstr;

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(TokenFile, ReadsTheTokenStrippedAndRereadsItWhenTheFileChanges) {
  const std::string path = NewTestDir("token") + "/token";
  Write(path, "  first-token\n");
  FakeClock clock;
  absl::StatusOr<std::unique_ptr<TokenFile>> token = TokenFile::Open(path, &clock);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ((*token)->Current(), "first-token");
  Write(path, "second-token-longer\n");
  // Not re-checked before the interval has passed.
  EXPECT_EQ((*token)->Current(), "first-token");
  clock.Advance(kTokenRecheckInterval);
  EXPECT_EQ((*token)->Current(), "second-token-longer");
}

TEST(TokenFile, KeepsTheLastGoodTokenWhileTheFileIsEmptyOrGone) {
  const std::string path = NewTestDir("token") + "/token";
  Write(path, "good");
  FakeClock clock;
  std::unique_ptr<TokenFile> token = *TokenFile::Open(path, &clock);
  Write(path, "");
  clock.Advance(kTokenRecheckInterval);
  EXPECT_EQ(token->Current(), "good");
  std::remove(path.c_str());
  clock.Advance(kTokenRecheckInterval);
  EXPECT_EQ(token->Current(), "good");
  Write(path, "rotated");
  clock.Advance(kTokenRecheckInterval);
  EXPECT_EQ(token->Current(), "rotated");
}

TEST(TokenFile, RefusesMissingEmptyAndUnsendableTokens) {
  const std::string dir = NewTestDir("token");
  EXPECT_THAT(TokenFile::Open(dir + "/missing").status().message(),
              HasSubstr("cannot read token file \"" + dir + "/missing\""));
  Write(dir + "/empty", " \n");
  EXPECT_THAT(TokenFile::Open(dir + "/empty").status().message(), HasSubstr("is empty"));
  Write(dir + "/space", "two words");
  EXPECT_THAT(TokenFile::Open(dir + "/space").status().message(),
              HasSubstr("cannot be sent in a header"));
}

}  // namespace
}  // namespace callmesh::tls
