#include "quota/rate_limiter.h"

namespace easel::quota {

RateDecision RateLimiter::take(const std::string& key, int limit) { return decide(key, limit, true); }

RateDecision RateLimiter::peek(const std::string& key, int limit) { return decide(key, limit, false); }

int RateLimiter::memoryUse(const std::string& key, std::int64_t start, int limit, bool count) {
    std::lock_guard lock(m_mutex);
    if (m_windows.size() > 100'000) {
        // Forget finished windows so that many distinct keys (IPs) cannot grow memory without bound.
        std::erase_if(m_windows, [&](const auto& kv) { return kv.second.start < start; });
    }
    auto& w = m_windows[key];
    if (w.start != start) w = {start, 0};
    const int before = w.used;
    if (before < limit && count) ++w.used;
    return before;
}

int RateLimiter::sharedUse(const std::string& key, std::int64_t start, int limit, bool count) {
    const auto& db = *m_shared;
    const auto l = db.lock();
    bool sweep = false;
    {
        std::lock_guard lock(m_mutex);
        sweep = ++m_decisions % 10'000 == 0;
    }
    if (sweep) db.statement("DELETE FROM rate_windows WHERE window_start < ?").bindAll(start).run();
    if (count && limit > 0) {
        // Counts only while under the limit; no row back means the window is full.
        auto s = db.statement(
            "INSERT INTO rate_windows (rate_key, window_start, used) VALUES (?, ?, 1) "
            "ON CONFLICT (rate_key) DO UPDATE SET used = CASE WHEN rate_windows.window_start = "
            "excluded.window_start THEN rate_windows.used + 1 ELSE 1 END, window_start = excluded.window_start "
            "WHERE rate_windows.window_start <> excluded.window_start OR rate_windows.used < ? RETURNING used");
        s.bindAll(key, start, limit);
        if (s.step()) return static_cast<int>(s.int64(0)) - 1;  // the use before this one
        return limit;
    }
    auto s = db.statement("SELECT used FROM rate_windows WHERE rate_key = ? AND window_start = ?");
    s.bindAll(key, start);
    return s.step() ? static_cast<int>(s.int64(0)) : 0;
}

RateDecision RateLimiter::decide(const std::string& key, int limit, bool count) {
    const std::int64_t now = m_clock.nowSeconds();
    const std::int64_t start = now - now % m_window;
    // The window's uses before this request; counted here when allowed.
    const int before = m_shared != nullptr ? sharedUse(key, start, limit, count) : memoryUse(key, start, limit, count);
    RateDecision d;
    d.limit = limit;
    d.resetSeconds = static_cast<int>(start + m_window - now);
    d.allowed = before < limit;
    d.remaining = std::max(0, limit - before - (d.allowed && count ? 1 : 0));
    return d;
}

}  // namespace easel::quota
