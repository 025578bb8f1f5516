#pragma once
// Fixed one-minute windows per key (an account, an IP, an e-mail): cheap, exact under concurrency, and
// what X-RateLimit-* headers describe. Pure logic over a Clock; state is in memory, so a restart
// forgives the current minute.

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/clock.h"

namespace easel::quota {

struct RateDecision {
    bool allowed = false;
    int limit = 0;
    int remaining = 0;
    int resetSeconds = 0;  // until the window ends
};

class RateLimiter {
public:
    explicit RateLimiter(const Clock& clock, int windowSeconds = 60) : m_clock(clock), m_window(windowSeconds) {}

    // Counts one request against `key` if it fits in `limit` for the current window.
    RateDecision take(const std::string& key, int limit);
    // Whether one more would fit, without counting it (for limits on failures, counted afterwards).
    RateDecision peek(const std::string& key, int limit);

private:
    RateDecision decide(const std::string& key, int limit, bool count);
    struct Window {
        std::int64_t start = 0;
        int used = 0;
    };
    const Clock& m_clock;
    int m_window;
    std::mutex m_mutex;
    std::unordered_map<std::string, Window> m_windows;
};

}  // namespace easel::quota
