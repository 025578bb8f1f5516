#pragma once
// Authentication plus the per-account request rate, decided in one place for every front-end.

#include <atomic>
#include <cstdint>
#include <string>

#include "accounts/account_service.h"
#include "quota/rate_limiter.h"

namespace easel::service {

// Generation requests count against the plan's requests per minute; reads (fetch polls, history,
// models, cancel) have their own, wider bucket, so polling a running job never eats the plan's rate.
enum class RateClass { Generation, Read };
int readLimitFor(const accounts::Plan& plan);

struct Access {
    accounts::Caller caller;
    quota::RateDecision rate;
};

class AccessControl {
public:
    // `shared`: several servers share this database, and the request rates are counted in it.
    AccessControl(accounts::AccountService& accounts, const Clock& clock, const storage::Database* shared = nullptr)
        : m_accounts(accounts), m_limiter(clock, 60, shared) {}

    // Throws 401 for a bad credential and 429 (with retryAfterSeconds) over the plan's rate; the
    // decision is returned either way through `rate` so that responses can carry X-RateLimit-*.
    Access byKey(const std::string& apiKey, quota::RateDecision* rate = nullptr, RateClass cls = RateClass::Read);
    Access byToken(const std::string& token, quota::RateDecision* rate = nullptr);
    // Admin endpoints: the key of an account marked admin.
    Access admin(const std::string& apiKey, quota::RateDecision* rate = nullptr);

    accounts::AccountService& accounts() { return m_accounts; }
    // Requests refused for the rate limit since the process started, per bucket (/metrics).
    std::uint64_t refusals(RateClass cls) const {
        return (cls == RateClass::Generation ? m_generationRefusals : m_readRefusals).load();
    }

private:
    Access limit(accounts::Caller caller, quota::RateDecision* rate, RateClass cls);

    accounts::AccountService& m_accounts;
    quota::RateLimiter m_limiter;
    std::atomic<std::uint64_t> m_generationRefusals{0};
    std::atomic<std::uint64_t> m_readRefusals{0};
};

}  // namespace easel::service
