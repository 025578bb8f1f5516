#include "webhook_sender.h"

#include <algorithm>
#include <iostream>

namespace easel::server {

WebhookSender::WebhookSender(WebhookOptions options, SecretFor secretFor, Now now)
    : m_options(std::move(options)), m_secretFor(std::move(secretFor)), m_now(std::move(now)) {
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
}

void WebhookSender::enqueue(std::int64_t userId, std::string url, std::string body) {
    {
        std::lock_guard lock(m_mutex);
        // A dead receiver must not grow memory without bound or crowd out other accounts' webhooks.
        if (m_queue.size() > 10'000) return;
        const auto mine =
            std::count_if(m_queue.begin(), m_queue.end(), [&](const Delivery& d) { return d.userId == userId; });
        if (mine >= 100) return;
        m_queue.push_back({userId, std::move(url), std::move(body), 0, std::chrono::steady_clock::now()});
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

bool WebhookSender::attempt(const Delivery& d) {
    try {
        const auto timestamp = std::to_string(m_now());
        OutboundRequest r;
        r.method = "POST";
        r.url = d.url;
        r.body = d.body;
        r.timeout = m_options.timeout;
        r.maxBody = 64 * 1024;
        r.maxRedirects = 0;
        r.headers["Content-Type"] = "application/json";
        r.headers["X-Easel-Timestamp"] = timestamp;
        r.headers["X-Easel-Signature"] = "sha256=" + hmacSha256Hex(m_secretFor(d.userId), timestamp + "." + d.body);
        const auto response = httpFetch(r, m_options.policy);
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
                                     [](const Delivery& a, const Delivery& b) { return a.due < b.due; });
        if (next->due > std::chrono::steady_clock::now()) {
            m_wake.wait_until(lock, next->due);
            continue;
        }
        Delivery d = std::move(*next);
        m_queue.erase(next);
        lock.unlock();
        const bool ok = attempt(d);
        lock.lock();
        if (ok) {
            ++m_delivered;
        } else if (d.attempt < m_options.retryDelays.size()) {
            d.due = std::chrono::steady_clock::now() + m_options.retryDelays[d.attempt];
            ++d.attempt;
            m_queue.push_back(std::move(d));
        } else {
            ++m_abandoned;
        }
    }
}

}  // namespace easel::server
