#pragma once
// Best-effort webhooks: when a request with a `webhook` finishes, its fetch-shaped JSON is POSTed
// there from a background thread, retried with backoff on failure. Each POST carries
//   X-Easel-Timestamp: <unix seconds>
//   X-Easel-Signature: sha256=<hex HMAC-SHA256(account's webhook secret, timestamp + "." + body)>
// so the receiver can check that it came from this server and is not a replay. Retry delays run on the
// injected Clock, so tests move a fake one instead of sleeping.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "net/http_client.h"
#include "net/outbound_pool.h"

namespace easel::server {

struct WebhookOptions {
    net::UrlPolicy policy;
    std::vector<std::chrono::milliseconds> retryDelays{std::chrono::seconds(2), std::chrono::seconds(10),
                                                       std::chrono::seconds(60)};
    std::chrono::milliseconds timeout{10'000};
    // Attempts on the wire at once (on the outbound pool), and never two of one account: a receiver
    // that stalls holds one slot until its timeout and delays no other account's webhooks.
    int maxConcurrent = 2;
};

class WebhookSender {
public:
    using SecretFor = std::function<std::string(std::int64_t userId)>;

    // `clock` gives the signed timestamp and times the retries; `pool` carries the attempts. Both
    // must outlive the sender; stopping the pool cancels attempts on the wire.
    WebhookSender(WebhookOptions options, SecretFor secretFor, const Clock& clock, net::OutboundPool& pool);
    ~WebhookSender();
    WebhookSender(const WebhookSender&) = delete;
    WebhookSender& operator=(const WebhookSender&) = delete;

    void enqueue(std::int64_t userId, std::string url, std::string body);
    // Drops the account's waiting deliveries (a deleted account's prompts and links go nowhere).
    void forget(std::int64_t userId);
    // Deliveries that got a 2xx, and those given up after every retry.
    int delivered() const;
    int abandoned() const;
    // Deliveries waiting for their first attempt or for a retry (not the one being attempted).
    int pending() const;

private:
    struct Delivery {
        std::int64_t userId;
        std::string url;
        std::string body;
        std::size_t attempt = 0;
        std::int64_t dueMs = 0;  // on Clock::steadyMilliseconds()
    };
    struct InFlight {
        int attempts = 0;
        bool forgotten = false;  // forget() came while an attempt was on the wire: no retry
    };
    void loop();
    // Signs and posts one attempt to the pool (hold m_mutex); false when the pool refused it.
    bool dispatch(Delivery& d);
    void finished(Delivery d, bool ok);

    WebhookOptions m_options;
    SecretFor m_secretFor;
    const Clock& m_clock;
    net::OutboundPool& m_pool;
    mutable std::mutex m_mutex;
    std::condition_variable m_wake;
    std::deque<Delivery> m_queue;
    std::map<std::int64_t, InFlight> m_inFlight;  // by account
    int m_inFlightTotal = 0;
    bool m_stopping = false;
    int m_delivered = 0;
    int m_abandoned = 0;
    std::thread m_thread;
};

}  // namespace easel::server
