// The webhook sender on its own: deliveries signed and counted, and an account deleted while one of
// its deliveries is on the wire gets no retry of it.

#include "server/webhook_sender.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "eventually.h"
#include "fake_clock.h"
#include "server/http_server.h"
#include "server/router.h"

namespace easel::server {
namespace {

using namespace std::chrono_literals;

// A receiver on loopback whose answers the test controls: each request waits for `release` and
// then gets `status`.
class HeldReceiver {
public:
    HeldReceiver() {
        m_router.add("POST", "/hook", [this](const Request&) {
            std::shared_future<void> release;
            {
                std::lock_guard lock(m_mutex);
                ++m_received;
                release = m_release;
            }
            release.wait();
            const int status = m_status.load();
            return Response::json(status, {{"ok", status == 200}});
        });
        HttpServerOptions o;
        o.port = 0;
        m_server = std::make_unique<HttpServer>(o, m_router);
        m_server->start();
    }
    ~HeldReceiver() {
        releaseAll();
        m_server->stop();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(m_server->port()) + "/hook"; }
    int received() {
        std::lock_guard lock(m_mutex);
        return m_received;
    }
    void releaseAll() {
        std::lock_guard lock(m_mutex);
        if (!m_released) m_promise.set_value();
        m_released = true;
    }
    std::atomic<int> m_status{500};

private:
    Router m_router;
    std::mutex m_mutex;
    std::promise<void> m_promise;
    std::shared_future<void> m_release = m_promise.get_future().share();
    bool m_released = false;
    int m_received = 0;
    std::unique_ptr<HttpServer> m_server;
};

WebhookOptions loopbackOptions() {
    WebhookOptions o;
    o.policy.allowPrivateAddresses = true;
    o.retryDelays = {50ms, 50ms};
    o.timeout = 10s;
    return o;
}

// A sender over a real pool, its first delivery held by the receiver until the test lets it go.
class WebhookSenderTest : public ::testing::Test {
protected:
    HeldReceiver receiver;
    FakeClock clock;
    net::OutboundPool pool;
    WebhookSender sender{loopbackOptions(), [](std::int64_t) { return std::string("secret"); }, clock, pool};
};

TEST_F(WebhookSenderTest, AnAccountDeletedDuringAnAttemptGetsNoRetry) {
    sender.enqueue(7, receiver.url(), R"({"status":"success"})");
    ASSERT_TRUE(testing::eventually([&] { return receiver.received() == 1; }));
    sender.forget(7);       // the account is deleted while its delivery waits for an answer
    receiver.releaseAll();  // ... which is a 500
    ASSERT_TRUE(testing::eventually([&] { return sender.abandoned() == 1; }));
    EXPECT_EQ(sender.pending(), 0);
    clock.advance(3600);
    std::this_thread::sleep_for(150ms);  // past the retry delay, in real time too
    EXPECT_EQ(receiver.received(), 1);
    EXPECT_EQ(sender.delivered(), 0);
}

TEST_F(WebhookSenderTest, AFailedAttemptOfAnotherAccountIsStillRetried) {
    sender.enqueue(7, receiver.url(), R"({"status":"success"})");
    ASSERT_TRUE(testing::eventually([&] { return receiver.received() == 1; }));
    sender.forget(8);  // someone else's account
    receiver.releaseAll();
    ASSERT_TRUE(testing::eventually([&] { return sender.pending() == 1; }));
    receiver.m_status = 200;
    clock.advance(1);
    ASSERT_TRUE(testing::eventually([&] { return sender.delivered() == 1; }));
    EXPECT_EQ(receiver.received(), 2);
    EXPECT_EQ(sender.abandoned(), 0);
}

}  // namespace
}  // namespace easel::server
