#include "ui/api_client.h"

#include <QJsonDocument>
#include <QNetworkReply>
#include <QUrlQuery>

namespace easel::ui {

namespace {

QString str(const char* s) { return QString::fromLatin1(s); }

// The HTTP answer of a finished reply, or the transport error when there was none.
ApiResult resultOf(QNetworkReply* reply, const QByteArray& body) {
    const auto status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute);
    if (!status.isValid()) return {{}, unreachableError(reply->errorString())};
    ApiResult result;
    result.json = parseJSONObject(body);
    result.error = mapHTTPResponse(status.toInt(), body, reply->rawHeader("Retry-After"));
    return result;
}

}  // namespace

ApiClient::ApiClient(QUrl baseUrl, QObject* parent) : QObject(parent), m_baseUrl(std::move(baseUrl)) {}

void ApiClient::setSessionToken(const QString& token) {
    if (token == m_sessionToken) return;
    m_sessionToken = token;
    emit sessionTokenChanged(token);
}

void ApiClient::setApiKey(const QString& key) {
    if (key == m_apiKey) return;
    m_apiKey = key;
    emit apiKeyChanged(key);
}

QNetworkRequest ApiClient::makeRequest(const QUrl& url, Auth auth) const {
    QNetworkRequest request(url);
    request.setTransferTimeout(m_timeoutMs);
    request.setHeader(QNetworkRequest::ContentTypeHeader, QByteArrayLiteral("application/json"));
    request.setRawHeader("Accept", "application/json");
    if (auth == Auth::Session && !m_sessionToken.isEmpty()) {
        request.setRawHeader("Authorization", "Bearer " + m_sessionToken.toUtf8());
    }
    if (auth == Auth::ApiKey && !m_apiKey.isEmpty()) request.setRawHeader("X-API-Key", m_apiKey.toUtf8());
    return request;
}

void ApiClient::send(const QByteArray& method, const QString& path, Auth auth, const std::optional<QJsonObject>& body,
                     QObject* context, ApiCallback done) {
    const QNetworkRequest request = makeRequest(m_baseUrl.resolved(QUrl(path)), auth);
    const QByteArray data = body ? QJsonDocument(*body).toJson(QJsonDocument::Compact) : QByteArray();
    QNetworkReply* reply =
        body ? m_network.sendCustomRequest(request, method, data) : m_network.sendCustomRequest(request, method);
    // Deleting the reply is this object's business even when `context` is gone.
    connect(reply, &QNetworkReply::finished, this, [reply] { reply->deleteLater(); });
    connect(reply, &QNetworkReply::finished, context ? context : this, [this, reply, done = std::move(done)] {
        const ApiResult result = resultOf(reply, reply->readAll());
        if (result.error) emit requestFailed(*result.error);
        if (done) done(result);
    });
}

void ApiClient::checkHealth() {
    send("GET", str("/health"), Auth::None, std::nullopt, this, [this](const ApiResult& r) {
        if (!r.ok()) {
            emit healthChecked(false, r.error->message);
            return;
        }
        emit healthChecked(
            r.json.value(str("status")).toString() == str("ok"),
            r.json.value(str("version")).toString() + QStringLiteral(" · ") + r.json.value(str("device")).toString());
    });
}

void ApiClient::signup(const QString& email, const QString& password, QObject* context, ApiCallback done) {
    send("POST", str("/api/v1/auth/signup"), Auth::None,
         QJsonObject{{str("email"), email}, {str("password"), password}}, context,
         [this, done = std::move(done)](const ApiResult& r) {
             if (r.ok()) setApiKey(r.json.value(str("api_key")).toString());
             if (done) done(r);
         });
}

void ApiClient::login(const QString& email, const QString& password, QObject* context, ApiCallback done) {
    send("POST", str("/api/v1/auth/login"), Auth::None, QJsonObject{{str("email"), email}, {str("password"), password}},
         context, [this, done = std::move(done)](const ApiResult& r) {
             if (r.ok()) setSessionToken(r.json.value(str("token")).toString());
             if (done) done(r);
         });
}

void ApiClient::logout(QObject* context, ApiCallback done) {
    send("POST", str("/api/v1/auth/logout"), Auth::Session, QJsonObject{}, context,
         [this, done = std::move(done)](const ApiResult& r) {
             setSessionToken({});
             if (done) done(r);
         });
}

void ApiClient::account(QObject* context, ApiCallback done) {
    send("GET", str("/api/v1/account"), Auth::Session, std::nullopt, context, std::move(done));
}

void ApiClient::changePassword(const QString& oldPassword, const QString& newPassword, bool alsoReplaceKey,
                               QObject* context, ApiCallback done) {
    QJsonObject body{{str("old_password"), oldPassword}, {str("new_password"), newPassword}};
    if (alsoReplaceKey) body[str("regenerate_api_key")] = true;
    send("POST", str("/api/v1/account/password"), Auth::Session, body, context,
         [this, done = std::move(done)](const ApiResult& r) {
             if (r.ok() && r.json.contains(str("api_key"))) setApiKey(r.json.value(str("api_key")).toString());
             if (done) done(r);
         });
}

void ApiClient::viewApiKey(const QString& password, QObject* context, ApiCallback done) {
    send("POST", str("/api/v1/account/api-key/view"), Auth::Session, QJsonObject{{str("password"), password}}, context,
         [this, done = std::move(done)](const ApiResult& r) {
             if (r.ok()) setApiKey(r.json.value(str("api_key")).toString());
             if (done) done(r);
         });
}

void ApiClient::regenerateApiKey(const QString& password, QObject* context, ApiCallback done) {
    send("POST", str("/api/v1/account/api-key/regenerate"), Auth::Session, QJsonObject{{str("password"), password}},
         context, [this, done = std::move(done)](const ApiResult& r) {
             if (r.ok()) setApiKey(r.json.value(str("api_key")).toString());
             if (done) done(r);
         });
}

void ApiClient::usage(QObject* context, ApiCallback done) {
    send("GET", str("/api/v1/account/usage"), Auth::Session, std::nullopt, context, std::move(done));
}

void ApiClient::deleteAccount(const QString& password, QObject* context, ApiCallback done) {
    send("DELETE", str("/api/v1/account"), Auth::Session, QJsonObject{{str("password"), password}}, context,
         std::move(done));
}

void ApiClient::submit(GenerationKind kind, QJsonObject body, QObject* context, ApiCallback done) {
    body.insert(str("key"), m_apiKey);
    send("POST", endpointPath(kind), Auth::ApiKey, body, context, std::move(done));
}

void ApiClient::fetch(qint64 requestId, QObject* context, ApiCallback done) {
    send("POST", str("/api/v6/images/fetch"), Auth::ApiKey,
         QJsonObject{{str("key"), m_apiKey}, {str("request_id"), requestId}}, context, std::move(done));
}

void ApiClient::cancel(qint64 requestId, QObject* context, ApiCallback done) {
    send("POST", str("/api/v6/images/cancel"), Auth::ApiKey,
         QJsonObject{{str("key"), m_apiKey}, {str("request_id"), requestId}}, context, std::move(done));
}

void ApiClient::models(QObject* context, ApiCallback done, const QString& category) {
    QString path = str("/api/v1/models");
    if (!category.isEmpty()) {
        QUrlQuery query;
        query.addQueryItem(str("category"), category);
        path += QLatin1Char('?') + query.toString(QUrl::FullyEncoded);
    }
    send("GET", path, Auth::ApiKey, std::nullopt, context, std::move(done));
}

void ApiClient::history(int limit, int offset, QObject* context, ApiCallback done) {
    send("GET", QStringLiteral("/api/v1/history?limit=%1&offset=%2").arg(limit).arg(offset), Auth::ApiKey, std::nullopt,
         context, std::move(done));
}

void ApiClient::deleteHistory(qint64 id, QObject* context, ApiCallback done) {
    send("DELETE", QStringLiteral("/api/v1/history/%1").arg(id), Auth::ApiKey, std::nullopt, context, std::move(done));
}

void ApiClient::startTraining(TrainingMethod method, QJsonObject body, QObject* context, ApiCallback done) {
    body.insert(str("key"), m_apiKey);
    send("POST", trainingPath(method), Auth::ApiKey, body, context, std::move(done));
}

void ApiClient::trainingStatus(qint64 trainingId, QObject* context, ApiCallback done) {
    send("POST", QStringLiteral("/api/v3/fine_tune_status/%1").arg(trainingId), Auth::ApiKey,
         QJsonObject{{str("key"), m_apiKey}}, context, std::move(done));
}

void ApiClient::cancelTraining(qint64 trainingId, QObject* context, ApiCallback done) {
    send("POST", QStringLiteral("/api/v3/cancel_training/%1").arg(trainingId), Auth::ApiKey,
         QJsonObject{{str("key"), m_apiKey}}, context, std::move(done));
}

void ApiClient::trainings(QObject* context, ApiCallback done) {
    send("POST", str("/api/v3/finetune_list"), Auth::ApiKey, QJsonObject{{str("key"), m_apiKey}}, context,
         std::move(done));
}

void ApiClient::fetchImage(const QUrl& url, QObject* context, ImageCallback done) {
    QNetworkRequest request(m_baseUrl.resolved(url));
    request.setTransferTimeout(m_timeoutMs);
    QNetworkReply* reply = m_network.get(request);
    connect(reply, &QNetworkReply::finished, this, [reply] { reply->deleteLater(); });
    connect(reply, &QNetworkReply::finished, context ? context : this, [reply, done = std::move(done)] {
        const auto status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute);
        const QByteArray bytes = reply->readAll();
        if (!status.isValid()) {
            done({}, unreachableError(reply->errorString()));
        } else if (status.toInt() < 200 || status.toInt() >= 300) {
            done({}, mapHTTPResponse(status.toInt(), bytes, reply->rawHeader("Retry-After")));
        } else {
            done(bytes, std::nullopt);
        }
    });
}

}  // namespace easel::ui
