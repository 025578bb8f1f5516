// Who someone is: sign-up, log-in, sessions, API keys, password changes and account deletion, over
// a migrated database and a fake clock.

#include "accounts/account_service.h"

#include <gtest/gtest.h>

#include "fake_clock.h"
#include "service_error_of.h"
#include "test_accounts.h"
#include "test_database.h"

namespace easel::accounts {
namespace {

using testing::errorOf;

constexpr const char* kPassword = "correct horse";

class AccountServiceTest : public ::testing::Test {
protected:
    testing::TestDatabase database;
    FakeClock clock;
    storage::FileBlobStore blobs{database.dir() / "files"};
    testing::TestAccounts accounts{database.db(), blobs, clock};
    AccountService& service = accounts.service();
};

TEST_F(AccountServiceTest, SignupCreatesAFreeAccountWhoseKeyAuthenticates) {
    const auto account = service.signup("  Ada@Example.COM ", kPassword, "198.51.100.1");
    EXPECT_EQ(account.email, "ada@example.com");  // trimmed and lower-cased
    EXPECT_EQ(account.plan, "free");
    EXPECT_EQ(account.apiKey.size(), 43u);
    const auto caller = service.authenticateKey(account.apiKey);
    EXPECT_EQ(caller.userId, account.userId);
    EXPECT_EQ(caller.email, "ada@example.com");
    ASSERT_NE(caller.plan, nullptr);
    EXPECT_EQ(caller.plan->name, "free");
    EXPECT_FALSE(caller.isAdmin);
    const auto view = service.account(account.userId);
    EXPECT_EQ(view.imagesUsed, 0);
    EXPECT_EQ(view.createdAt, clock.nowSeconds());
}

TEST_F(AccountServiceTest, TheDatabaseKeepsNoUsableSecret) {
    const auto account = service.signup("ada@example.com", kPassword, "ip");
    const auto row = storage::UserRepository(database.db()).findById(account.userId);
    ASSERT_TRUE(row);
    EXPECT_NE(row->passwordHash.find("$argon2id$"), std::string::npos);
    EXPECT_EQ(row->passwordHash.find(kPassword), std::string::npos);
    const std::string sealed(row->apiKeySealed.begin(), row->apiKeySealed.end());
    EXPECT_EQ(sealed.find(account.apiKey), std::string::npos);
    EXPECT_EQ(row->apiKeyHash, accounts.vault().lookupHash(account.apiKey));
}

TEST_F(AccountServiceTest, ATakenEmailIsAConflictWhateverItsCase) {
    service.signup("ada@example.com", kPassword, "ip");
    EXPECT_EQ(errorOf([&] { service.signup("ADA@example.com", kPassword, "ip"); }).code(), ErrorCode::Conflict);
    EXPECT_EQ(service.listUsers().size(), 1u);
}

TEST_F(AccountServiceTest, ABadEmailOrShortPasswordNamesTheFields) {
    const auto e = errorOf([&] { service.signup("not-an-address", "short", "ip"); });
    EXPECT_EQ(e.code(), ErrorCode::BadRequest);
    EXPECT_TRUE(e.fieldErrors.contains("email"));
    EXPECT_TRUE(e.fieldErrors.contains("password"));
    EXPECT_TRUE(service.listUsers().empty());
}

TEST_F(AccountServiceTest, ClosedSignupIsForbiddenButAdminsCanStillCreateUsers) {
    AccountOptions options;
    options.openSignup = false;
    testing::TestAccounts closed(database.db(), blobs, clock, options);
    EXPECT_EQ(errorOf([&] { closed->signup("ada@example.com", kPassword, "ip"); }).code(), ErrorCode::Forbidden);
    const auto made = closed->createUser("ada@example.com", kPassword, "standard", true);
    const auto caller = closed->authenticateKey(made.apiKey);
    EXPECT_EQ(caller.plan->name, "standard");
    EXPECT_TRUE(caller.isAdmin);
    EXPECT_EQ(errorOf([&] { closed->createUser("bob@example.com", kPassword, "gold"); }).code(), ErrorCode::BadRequest);
}

TEST_F(AccountServiceTest, LoginGivesASessionUntilLogout) {
    const auto account = service.signup("ada@example.com", kPassword, "ip");
    const auto token = service.login("ADA@example.com", kPassword, "ip");
    EXPECT_EQ(service.authenticateToken(token).userId, account.userId);
    service.logout(token);
    EXPECT_EQ(errorOf([&] { service.authenticateToken(token); }).code(), ErrorCode::Unauthorized);
}

TEST_F(AccountServiceTest, ASessionExpiresAfterItsLifetime) {
    service.signup("ada@example.com", kPassword, "ip");
    const auto token = service.login("ada@example.com", kPassword, "ip");
    clock.advance(AccountOptions{}.sessionSeconds - 1);
    EXPECT_NO_THROW(service.authenticateToken(token));
    clock.advance(1);
    EXPECT_EQ(errorOf([&] { service.authenticateToken(token); }).code(), ErrorCode::Unauthorized);
}

TEST_F(AccountServiceTest, AWrongPasswordAndAnUnknownEmailFailAlike) {
    service.signup("ada@example.com", kPassword, "ip");
    const auto wrong = errorOf([&] { service.login("ada@example.com", "wrong password", "ip"); });
    const auto unknown = errorOf([&] { service.login("bob@example.com", kPassword, "ip"); });
    EXPECT_EQ(wrong.code(), ErrorCode::Unauthorized);
    EXPECT_EQ(unknown.code(), ErrorCode::Unauthorized);
    EXPECT_STREQ(wrong.what(), unknown.what());
}

TEST_F(AccountServiceTest, FailedLoginsAreThrottledUntilTheNextMinute) {
    service.signup("ada@example.com", kPassword, "ip");
    for (int i = 0; i < AccountOptions{}.loginAttemptsPerMinute; ++i) {
        EXPECT_EQ(errorOf([&] { service.login("ada@example.com", "guess", "203.0.113.9"); }).code(),
                  ErrorCode::Unauthorized);
    }
    // Even the right password waits now, so guessing cannot go faster by mixing it in.
    const auto throttled = errorOf([&] { service.login("ada@example.com", kPassword, "203.0.113.9"); });
    EXPECT_EQ(throttled.code(), ErrorCode::TooManyRequests);
    ASSERT_TRUE(throttled.retryAfterSeconds);
    EXPECT_GE(*throttled.retryAfterSeconds, 1);
    EXPECT_NO_THROW(service.login("ada@example.com", kPassword, "198.51.100.1"));  // the owner elsewhere
    clock.advance(60);
    EXPECT_NO_THROW(service.login("ada@example.com", kPassword, "203.0.113.9"));
}

TEST_F(AccountServiceTest, AnEmptyUnknownOrOversizedKeyIsUnauthorized) {
    service.signup("ada@example.com", kPassword, "ip");
    for (const auto& key : {std::string(), std::string("not-a-key"), std::string(300, 'k')}) {
        EXPECT_EQ(errorOf([&] { service.authenticateKey(key); }).code(), ErrorCode::Unauthorized);
    }
}

TEST_F(AccountServiceTest, RegeneratingTheKeyNeedsThePasswordAndRejectsTheOldOneAtOnce) {
    const auto account = service.signup("ada@example.com", kPassword, "ip");
    EXPECT_EQ(errorOf([&] { service.regenerateKey(account.userId, "wrong password"); }).code(),
              ErrorCode::Unauthorized);
    EXPECT_EQ(service.authenticateKey(account.apiKey).userId, account.userId);  // a refused attempt changes nothing
    const auto fresh = service.regenerateKey(account.userId, kPassword);
    EXPECT_NE(fresh, account.apiKey);
    EXPECT_EQ(errorOf([&] { service.authenticateKey(account.apiKey); }).code(), ErrorCode::Unauthorized);
    EXPECT_EQ(service.authenticateKey(fresh).userId, account.userId);
    EXPECT_EQ(service.viewKey(account.userId, kPassword), fresh);
}

TEST_F(AccountServiceTest, ViewingTheKeyNeedsThePassword) {
    const auto account = service.signup("ada@example.com", kPassword, "ip");
    EXPECT_EQ(service.viewKey(account.userId, kPassword), account.apiKey);
    EXPECT_EQ(errorOf([&] { service.viewKey(account.userId, "wrong password"); }).code(), ErrorCode::Unauthorized);
}

TEST_F(AccountServiceTest, ChangingThePasswordNeedsTheOldOneAndEndsTheOtherSessions) {
    const auto account = service.signup("ada@example.com", kPassword, "ip");
    const auto here = service.login("ada@example.com", kPassword, "ip");
    const auto elsewhere = service.login("ada@example.com", kPassword, "ip");
    EXPECT_EQ(errorOf([&] { service.changePassword(account.userId, here, "wrong password", "new password 1"); }).code(),
              ErrorCode::Unauthorized);
    EXPECT_EQ(errorOf([&] { service.changePassword(account.userId, here, kPassword, "short"); }).code(),
              ErrorCode::BadRequest);
    service.changePassword(account.userId, here, kPassword, "new password 1");
    EXPECT_NO_THROW(service.authenticateToken(here));
    EXPECT_EQ(errorOf([&] { service.authenticateToken(elsewhere); }).code(), ErrorCode::Unauthorized);
    EXPECT_EQ(errorOf([&] { service.login("ada@example.com", kPassword, "ip"); }).code(), ErrorCode::Unauthorized);
    EXPECT_NO_THROW(service.login("ada@example.com", "new password 1", "ip"));
    EXPECT_NO_THROW(service.authenticateKey(account.apiKey));  // the key is not a session
}

TEST_F(AccountServiceTest, DeletingTheAccountPurgesItsRowsFilesAndKey) {
    const auto account = service.signup("ada@example.com", kPassword, "ip");
    const auto other = service.signup("bob@example.com", kPassword, "ip");
    blobs.put(account.userId, "a.png", {1, 2});
    blobs.put(other.userId, "b.png", {3});
    std::vector<std::int64_t> hooked;
    service.addPurgeHook([&](std::int64_t id) { hooked.push_back(id); });
    EXPECT_EQ(errorOf([&] { service.deleteAccount(account.userId, "wrong password"); }).code(),
              ErrorCode::Unauthorized);
    EXPECT_TRUE(hooked.empty());
    service.deleteAccount(account.userId, kPassword);
    EXPECT_EQ(hooked, std::vector<std::int64_t>{account.userId});
    EXPECT_FALSE(storage::UserRepository(database.db()).findById(account.userId));
    EXPECT_EQ(blobs.count(account.userId), 0u);
    EXPECT_EQ(blobs.count(other.userId), 1u);
    EXPECT_EQ(errorOf([&] { service.authenticateKey(account.apiKey); }).code(), ErrorCode::Unauthorized);
    EXPECT_EQ(errorOf([&] { service.account(account.userId); }).code(), ErrorCode::Unauthorized);
}

TEST_F(AccountServiceTest, TheSweepFinishesInterruptedPurgesAndDeletesIdleFreeAccounts) {
    const auto idle = service.signup("idle@example.com", kPassword, "ip");
    const auto paying = service.createUser("paying@example.com", kPassword, "basic");
    const auto halfDeleted = service.signup("half@example.com", kPassword, "ip");
    storage::UserRepository(database.db()).markDeleting(halfDeleted.userId);  // a crash mid-purge
    EXPECT_EQ(service.sweep(), 1);
    clock.advance(366 * 24 * 3600);
    const auto active = service.signup("active@example.com", kPassword, "ip");
    EXPECT_EQ(service.sweep(), 1);
    std::vector<std::string> left;
    for (const auto& u : service.listUsers()) left.push_back(u.email);
    EXPECT_EQ(left, (std::vector<std::string>{"paying@example.com", "active@example.com"}));
    (void)idle;
    (void)paying;
    (void)active;
}

TEST_F(AccountServiceTest, APlanChangeAppliesToTheNextRequest) {
    const auto account = service.signup("ada@example.com", kPassword, "ip");
    service.setPlan("ADA@example.com", "premium");
    const auto caller = service.authenticateKey(account.apiKey);
    EXPECT_EQ(caller.plan->name, "premium");
    EXPECT_FALSE(caller.plan->imageQuota);
    EXPECT_EQ(errorOf([&] { service.setPlan("ada@example.com", "gold"); }).code(), ErrorCode::BadRequest);
    EXPECT_EQ(errorOf([&] { service.setPlan("bob@example.com", "basic"); }).code(), ErrorCode::NotFound);
}

TEST_F(AccountServiceTest, UsageIsListedNewestFirstWithClampedPaging) {
    const auto account = service.signup("ada@example.com", kPassword, "ip");
    const storage::UsageRepository usage{database.db()};
    usage.add(account.userId, 1, "text2img", 2, 100);
    usage.add(account.userId, 2, "img2img", 1, 200);
    const auto rows = service.usage(account.userId, 0, -5);  // limit at least 1, offset at least 0
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].requestId, 2);
    EXPECT_EQ(service.usageCount(account.userId), 2);
}

}  // namespace
}  // namespace easel::accounts
