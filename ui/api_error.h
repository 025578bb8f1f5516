#pragma once
// A server or transport failure as the UI sees it: one kind per thing the user can act on, and a
// message fit for a dialog. The mapping is a pure function so tests can feed it canned replies.

#include <QByteArray>
#include <QJsonObject>
#include <QMap>
#include <QString>
#include <QStringList>
#include <optional>

namespace easel::ui {

enum class ApiErrorKind {
    Unreachable,      // no HTTP answer at all (connection refused, timeout, DNS)
    Unauthorized,     // 401: bad API key or session token
    QuotaExhausted,   // 402: the plan's generations are used up
    RateLimited,      // 429: wait retryAfterSeconds
    NotFound,         // 404
    BadRequest,       // 400 (and other 4xx): a parameter was wrong; see fieldErrors
    ServerError,      // 5xx
    Failed,           // 2xx with "status": "error" or "failed" (e.g. a generation that failed)
    InvalidResponse,  // 2xx whose body is not the JSON object we expect
};

struct ApiError {
    ApiErrorKind kind = ApiErrorKind::ServerError;
    int httpStatus = 0;                      // 0 when there was no HTTP answer
    QString message;                         // the server's "message", or a description of the transport failure
    int retryAfterSeconds = -1;              // RateLimited only; -1 when the server did not say
    QMap<QString, QStringList> fieldErrors;  // BadRequest: {"width": ["must be a multiple of 8"]}

    // A short dialog title ("Quota exhausted") and the full text, including what to do next.
    QString title() const;
    QString userText() const;
};

// Maps one HTTP answer to an error, or std::nullopt when it is a success. `retryAfterHeader` is the raw
// Retry-After header (seconds); the JSON "retry_after" wins when both are present.
std::optional<ApiError> mapHTTPResponse(int httpStatus, const QByteArray& body, const QByteArray& retryAfterHeader);

// For replies that never produced an HTTP status.
ApiError unreachableError(const QString& detail);

// The body as a JSON object, or an empty object when it is not one.
QJsonObject parseJSONObject(const QByteArray& body);

}  // namespace easel::ui
