// Fixed one-minute windows per key, on a fake clock: the allowance, its refill, per-key isolation,
// and exactness under concurrent callers.

#include "quota/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "fake_clock.h"
#include "test_database.h"

namespace easel::quota {
namespace {

// Every test runs on both kinds of state: in memory (one server) and in a shared database (several).
class RateLimiterTest : public ::testing::TestWithParam<bool> {
protected:
    const storage::Database* shared() { return GetParam() ? &database.emplace().db() : nullptr; }

    std::optional<testing::TestDatabase> database;
    FakeClock clock{60 * 28'000'000};  // the start of a window
    RateLimiter limiter{clock, 60, shared()};
};

TEST_P(RateLimiterTest, AllowsUpToTheLimitInAWindowThenRefuses) {
    for (int remaining : {2, 1, 0}) {
        const auto d = limiter.take("ada", 3);
        EXPECT_TRUE(d.allowed);
        EXPECT_EQ(d.limit, 3);
        EXPECT_EQ(d.remaining, remaining);
    }
    const auto refused = limiter.take("ada", 3);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.remaining, 0);
    EXPECT_EQ(refused.resetSeconds, 60);
}

TEST_P(RateLimiterTest, TheNextWindowRefillsTheAllowance) {
    for (int i = 0; i < 3; ++i) limiter.take("ada", 3);
    clock.advance(59);
    EXPECT_FALSE(limiter.take("ada", 3).allowed);
    clock.advance(1);
    const auto d = limiter.take("ada", 3);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, 2);
}

TEST_P(RateLimiterTest, WindowsAreFixedMinutesNotSlidingOnes) {
    clock.advance(50);
    for (int i = 0; i < 3; ++i) limiter.take("ada", 3);
    const auto refused = limiter.take("ada", 3);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.resetSeconds, 10);  // until the minute ends, not a minute from the first request
    clock.advance(10);
    EXPECT_TRUE(limiter.take("ada", 3).allowed);
}

TEST_P(RateLimiterTest, EachKeyHasItsOwnAllowance) {
    for (int i = 0; i < 3; ++i) limiter.take("ip:198.51.100.1", 3);
    EXPECT_FALSE(limiter.take("ip:198.51.100.1", 3).allowed);
    EXPECT_TRUE(limiter.take("ip:198.51.100.2", 3).allowed);
    EXPECT_TRUE(limiter.take("ada", 3).allowed);
}

TEST_P(RateLimiterTest, PeekTellsWithoutCounting) {
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.peek("ada", 1).allowed);
    EXPECT_TRUE(limiter.take("ada", 1).allowed);
    const auto d = limiter.peek("ada", 1);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.remaining, 0);
}

TEST_P(RateLimiterTest, AZeroLimitRefusesEverything) { EXPECT_FALSE(limiter.take("ada", 0).allowed); }

TEST_P(RateLimiterTest, AWindowCanBeShorterThanAMinute) {
    RateLimiter tenSeconds(clock, 10, GetParam() ? &database->db() : nullptr);
    EXPECT_TRUE(tenSeconds.take("ada", 1).allowed);
    EXPECT_FALSE(tenSeconds.take("ada", 1).allowed);
    EXPECT_EQ(tenSeconds.peek("ada", 1).resetSeconds, 10);
    clock.advance(10);
    EXPECT_TRUE(tenSeconds.take("ada", 1).allowed);
}

TEST_P(RateLimiterTest, ConcurrentCallersGetExactlyTheLimit) {
    std::atomic<int> allowed = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 100; ++i) allowed += limiter.take("shared", 250).allowed ? 1 : 0;
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(allowed.load(), 250);
}

// Two servers on one database, each with its own limiter (and connection): one allowance between them,
// exact under concurrency.
TEST(SharedRateLimiter, TwoServersShareOneAllowanceExactly) {
    testing::TestDatabase database;
    storage::Database other(database.path());
    FakeClock clock{60 * 28'000'000};
    RateLimiter first(clock, 60, &database.db());
    RateLimiter second(clock, 60, &other);
    EXPECT_EQ(first.take("gen:7", 3).remaining, 2);
    EXPECT_EQ(second.take("gen:7", 3).remaining, 1);
    EXPECT_EQ(first.peek("gen:7", 3).remaining, 1);
    EXPECT_TRUE(second.take("gen:7", 3).allowed);
    EXPECT_FALSE(first.take("gen:7", 3).allowed);
    EXPECT_FALSE(second.take("gen:7", 3).allowed);
    clock.advance(60);
    EXPECT_TRUE(second.take("gen:7", 3).allowed);

    std::atomic<int> allowed = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            auto& limiter = t % 2 == 0 ? first : second;
            for (int i = 0; i < 25; ++i) allowed += limiter.take("gen:8", 60).allowed ? 1 : 0;
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(allowed.load(), 60);
}

INSTANTIATE_TEST_SUITE_P(InMemoryAndShared, RateLimiterTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                             return info.param ? "SharedDatabase" : "InMemory";
                         });

}  // namespace
}  // namespace easel::quota
