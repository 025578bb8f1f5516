#include "server/authenticated.h"

namespace easel::server {
void addRateLimitHeaders(Response& r, const quota::RateDecision& d) {
    r.headers["X-RateLimit-Limit"] = std::to_string(d.limit);
    r.headers["X-RateLimit-Remaining"] = std::to_string(d.remaining);
    r.headers["X-RateLimit-Reset"] = std::to_string(d.resetSeconds);
}

Handler authenticated(service::AccessControl& access, Credential credential, AuthedHandler handler) {
    return [&access, credential, handler = std::move(handler)](const Request& req) {
        const auto body = jsonBody(req);
        quota::RateDecision rate;
        rate.limit = -1;
        Response r;
        try {
            service::Access who;
            switch (credential) {
                case Credential::ApiKey:
                    who = access.byKey(apiKeyFrom(req, body), &rate);
                    break;
                case Credential::ApiKeyGeneration:
                    who = access.byKey(apiKeyFrom(req, body), &rate, service::RateClass::Generation);
                    break;
                case Credential::SessionToken:
                    who = access.byToken(bearerToken(req), &rate);
                    break;
                case Credential::AdminKey:
                    who = access.admin(apiKeyFrom(req, body), &rate);
                    break;
            }
            r = handler(req, body, who);
        } catch (const ServiceError& e) {
            r = errorResponse(e);
        }
        if (rate.limit >= 0) addRateLimitHeaders(r, rate);
        return r;
    };
}

}  // namespace easel::server
