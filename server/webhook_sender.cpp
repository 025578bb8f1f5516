#include "server/webhook_sender.h"

#include <algorithm>
#include <iostream>

namespace easel::server {

WebhookSender::WebhookSender(WebhookOptions options, SecretFor secretFor, const Clock& clock, net::OutboundPool& pool)
    : m_options(std::move(options)), m_secretFor(std::move(secretFor)), m_clock(clock), m_pool(pool) {
    m_thread = std::thread([this] { loop(); });
}

WebhookSender::~WebhookSender() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_all();
    m_thread.join();
    // Attempts on the wire call back into this object: wait for them (each ends by its timeout, at
    // once when the pool is stopped first).
    std::unique_lock lock(m_mutex);
    m_wake.wait(lock, [&] { return m_inFlightTotal == 0; });
}

void WebhookSender::forget(std::int64_t userId) {
    std::lock_guard lock(m_mutex);
    std::erase_if(m_queue, [&](const Delivery& d) { return d.userId == userId; });
    if (auto it = m_inFlight.find(userId); it != m_inFlight.end()) it->second.forgotten = true;
}

void WebhookSender::enqueue(std::int64_t userId, std::string url, std::string body) {
    {
        std::lock_guard lock(m_mutex);
        // A dead receiver must not grow memory without bound or crowd out other accounts' webhooks.
        if (m_queue.size() > 10'000) return;
        const auto mine =
            std::count_if(m_queue.begin(), m_queue.end(), [&](const Delivery& d) { return d.userId == userId; });
        if (mine >= 100) return;
        m_queue.push_back({userId, std::move(url), std::move(body), 0, m_clock.steadyMilliseconds()});
    }
    m_wake.notify_all();
}

int WebhookSender::delivered() const {
    std::lock_guard lock(m_mutex);
    return m_delivered;
}

int WebhookSender::abandoned() const {
    std::lock_guard lock(m_mutex);
    return m_abandoned;
}

int WebhookSender::pending() const {
    std::lock_guard lock(m_mutex);
    return static_cast<int>(m_queue.size());
}

bool WebhookSender::dispatch(Delivery& d) {
    const auto timestamp = std::to_string(m_clock.nowSeconds());
    net::OutboundRequest r;
    r.method = "POST";
    r.url = d.url;
    r.body = d.body;
    r.timeout = m_options.timeout;
    r.maxBody = 64 * 1024;
    r.maxRedirects = 0;
    r.headers["Content-Type"] = "application/json";
    r.headers["X-Easel-Timestamp"] = timestamp;
    r.headers["X-Easel-Signature"] = "sha256=" + net::hmacSha256Hex(m_secretFor(d.userId), timestamp + "." + d.body);
    auto delivery = std::make_shared<Delivery>(d);
    return m_pool.post(std::move(r), m_options.policy,
                       [this, delivery](const net::OutboundResponse* response, const net::OutboundError* error) {
                           if (error != nullptr) {
                               // The URL is the user's own; the message names no secret.
                               std::cerr << "easel-server: webhook delivery failed: " << error->what() << '\n';
                           }
                           finished(std::move(*delivery),
                                    response != nullptr && response->status >= 200 && response->status < 300);
                       });
}

void WebhookSender::finished(Delivery d, bool ok) {
    // Everything, the notify included, under the lock: the destructor waits for m_inFlightTotal == 0
    // and may destroy this object as soon as the lock is released (ThreadSanitizer caught a notify
    // after the release).
    std::lock_guard lock(m_mutex);
    auto it = m_inFlight.find(d.userId);
    const bool forgotten = it != m_inFlight.end() && it->second.forgotten;
    if (it != m_inFlight.end() && --it->second.attempts == 0) m_inFlight.erase(it);
    --m_inFlightTotal;
    if (ok) {
        ++m_delivered;
    } else if (forgotten || m_stopping) {
        ++m_abandoned;  // the account was deleted during the attempt, or the server stops
    } else if (d.attempt < m_options.retryDelays.size()) {
        d.dueMs = m_clock.steadyMilliseconds() + m_options.retryDelays[d.attempt].count();
        ++d.attempt;
        m_queue.push_back(std::move(d));
    } else {
        ++m_abandoned;
    }
    m_wake.notify_all();
}

void WebhookSender::loop() {
    std::unique_lock lock(m_mutex);
    for (;;) {
        if (m_stopping) return;
        const auto now = m_clock.steadyMilliseconds();
        // The earliest due delivery of an account with nothing on the wire.
        auto next = m_queue.end();
        std::int64_t earliestWaiting = -1;
        for (auto it = m_queue.begin(); it != m_queue.end(); ++it) {
            if (m_inFlight.contains(it->userId)) continue;
            if (it->dueMs <= now) {
                if (next == m_queue.end() || it->dueMs < next->dueMs) next = it;
            } else if (earliestWaiting < 0 || it->dueMs < earliestWaiting) {
                earliestWaiting = it->dueMs;
            }
        }
        if (next == m_queue.end() || m_inFlightTotal >= std::max(1, m_options.maxConcurrent)) {
            // Nothing due, or every slot busy: wait for a finished attempt, an enqueue() or the next due
            // time, waited in real time (exact for the system clock; a test's fake clock is read again
            // when the wait ends).
            if (earliestWaiting >= 0 && m_inFlightTotal < std::max(1, m_options.maxConcurrent)) {
                m_wake.wait_for(lock, std::chrono::milliseconds(earliestWaiting - now));
            } else {
                m_wake.wait_for(lock, std::chrono::milliseconds(500));
            }
            continue;
        }
        Delivery d = std::move(*next);
        m_queue.erase(next);
        ++m_inFlight[d.userId].attempts;
        ++m_inFlightTotal;
        if (!dispatch(d)) {
            // The pool is full (or stopping): put it back and try again shortly.
            auto it = m_inFlight.find(d.userId);
            if (--it->second.attempts == 0) m_inFlight.erase(it);
            --m_inFlightTotal;
            d.dueMs = now + 100;
            m_queue.push_back(std::move(d));
            m_wake.wait_for(lock, std::chrono::milliseconds(100));
        }
    }
}

}  // namespace easel::server
