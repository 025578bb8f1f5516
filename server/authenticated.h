#pragma once
// Wraps a controller body with authentication and the rate-limit headers that every authenticated
// response carries (also the 429 itself).

#include <functional>
#include <nlohmann/json.hpp>

#include "server/api_support.h"
#include "server/router.h"
#include "service/access_control.h"

namespace easel::server {

// ApiKeyGeneration: counts against the plan's requests per minute; ApiKey: the wider read bucket.
enum class Credential { ApiKey, ApiKeyGeneration, SessionToken, AdminKey };

using AuthedHandler = std::function<Response(const Request&, const nlohmann::json& body, const service::Access&)>;

// X-RateLimit-Limit / Remaining / Reset from the plan's bucket.
void addRateLimitHeaders(Response& r, const quota::RateDecision& d);

Handler authenticated(service::AccessControl& access, Credential credential, AuthedHandler handler);

}  // namespace easel::server
