// Authentication plus the per-account request rate: generation requests count against the plan's
// rate, reads against a wider bucket of their own, and the next minute refills both.

#include "service/access_control.h"

#include <gtest/gtest.h>

#include "fake_clock.h"
#include "service_error_of.h"
#include "test_accounts.h"
#include "test_database.h"

namespace easel::service {
namespace {

using testing::errorOf;

class AccessControlTest : public ::testing::Test {
protected:
    testing::TestDatabase database;
    FakeClock clock{60 * 28'000'000};  // the start of a rate-limit minute
    storage::FileBlobStore blobs{database.dir() / "files"};
    testing::TestAccounts accounts{database.db(), blobs, clock};
    AccessControl access{accounts.service(), clock};
    accounts::NewAccount ada = accounts->signup("ada@example.com", "correct horse", "ip");
};

TEST_F(AccessControlTest, AValidKeyGivesTheCallerAndCountsAsARead) {
    quota::RateDecision rate;
    const auto a = access.byKey(ada.apiKey, &rate);
    EXPECT_EQ(a.caller.userId, ada.userId);
    EXPECT_EQ(a.caller.plan->name, "free");
    EXPECT_EQ(rate.limit, readLimitFor(*a.caller.plan));
    EXPECT_EQ(rate.remaining, rate.limit - 1);
    EXPECT_EQ(a.rate.remaining, rate.remaining);
}

TEST_F(AccessControlTest, AMissingOrWrongKeyIsUnauthorized) {
    EXPECT_EQ(errorOf([&] { access.byKey(""); }).code(), ErrorCode::Unauthorized);
    EXPECT_EQ(errorOf([&] { access.byKey("wrong", nullptr, RateClass::Generation); }).code(), ErrorCode::Unauthorized);
}

TEST_F(AccessControlTest, GenerationRequestsStopAtThePlansRateUntilTheNextMinute) {
    const int perMinute = accounts::findPlan("free")->requestsPerMinute;
    for (int i = 0; i < perMinute; ++i) access.byKey(ada.apiKey, nullptr, RateClass::Generation);
    quota::RateDecision rate;
    const auto e = errorOf([&] { access.byKey(ada.apiKey, &rate, RateClass::Generation); });
    EXPECT_EQ(e.code(), ErrorCode::TooManyRequests);
    EXPECT_EQ(e.retryAfterSeconds, 60);
    EXPECT_FALSE(rate.allowed);  // filled in for the X-RateLimit-* headers even when refused
    EXPECT_EQ(rate.remaining, 0);
    EXPECT_NO_THROW(access.byKey(ada.apiKey));  // reads have their own bucket
    clock.advance(60);
    EXPECT_NO_THROW(access.byKey(ada.apiKey, nullptr, RateClass::Generation));
}

TEST_F(AccessControlTest, EachAccountHasItsOwnRate) {
    const auto bob = accounts->signup("bob@example.com", "correct horse", "ip");
    for (int i = 0; i < accounts::findPlan("free")->requestsPerMinute; ++i) {
        access.byKey(ada.apiKey, nullptr, RateClass::Generation);
    }
    EXPECT_NO_THROW(access.byKey(bob.apiKey, nullptr, RateClass::Generation));
}

TEST_F(AccessControlTest, AHigherPlanGetsItsHigherRateFromTheNextRequest) {
    for (int i = 0; i < accounts::findPlan("free")->requestsPerMinute; ++i) {
        access.byKey(ada.apiKey, nullptr, RateClass::Generation);
    }
    accounts->setPlan("ada@example.com", "basic");
    quota::RateDecision rate;
    EXPECT_NO_THROW(access.byKey(ada.apiKey, &rate, RateClass::Generation));
    EXPECT_EQ(rate.limit, accounts::findPlan("basic")->requestsPerMinute);
}

TEST_F(AccessControlTest, ASessionTokenAuthenticatesLikeTheKey) {
    const auto token = accounts->login("ada@example.com", "correct horse", "ip");
    EXPECT_EQ(access.byToken(token).caller.userId, ada.userId);
    EXPECT_EQ(errorOf([&] { access.byToken("stale"); }).code(), ErrorCode::Unauthorized);
}

TEST_F(AccessControlTest, AdminEndpointsNeedAnAdministratorsKey) {
    EXPECT_EQ(errorOf([&] { access.admin(ada.apiKey); }).code(), ErrorCode::Forbidden);
    const auto root = accounts->createUser("root@example.com", "correct horse", "premium", true);
    const auto a = access.admin(root.apiKey);
    EXPECT_TRUE(a.caller.isAdmin);
    EXPECT_EQ(errorOf([&] { access.admin("wrong"); }).code(), ErrorCode::Unauthorized);
}

TEST(ReadLimit, IsTenTimesThePlansRateAndAtLeast300) {
    EXPECT_EQ(readLimitFor(*accounts::findPlan("free")), 300);
    EXPECT_EQ(readLimitFor(*accounts::findPlan("premium")), 10 * accounts::findPlan("premium")->requestsPerMinute);
}

}  // namespace
}  // namespace easel::service
