// The account secrets: argon2id password hashes, the keyed look-up hash, sealing the viewable API
// key, the server key file, and the constant-time comparison.

#include "accounts/crypto.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <set>
#include <stdexcept>

#include "temp_dir.h"

namespace easel::accounts {
namespace {

KeyVault vault(unsigned char fill) { return KeyVault(Bytes(32, fill)); }

TEST(PasswordHasher, AHashVerifiesItsPasswordAndNoOther) {
    PasswordHasher hasher(PasswordCost::fastForTests());
    const auto hash = hasher.hash("correct horse");
    EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u);
    EXPECT_TRUE(hasher.verify(hash, "correct horse"));
    EXPECT_FALSE(hasher.verify(hash, "correct horse "));
    EXPECT_FALSE(hasher.verify(hash, ""));
    EXPECT_FALSE(hasher.verify("not a hash", "correct horse"));
}

TEST(PasswordHasher, TheSamePasswordHashesDifferentlyEachTime) {
    PasswordHasher hasher(PasswordCost::fastForTests());
    const auto a = hasher.hash("correct horse");
    const auto b = hasher.hash("correct horse");
    EXPECT_NE(a, b);  // a fresh salt each time
    EXPECT_TRUE(hasher.verify(b, "correct horse"));
}

TEST(EqualSecrets, ComparesTheWholeContentsAndTheLength) {
    EXPECT_TRUE(equalSecrets({1, 2, 3}, {1, 2, 3}));
    EXPECT_TRUE(equalSecrets({}, {}));
    EXPECT_FALSE(equalSecrets({1, 2, 3}, {1, 2, 4}));
    EXPECT_FALSE(equalSecrets({9, 2, 3}, {1, 2, 3}));
    EXPECT_FALSE(equalSecrets({1, 2, 3}, {1, 2}));
    EXPECT_FALSE(equalSecrets({}, {0}));
}

TEST(KeyVault, TheLookupHashIsStableAndDependsOnTheServerKey) {
    const auto a = vault(1).lookupHash("secret");
    EXPECT_EQ(a.size(), 32u);
    EXPECT_EQ(vault(1).lookupHash("secret"), a);
    EXPECT_NE(vault(1).lookupHash("secret2"), a);
    EXPECT_NE(vault(2).lookupHash("secret"), a);
}

TEST(KeyVault, ASealedSecretOpensOnlyWithTheSameServerKey) {
    const auto sealed = vault(1).seal("the api key");
    EXPECT_EQ(vault(1).open(sealed), "the api key");
    EXPECT_NE(vault(1).seal("the api key"), sealed);  // a fresh nonce each time
    EXPECT_THROW(vault(2).open(sealed), std::runtime_error);
    auto tampered = sealed;
    tampered.back() ^= 1;
    EXPECT_THROW(vault(1).open(tampered), std::runtime_error);
    EXPECT_THROW(vault(1).open(Bytes(10, 0)), std::runtime_error);
}

TEST(KeyVault, WebhookSecretsAreHexPerAccountAndStable) {
    const auto secret = vault(1).webhookSecret(7);
    EXPECT_EQ(secret.size(), 64u);
    EXPECT_EQ(secret.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_EQ(vault(1).webhookSecret(7), secret);
    EXPECT_NE(vault(1).webhookSecret(8), secret);
    EXPECT_NE(vault(2).webhookSecret(7), secret);
}

TEST(KeyVault, AServerKeyOfTheWrongSizeIsRefused) { EXPECT_THROW(KeyVault(Bytes(16, 1)), std::invalid_argument); }

TEST(KeyVault, TheKeyFileIsCreatedOnceOwnerOnlyAndReused) {
    testing::TempDir dir;
    const auto file = dir / "keys" / "server.key";
    const auto first = KeyVault::openOrCreate(file);
    ASSERT_TRUE(std::filesystem::exists(file));
    EXPECT_EQ(std::filesystem::file_size(file), 32u);
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    const auto again = KeyVault::openOrCreate(file);
    EXPECT_EQ(again.lookupHash("x"), first.lookupHash("x"));
    EXPECT_EQ(again.open(first.seal("kept")), "kept");
}

TEST(KeyVault, ADamagedKeyFileIsAnErrorNotANewKey) {
    testing::TempDir dir;
    const auto file = dir.write("server.key", "short");
    EXPECT_THROW(KeyVault::openOrCreate(file), std::runtime_error);
    EXPECT_EQ(std::filesystem::file_size(file), 5u);
}

TEST(RandomToken, TokensAreUrlSafeAndDistinct) {
    std::set<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        const auto t = randomToken();
        EXPECT_EQ(t.size(), 43u);
        EXPECT_EQ(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                  std::string::npos)
            << t;
        seen.insert(t);
    }
    EXPECT_EQ(seen.size(), 100u);
}

}  // namespace
}  // namespace easel::accounts
