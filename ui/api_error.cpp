#include "ui/api_error.h"

#include <QCoreApplication>
#include <QJsonArray>
#include <QJsonDocument>

namespace easel::ui {

namespace {

QString tr(const char* text) { return QCoreApplication::translate("easel::ui::ApiError", text); }

ApiErrorKind kindForStatus(int httpStatus) {
    switch (httpStatus) {
        case 401:
        case 403:
            return ApiErrorKind::Unauthorized;
        case 402:
            return ApiErrorKind::QuotaExhausted;
        case 404:
            return ApiErrorKind::NotFound;
        case 429:
            return ApiErrorKind::RateLimited;
        default:
            break;
    }
    if (httpStatus >= 500) return ApiErrorKind::ServerError;
    return ApiErrorKind::BadRequest;
}

QMap<QString, QStringList> fieldErrorsOf(const QJsonObject& json) {
    QMap<QString, QStringList> out;
    const auto errors = json.value(QStringLiteral("errors")).toObject();
    for (auto it = errors.begin(); it != errors.end(); ++it) {
        QStringList messages;
        if (it.value().isArray()) {
            for (const auto& m : it.value().toArray()) messages << m.toString();
        } else {
            messages << it.value().toString();
        }
        out.insert(it.key(), messages);
    }
    return out;
}

// ModelsLab-style servers sometimes put the text in "message" as an object or in "messege"; we only
// promise to read "message" (string) and fall back to a generic text.
QString messageOf(const QJsonObject& json) {
    const auto value = json.value(QStringLiteral("message"));
    if (value.isString()) return value.toString();
    if (value.isObject()) return QString::fromUtf8(QJsonDocument(value.toObject()).toJson(QJsonDocument::Compact));
    return {};
}

}  // namespace

QJsonObject parseJSONObject(const QByteArray& body) {
    const auto doc = QJsonDocument::fromJson(body);
    return doc.isObject() ? doc.object() : QJsonObject{};
}

std::optional<ApiError> mapHTTPResponse(int httpStatus, const QByteArray& body, const QByteArray& retryAfterHeader) {
    const auto json = parseJSONObject(body);
    const auto status = json.value(QStringLiteral("status")).toString();
    const bool httpOk = httpStatus >= 200 && httpStatus < 300;
    if (httpOk && !json.isEmpty() && status != QStringLiteral("error") && status != QStringLiteral("failed")) {
        return std::nullopt;
    }
    ApiError error;
    error.httpStatus = httpStatus;
    error.message = messageOf(json);
    if (httpOk) {
        error.kind = json.isEmpty() ? ApiErrorKind::InvalidResponse : ApiErrorKind::Failed;
        if (json.isEmpty()) error.message = tr("The server sent a reply that is not a JSON object.");
    } else {
        error.kind = kindForStatus(httpStatus);
    }
    error.fieldErrors = fieldErrorsOf(json);
    if (error.kind == ApiErrorKind::RateLimited) {
        bool ok = false;
        const int header = retryAfterHeader.trimmed().toInt(&ok);
        if (ok) error.retryAfterSeconds = header;
        const auto fromBody = json.value(QStringLiteral("retry_after"));
        if (fromBody.isDouble()) error.retryAfterSeconds = qRound(fromBody.toDouble());
    }
    if (error.message.isEmpty()) error.message = tr("HTTP status %1.").arg(httpStatus);
    return error;
}

ApiError unreachableError(const QString& detail) {
    ApiError error;
    error.kind = ApiErrorKind::Unreachable;
    error.message = detail;
    return error;
}

QString ApiError::title() const {
    switch (kind) {
        case ApiErrorKind::Unreachable:
            return tr("Server unreachable");
        case ApiErrorKind::Unauthorized:
            return tr("Not signed in");
        case ApiErrorKind::QuotaExhausted:
            return tr("Quota exhausted");
        case ApiErrorKind::RateLimited:
            return tr("Too many requests");
        case ApiErrorKind::NotFound:
            return tr("Not found");
        case ApiErrorKind::BadRequest:
            return tr("Invalid request");
        case ApiErrorKind::ServerError:
            return tr("Server error");
        case ApiErrorKind::Failed:
            return tr("Request failed");
        case ApiErrorKind::InvalidResponse:
            return tr("Unexpected reply");
    }
    return tr("Error");
}

QString ApiError::userText() const {
    QString text = message;
    for (auto it = fieldErrors.begin(); it != fieldErrors.end(); ++it) {
        text += QStringLiteral("\n• %1: %2").arg(it.key(), it.value().join(QStringLiteral("; ")));
    }
    switch (kind) {
        case ApiErrorKind::Unreachable:
            text += QLatin1Char('\n') + tr("Check that the Easel server is running and the address in the settings.");
            break;
        case ApiErrorKind::Unauthorized:
            text += QLatin1Char('\n') + tr("Your API key or session is not valid. Sign in again.");
            break;
        case ApiErrorKind::QuotaExhausted:
            text += QLatin1Char('\n') + tr("Your plan's generations are used up; see the Account tab.");
            break;
        case ApiErrorKind::RateLimited:
            if (retryAfterSeconds >= 0) {
                text +=
                    QLatin1Char('\n') + QCoreApplication::translate("easel::ui::ApiError", "Try again in %n second(s).",
                                                                    nullptr, retryAfterSeconds);
            }
            break;
        default:
            break;
    }
    return text;
}

}  // namespace easel::ui
