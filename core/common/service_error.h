#pragma once
// The one error type the services throw. The HTTP layer maps `code` to a status in one place; the
// desktop app shows `message`. Field-level validation errors name the request field.

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace easel {

enum class ErrorCode {
    BadRequest,           // 400: the request itself is wrong
    Unauthorized,         // 401: no, wrong or revoked key / token / password
    PaymentRequired,      // 402: the plan's image quota is used up
    Forbidden,            // 403: authenticated but not allowed (admin-only, sign-up closed)
    NotFound,             // 404: absent, or someone else's
    Conflict,             // 409: e.g. the e-mail is taken
    TooLarge,             // 413
    TooManyRequests,      // 429: rate limit or queue cap; retryAfter says when to come back
    Unavailable,          // 503: no model loaded, shutting down, the disk nearly full
    InsufficientStorage,  // 507: the plan's storage cap is reached
    Internal,             // 500
};

class ServiceError : public std::runtime_error {
public:
    ServiceError(ErrorCode code, const std::string& message) : std::runtime_error(message), m_code(code) {}

    ErrorCode code() const { return m_code; }

    std::map<std::string, std::vector<std::string>> fieldErrors;
    std::optional<int> retryAfterSeconds;

private:
    ErrorCode m_code;
};

// A 400 naming the fields that were wrong.
inline ServiceError validationError(std::map<std::string, std::vector<std::string>> fields) {
    std::string message = "invalid request:";
    bool first = true;
    for (const auto& [field, problems] : fields) {
        for (const auto& p : problems) {
            message += (first ? " " : "; ") + field + " " + p;
            first = false;
        }
    }
    ServiceError e(ErrorCode::BadRequest, message);
    e.fieldErrors = std::move(fields);
    return e;
}

}  // namespace easel
