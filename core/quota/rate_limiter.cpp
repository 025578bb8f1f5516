#include "quota/rate_limiter.h"

namespace easel::quota {

RateDecision RateLimiter::take(const std::string& key, int limit) { return decide(key, limit, true); }

RateDecision RateLimiter::peek(const std::string& key, int limit) { return decide(key, limit, false); }

RateDecision RateLimiter::decide(const std::string& key, int limit, bool count) {
    const std::int64_t now = m_clock.nowSeconds();
    const std::int64_t start = now - now % m_window;
    std::lock_guard lock(m_mutex);
    if (m_windows.size() > 100'000) {
        // Forget finished windows so that many distinct keys (IPs) cannot grow memory without bound.
        std::erase_if(m_windows, [&](const auto& kv) { return kv.second.start < start; });
    }
    auto& w = m_windows[key];
    if (w.start != start) w = {start, 0};
    RateDecision d;
    d.limit = limit;
    d.resetSeconds = static_cast<int>(start + m_window - now);
    d.allowed = w.used < limit;
    if (d.allowed && count) ++w.used;
    d.remaining = std::max(0, limit - w.used);
    return d;
}

}  // namespace easel::quota
