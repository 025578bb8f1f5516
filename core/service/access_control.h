#pragma once
// Authentication plus the per-account request rate, decided in one place for every front-end.

#include <string>

#include "accounts/account_service.h"
#include "quota/rate_limiter.h"

namespace easel::service {

struct Access {
    accounts::Caller caller;
    quota::RateDecision rate;
};

class AccessControl {
public:
    AccessControl(accounts::AccountService& accounts, const Clock& clock) : m_accounts(accounts), m_limiter(clock) {}

    // Throws 401 for a bad credential and 429 (with retryAfterSeconds) over the plan's rate; the
    // decision is returned either way through `rate` so that responses can carry X-RateLimit-*.
    Access byKey(const std::string& apiKey, quota::RateDecision* rate = nullptr);
    Access byToken(const std::string& token, quota::RateDecision* rate = nullptr);
    // Admin endpoints: the key of an account marked admin.
    Access admin(const std::string& apiKey, quota::RateDecision* rate = nullptr);

    accounts::AccountService& accounts() { return m_accounts; }

private:
    Access limit(accounts::Caller caller, quota::RateDecision* rate);

    accounts::AccountService& m_accounts;
    quota::RateLimiter m_limiter;
};

}  // namespace easel::service
