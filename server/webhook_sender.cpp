#include "server/webhook_sender.h"

#include <algorithm>
#include <iostream>

namespace easel::server {

WebhookSender::WebhookSender(WebhookOptions options, SecretFor secretFor, const Clock& clock)
    : m_options(std::move(options)), m_secretFor(std::move(secretFor)), m_clock(clock) {
    m_thread = std::thread([this] { loop(); });
}

WebhookSender::~WebhookSender() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_all();
    m_thread.join();
}

void WebhookSender::forget(std::int64_t userId) {
    std::lock_guard lock(m_mutex);
    std::erase_if(m_queue, [&](const Delivery& d) { return d.userId == userId; });
    if (m_attempting == userId) m_attemptForgotten = true;
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

bool WebhookSender::attempt(const Delivery& d) {
    try {
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
        r.headers["X-Easel-Signature"] =
            "sha256=" + net::hmacSha256Hex(m_secretFor(d.userId), timestamp + "." + d.body);
        const auto response = net::httpFetch(r, m_options.policy);
        return response.status >= 200 && response.status < 300;
    } catch (const std::exception& e) {
        // The URL is the user's own; the message names no secret.
        std::cerr << "easel-server: webhook delivery failed: " << e.what() << '\n';
        return false;
    }
}

void WebhookSender::loop() {
    std::unique_lock lock(m_mutex);
    for (;;) {
        if (m_stopping) return;
        if (m_queue.empty()) {
            m_wake.wait(lock);
            continue;
        }
        auto next = std::min_element(m_queue.begin(), m_queue.end(),
                                     [](const Delivery& a, const Delivery& b) { return a.dueMs < b.dueMs; });
        const auto now = m_clock.steadyMilliseconds();
        if (next->dueMs > now) {
            // The clock's remaining time, waited in real time: exact for the system clock; a test's fake
            // clock is read again when the wait ends or enqueue() wakes the loop.
            m_wake.wait_for(lock, std::chrono::milliseconds(next->dueMs - now));
            continue;
        }
        Delivery d = std::move(*next);
        m_queue.erase(next);
        m_attempting = d.userId;
        m_attemptForgotten = false;
        lock.unlock();
        const bool ok = attempt(d);
        lock.lock();
        m_attempting.reset();
        if (ok) {
            ++m_delivered;
        } else if (m_attemptForgotten) {
            ++m_abandoned;  // the account was deleted during the attempt: its retries go nowhere
        } else if (d.attempt < m_options.retryDelays.size()) {
            d.dueMs = m_clock.steadyMilliseconds() + m_options.retryDelays[d.attempt].count();
            ++d.attempt;
            m_queue.push_back(std::move(d));
        } else {
            ++m_abandoned;
        }
    }
}

}  // namespace easel::server
