#include "service/access_control.h"

namespace easel::service {

Access AccessControl::limit(accounts::Caller caller, quota::RateDecision* rate) {
    const auto d = m_limiter.take("user:" + std::to_string(caller.userId), caller.plan->requestsPerMinute);
    if (rate != nullptr) *rate = d;
    if (!d.allowed) {
        ServiceError e(ErrorCode::TooManyRequests, "rate limit of " + std::to_string(d.limit) +
                                                       " requests per minute reached for the " + caller.plan->name +
                                                       " plan; retry in " + std::to_string(d.resetSeconds) + " s");
        e.retryAfterSeconds = std::max(1, d.resetSeconds);
        throw e;
    }
    return {std::move(caller), d};
}

Access AccessControl::byKey(const std::string& apiKey, quota::RateDecision* rate) {
    return limit(m_accounts.authenticateKey(apiKey), rate);
}

Access AccessControl::byToken(const std::string& token, quota::RateDecision* rate) {
    return limit(m_accounts.authenticateToken(token), rate);
}

Access AccessControl::admin(const std::string& apiKey, quota::RateDecision* rate) {
    auto caller = m_accounts.authenticateKey(apiKey);
    if (!caller.isAdmin) throw ServiceError(ErrorCode::Forbidden, "this endpoint needs an administrator's API key");
    return limit(std::move(caller), rate);
}

}  // namespace easel::service
