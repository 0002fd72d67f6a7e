#include "runtime/sidecar/security/authenticator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/clock.h"
#include "runtime/sidecar/security/token_store.h"

namespace callmesh::sidecar::security {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", getpid(), "-", name);
}

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = TempPath(name);
  std::ofstream(path, std::ios::trunc) << text;
  return path;
}

google::protobuf::RepeatedPtrField<v1::TokenConfig> Tokens(
    std::initializer_list<std::pair<std::string, std::string>> app_files) {
  google::protobuf::RepeatedPtrField<v1::TokenConfig> tokens;
  for (const auto& [app, file] : app_files) {
    v1::TokenConfig* token = tokens.Add();
    token->set_app(app);
    token->set_file(file);
  }
  return tokens;
}

TEST(ConstantTimeEquals, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(ConstantTimeEquals("secret", ""));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), "a"));
}

TEST(TokenStore, LoadNamesAnUnreadableOrEmptyFile) {
  FakeClock clock;
  auto missing = TokenStore::Load(Tokens({{"a", TempPath("no-such-token")}}), &clock);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::StrContains(
      missing.status().message(),
      "security.tokens[0].file: cannot read token file \"" + TempPath("no-such-token") + "\""))
      << missing.status();
  const std::string empty = WriteFile("empty-token", "  \n");
  auto blank = TokenStore::Load(Tokens({{"a", WriteFile("ok", "x")}, {"b", empty}}), &clock);
  ASSERT_FALSE(blank.ok());
  EXPECT_TRUE(absl::StrContains(blank.status().message(),
                                "security.tokens[1].file: token file \"" + empty + "\" is empty"))
      << blank.status();
}

TEST(TokenStore, IdentifiesTokensAndRereadsARotatedFileOnTheClock) {
  FakeClock clock;
  const std::string orders = WriteFile("orders-token", "  orders-secret-1\n");
  const std::string billing = WriteFile("billing-token", "billing-secret");
  auto store = TokenStore::Load(Tokens({{"orders", orders}, {"billing", billing}}), &clock,
                                absl::Seconds(1));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->Identify("orders-secret-1"), "orders");
  EXPECT_EQ((*store)->Identify("billing-secret"), "billing");
  EXPECT_EQ((*store)->Identify("orders-secret"), std::nullopt);
  EXPECT_EQ((*store)->Identify(""), std::nullopt);

  // Rotation: the new token is not seen before the recheck time, then replaces the old one.
  std::ofstream(orders, std::ios::trunc) << "orders-secret-22\n";
  EXPECT_EQ((*store)->Identify("orders-secret-22"), std::nullopt);
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ((*store)->Identify("orders-secret-22"), "orders");
  EXPECT_EQ((*store)->Identify("orders-secret-1"), std::nullopt);

  // A file removed mid-rotation keeps the last token rather than locking the app out.
  ASSERT_EQ(unlink(orders.c_str()), 0);
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ((*store)->Identify("orders-secret-22"), "orders");
  std::ofstream(orders, std::ios::trunc) << "orders-secret-333";
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ((*store)->Identify("orders-secret-333"), "orders");
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tokens =
        TokenStore::Load(Tokens({{"orders", WriteFile("auth-orders", "t-orders")}}), &clock_);
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    authenticator_ = std::make_unique<Authenticator>(*std::move(tokens), "mesh.test");
  }
  FakeClock clock_;
  std::unique_ptr<Authenticator> authenticator_;
};

TEST_F(AuthenticatorTest, BearerTokenNamesTheIdentity) {
  PresentedCredentials presented;
  presented.authorization = "Bearer t-orders";
  EXPECT_EQ(authenticator_->Authenticate(presented).value_or("?"), "orders");
  presented.authorization = "bearer  t-orders ";
  EXPECT_EQ(authenticator_->Authenticate(presented).value_or("?"), "orders");
}

TEST_F(AuthenticatorTest, NoOrBadCredentialsAreUnauthenticated) {
  absl::StatusOr<std::string> none = authenticator_->Authenticate(PresentedCredentials{});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(absl::StrContains(none.status().message(), "no credentials")) << none.status();
  EXPECT_TRUE(absl::StrContains(none.status().message(), "spiffe://mesh.test/app/<name>"));

  PresentedCredentials wrong;
  wrong.authorization = "Bearer t-order";
  EXPECT_EQ(authenticator_->Authenticate(wrong).status().code(),
            absl::StatusCode::kUnauthenticated);
  wrong.authorization = "Basic dDpvcmRlcnM=";
  absl::StatusOr<std::string> basic = authenticator_->Authenticate(wrong);
  EXPECT_EQ(basic.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(absl::StrContains(basic.status().message(), "Bearer <token>")) << basic.status();
}

TEST_F(AuthenticatorTest, CertificateUriSanNamesTheIdentity) {
  PresentedCredentials cert;
  cert.has_certificate = true;
  cert.certificate_uris = {"https://example.com", "spiffe://mesh.test/app/billing"};
  EXPECT_EQ(authenticator_->Authenticate(cert).value_or("?"), "billing");

  PresentedCredentials other_domain;
  other_domain.has_certificate = true;
  other_domain.certificate_uris = {"spiffe://evil.test/app/billing"};
  absl::StatusOr<std::string> refused = authenticator_->Authenticate(other_domain);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "names no identity"))
      << refused.status();

  PresentedCredentials two;
  two.has_certificate = true;
  two.certificate_uris = {"spiffe://mesh.test/app/a", "spiffe://mesh.test/app/b"};
  EXPECT_EQ(authenticator_->Authenticate(two).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(AuthenticatorTest, TokenAndCertificateMustAgree) {
  PresentedCredentials both;
  both.authorization = "Bearer t-orders";
  both.has_certificate = true;
  both.certificate_uris = {"spiffe://mesh.test/app/billing"};
  absl::StatusOr<std::string> conflict = authenticator_->Authenticate(both);
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(conflict.status().message(), "\"orders\"")) << conflict.status();
  EXPECT_TRUE(absl::StrContains(conflict.status().message(), "\"billing\"")) << conflict.status();
  both.certificate_uris = {"spiffe://mesh.test/app/orders"};
  EXPECT_EQ(authenticator_->Authenticate(both).value_or("?"), "orders");
  // A certificate without an identity is fine next to a token (TLS for transport only).
  both.certificate_uris = {};
  EXPECT_EQ(authenticator_->Authenticate(both).value_or("?"), "orders");
}

}  // namespace
}  // namespace callmesh::sidecar::security
