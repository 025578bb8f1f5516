#include "service/access_control.h"

namespace easel::service {

int readLimitFor(const accounts::Plan& plan) { return std::max(300, plan.requestsPerMinute * 10); }

Access AccessControl::limit(accounts::Caller caller, quota::RateDecision* rate, RateClass cls) {
    const bool generation = cls == RateClass::Generation;
    const auto d = m_limiter.take((generation ? "gen:" : "read:") + std::to_string(caller.userId),
                                  generation ? caller.plan->requestsPerMinute : readLimitFor(*caller.plan));
    if (rate != nullptr) *rate = d;
    if (!d.allowed) {
        ++(generation ? m_generationRefusals : m_readRefusals);
        ServiceError e(ErrorCode::TooManyRequests, "rate limit of " + std::to_string(d.limit) +
                                                       (generation ? " generation" : "") +
                                                       " requests per minute reached for the " + caller.plan->name +
                                                       " plan; retry in " + std::to_string(d.resetSeconds) + " s");
        e.retryAfterSeconds = std::max(1, d.resetSeconds);
        throw e;
    }
    return {std::move(caller), d};
}

Access AccessControl::byKey(const std::string& apiKey, quota::RateDecision* rate, RateClass cls) {
    return limit(m_accounts.authenticateKey(apiKey), rate, cls);
}

Access AccessControl::byToken(const std::string& token, quota::RateDecision* rate) {
    return limit(m_accounts.authenticateToken(token), rate, RateClass::Read);
}

Access AccessControl::admin(const std::string& apiKey, quota::RateDecision* rate) {
    auto caller = m_accounts.authenticateKey(apiKey);
    if (!caller.isAdmin) throw ServiceError(ErrorCode::Forbidden, "this endpoint needs an administrator's API key");
    return limit(std::move(caller), rate, RateClass::Read);
}

}  // namespace easel::service
