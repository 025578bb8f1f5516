#pragma once
// Fixed one-minute windows per key (an account, an IP, an e-mail): cheap, exact under concurrency, and
// what X-RateLimit-* headers describe. The state is in memory (a restart forgives the current minute),
// or, when several servers share a database, in it (rate_windows): one atomic upsert per decision, so an
// account's limit holds across all the servers a load balancer spreads it over.

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "storage/database.h"

namespace easel::quota {

struct RateDecision {
    bool allowed = false;
    int limit = 0;
    int remaining = 0;
    int resetSeconds = 0;  // until the window ends
};

class RateLimiter {
public:
    explicit RateLimiter(const Clock& clock, int windowSeconds = 60, const storage::Database* shared = nullptr)
        : m_clock(clock), m_window(windowSeconds), m_shared(shared) {}

    // Counts one request against `key` if it fits in `limit` for the current window.
    RateDecision take(const std::string& key, int limit);
    // Whether one more would fit, without counting it (for limits on failures, counted afterwards).
    RateDecision peek(const std::string& key, int limit);

private:
    RateDecision decide(const std::string& key, int limit, bool count);
    // The window's uses before this request, counting this one if `count` and under `limit`: in memory,
    // or in the shared database (counted and read in one statement).
    int memoryUse(const std::string& key, std::int64_t start, int limit, bool count);
    int sharedUse(const std::string& key, std::int64_t start, int limit, bool count);
    struct Window {
        std::int64_t start = 0;
        int used = 0;
    };
    const Clock& m_clock;
    int m_window;
    const storage::Database* m_shared;
    std::uint64_t m_decisions = 0;  // shared: finished windows are deleted now and then
    std::mutex m_mutex;
    std::unordered_map<std::string, Window> m_windows;
};

}  // namespace easel::quota
