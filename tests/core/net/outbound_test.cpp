// Outbound HTTP against a peer that accepts and never answers: every exchange ends by its deadline
// (or at once when cancelled), and the pool bounds how much of the server such peers can hold.

#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "eventually.h"
#include "net/http_client.h"
#include "net/outbound_pool.h"
#include "tarpit.h"

namespace easel::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

OutboundRequest stalledGet(const testing::Tarpit& tarpit, std::chrono::milliseconds timeout) {
    OutboundRequest r;
    r.url = tarpit.url("/image.png");
    r.timeout = timeout;
    return r;
}

TEST(OutboundFetch, ASilentPeerFailsTheFetchAtItsDeadline) {
    testing::Tarpit tarpit;
    const auto t0 = Clock::now();
    try {
        httpFetch(stalledGet(tarpit, 600ms), UrlPolicy{true});
        FAIL() << "a peer that never answers gave a response";
    } catch (const OutboundError& e) {
        EXPECT_EQ(e.kind(), OutboundError::Kind::TimedOut) << e.what();
        EXPECT_NE(std::string(e.what()).find("did not answer in time"), std::string::npos) << e.what();
    }
    const double took = secondsSince(t0);
    EXPECT_GE(took, 0.55);
    EXPECT_LT(took, 2.0);
}

TEST(OutboundFetch, ADownloadThatGoesSilentFailsAfterItsIdleTimeout) {
    testing::Tarpit tarpit;
    auto r = stalledGet(tarpit, 60s);
    r.idleTimeout = 400ms;
    const auto t0 = Clock::now();
    EXPECT_THROW(httpFetch(r, UrlPolicy{true}), OutboundError);
    EXPECT_LT(secondsSince(t0), 2.0);  // not the 60 s of the whole exchange
}

TEST(OutboundFetch, ACancelStopsTheExchangeAtOnce) {
    testing::Tarpit tarpit;
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    auto r = stalledGet(tarpit, 60s);
    r.cancelled = cancel;
    auto fetch = std::async(std::launch::async, [&] { return httpFetch(r, UrlPolicy{true}); });
    ASSERT_EQ(fetch.wait_for(300ms), std::future_status::timeout);
    const auto t0 = Clock::now();
    cancel->store(true);
    ASSERT_EQ(fetch.wait_for(2s), std::future_status::ready);
    EXPECT_LT(secondsSince(t0), 1.0);
    try {
        fetch.get();
        FAIL() << "a cancelled fetch returned";
    } catch (const OutboundError& e) {
        EXPECT_EQ(e.kind(), OutboundError::Kind::Cancelled) << e.what();
    }
}

TEST(OutboundFetch, PrivateAddressesAreRefusedUnlessAllowed) {
    testing::Tarpit tarpit;
    const auto t0 = Clock::now();
    try {
        httpFetch(stalledGet(tarpit, 5s), UrlPolicy{false});
        FAIL() << "a loopback address was fetched";
    } catch (const OutboundError& e) {
        EXPECT_NE(std::string(e.what()).find("private or loopback"), std::string::npos) << e.what();
    }
    EXPECT_LT(secondsSince(t0), 1.0);
    EXPECT_EQ(tarpit.accepted(), 0);  // refused before connecting
}

TEST(OutboundPool, AFullPoolRefusesAtOnceAndStopEndsEverythingWithinASecond) {
    testing::Tarpit tarpit;
    OutboundPool pool({/*threads=*/2, /*maxQueued=*/1});
    std::vector<std::future<OutboundResponse>> held;
    // Two on the wire, then one waiting (one at a time: a thread must have taken the previous one).
    for (const auto& [running, queued] : {std::pair{1, 0u}, {2, 0u}, {2, 1u}}) {
        held.push_back(
            std::async(std::launch::async, [&] { return pool.fetch(stalledGet(tarpit, 60s), UrlPolicy{true}); }));
        ASSERT_TRUE(testing::eventually([&] { return pool.running() == running && pool.queued() == queued; }))
            << pool.running() << " running, " << pool.queued() << " queued";
    }
    const auto t0 = Clock::now();
    try {
        pool.fetch(stalledGet(tarpit, 60s), UrlPolicy{true});
        FAIL() << "a full pool took more work";
    } catch (const OutboundError& e) {
        EXPECT_EQ(e.kind(), OutboundError::Kind::Busy) << e.what();
    }
    EXPECT_LT(secondsSince(t0), 0.5);

    const auto stopAt = Clock::now();
    pool.stop();
    EXPECT_LT(secondsSince(stopAt), 1.5);
    for (auto& f : held) {
        ASSERT_EQ(f.wait_for(1s), std::future_status::ready);
        try {
            f.get();
            FAIL() << "a fetch of a silent peer returned";
        } catch (const OutboundError& e) {
            EXPECT_EQ(e.kind(), OutboundError::Kind::Cancelled) << e.what();
        }
    }
    EXPECT_FALSE(pool.post(stalledGet(tarpit, 1s), UrlPolicy{true}, [](auto, auto) {}));
}

TEST(OutboundPool, TimeSpentQueuedCountsAgainstTheDeadline) {
    testing::Tarpit tarpit;
    OutboundPool pool({/*threads=*/1, /*maxQueued=*/1});
    auto first = std::async(std::launch::async, [&] { return pool.fetch(stalledGet(tarpit, 800ms), UrlPolicy{true}); });
    ASSERT_TRUE(testing::eventually([&] { return pool.running() == 1; }));
    const auto t0 = Clock::now();
    try {
        pool.fetch(stalledGet(tarpit, 500ms), UrlPolicy{true});
        FAIL() << "a fetch of a silent peer returned";
    } catch (const OutboundError& e) {
        EXPECT_EQ(e.kind(), OutboundError::Kind::Busy) << e.what();  // its time ran out waiting for a thread
    }
    EXPECT_LT(secondsSince(t0), 1.2);  // its own 0.5 s were spent waiting; it is not fetched for another 0.5 s
    EXPECT_THROW(first.get(), OutboundError);
}

}  // namespace
}  // namespace easel::net
