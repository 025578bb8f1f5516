// The server against hostile peers (issue: "no peer can stall the server"): 24 requests whose
// init_image links to a host that accepts and never answers, and a webhook receiver that does the
// same. /health and ordinary requests keep being served, and every stalled request ends with a
// clear error by its deadline.

#include <chrono>
#include <future>

#include "backend_fixture.h"
#include "eventually.h"
#include "tarpit.h"
#include "test_database.h"

namespace easel::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

class OutboundStall : public BackendTest {
protected:
    void SetUp() override {
        config.allowPrivateImageUrls = true;  // the hostile peer is on loopback
        config.imageFetchTimeout = 3s;
        config.webhooks.policy.allowPrivateAddresses = true;
        config.webhooks.timeout = 3s;
        config.webhooks.retryDelays.clear();
        httpOptions.workerThreads = 16;  // as easel-server runs
        BackendTest::SetUp();
        const auto account = backend->accounts().createUser("heavy@example.com", "correct horse", "premium", false);
        key = account.apiKey;
        userId = account.userId;
    }
    std::int64_t imagesUsed() { return testing::imagesUsed(backend->db(), userId); }
    std::string key;
    std::int64_t userId = 0;
};

TEST_F(OutboundStall, StalledImageLinksAndWebhooksLeaveTheServerAnswering) {
    Tarpit tarpit;
    // A finished job whose webhook receiver never answers.
    ASSERT_EQ(text2img(key, {{"webhook", tarpit.url("/hook")}}).status, 200);

    std::vector<std::future<HttpResult>> stalled;
    for (int i = 0; i < 24; ++i) {
        stalled.push_back(std::async(std::launch::async, [&, i] {
            return post("/api/v6/images/img2img", {{"key", key},
                                                   {"prompt", "a red circle"},
                                                   {"init_image", tarpit.url("/image" + std::to_string(i) + ".png")}});
        }));
    }
    ASSERT_TRUE(eventually([&] { return tarpit.accepted() >= 4; }, 5s));  // the pool's threads are all stuck

    auto t0 = Clock::now();
    const auto health = get("/health");
    EXPECT_EQ(health.status, 200);
    EXPECT_LT(secondsSince(t0), 1.0) << "/health waited behind the stalled fetches";

    t0 = Clock::now();
    const auto normal = text2img(key, {{"instant_response", "yes"}});
    EXPECT_EQ(normal.status, 200) << normal.body;
    EXPECT_LT(secondsSince(t0), 2.0) << "an ordinary request waited behind the stalled fetches";

    int timedOut = 0, busy = 0;
    for (auto& f : stalled) {
        ASSERT_EQ(f.wait_for(10s), std::future_status::ready) << "a stalled request got no answer";
        const auto r = f.get();
        const std::string message = r.json().value("message", "");
        if (r.status == 400) {
            EXPECT_NE(r.body.find("did not answer in time"), std::string::npos) << r.body;
            ++timedOut;
        } else {
            EXPECT_EQ(r.status, 503) << r.body;
            EXPECT_NE(message.find("busy"), std::string::npos) << r.body;
            EXPECT_FALSE(r.header("retry-after").empty());
            ++busy;
        }
    }
    EXPECT_GE(timedOut, 1);
    EXPECT_EQ(timedOut + busy, 24);
    EXPECT_EQ(imagesUsed(), 2);  // the two text2img; the refused requests cost nothing
}

TEST_F(OutboundStall, StopEndsStalledWorkWithinSeconds) {
    Tarpit tarpit;
    std::vector<std::future<HttpResult>> stalled;
    for (int i = 0; i < 6; ++i) {
        stalled.push_back(std::async(std::launch::async, [&] {
            return post("/api/v6/images/img2img",
                        {{"key", key}, {"prompt", "a red circle"}, {"init_image", tarpit.url("/slow.png")}});
        }));
    }
    ASSERT_TRUE(eventually([&] { return tarpit.accepted() >= 4; }, 5s));
    const auto t0 = Clock::now();
    backend->beginShutdown();  // what SIGTERM does first
    http->stop();
    backend->stop();
    http.reset();  // closes the connections still open
    backend.reset();
    EXPECT_LT(secondsSince(t0), 2.0);  // not the 3 s fetch deadline, let alone the 15 s sync wait
    for (auto& f : stalled) EXPECT_EQ(f.wait_for(2s), std::future_status::ready);
}

}  // namespace
}  // namespace easel::testing
