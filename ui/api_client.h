#pragma once
// The desktop app's only way to the backend: the same REST API that external clients use. Every call
// is asynchronous; its callback runs on the UI thread once the reply is in, and not at all when the
// `context` object given with it has been destroyed by then.

#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QObject>
#include <QUrl>
#include <functional>
#include <optional>

#include "ui/api_error.h"
#include "ui/generation_params.h"
#include "ui/training_types.h"

namespace easel::ui {

struct ApiResult {
    QJsonObject json;
    std::optional<ApiError> error;
    bool ok() const { return !error.has_value(); }
};
using ApiCallback = std::function<void(const ApiResult&)>;
using ImageCallback = std::function<void(const QByteArray& bytes, const std::optional<ApiError>& error)>;

class ApiClient : public QObject {
    Q_OBJECT
public:
    explicit ApiClient(QUrl baseUrl, QObject* parent = nullptr);
    QUrl baseUrl() const { return m_baseUrl; }
    void setBaseUrl(QUrl baseUrl) { m_baseUrl = std::move(baseUrl); }

    // Credentials: the session token (from login) for /api/v1/account*, the API key for generation,
    // models and history. login/signup/view/regenerate store what they receive.
    QString sessionToken() const { return m_sessionToken; }
    void setSessionToken(const QString& token);
    QString apiKey() const { return m_apiKey; }
    void setApiKey(const QString& key);
    void setTransferTimeout(int milliseconds) { m_timeoutMs = milliseconds; }

    // GET /health; emits healthChecked(true, "version · device") or (false, reason).
    void checkHealth();

    void signup(const QString& email, const QString& password, QObject* context, ApiCallback done);
    void login(const QString& email, const QString& password, QObject* context, ApiCallback done);
    void logout(QObject* context, ApiCallback done);

    void account(QObject* context, ApiCallback done);
    // With `alsoReplaceKey` the answer carries the new api_key, which is stored like a regenerated one.
    void changePassword(const QString& oldPassword, const QString& newPassword, bool alsoReplaceKey, QObject* context,
                        ApiCallback done);
    void viewApiKey(const QString& password, QObject* context, ApiCallback done);
    void regenerateApiKey(const QString& password, QObject* context, ApiCallback done);
    void usage(QObject* context, ApiCallback done);
    void deleteAccount(const QString& password, QObject* context, ApiCallback done);

    // `body` from requestBody(); its "key" is replaced by the current API key.
    void submit(GenerationKind kind, QJsonObject body, QObject* context, ApiCallback done);
    void fetch(qint64 requestId, QObject* context, ApiCallback done);
    void cancel(qint64 requestId, QObject* context, ApiCallback done);

    // Every model, LoRA and embedding; with a `category` ("lora", "embeddings") only those.
    void models(QObject* context, ApiCallback done, const QString& category = {});
    void history(int limit, int offset, QObject* context, ApiCallback done);
    void deleteHistory(qint64 id, QObject* context, ApiCallback done);

    // Fine-tuning (/api/v3): start one with `body` from trainingBody() (its "key" is replaced by the
    // current API key), poll its status, cancel it, list the caller's trainings.
    void startTraining(TrainingMethod method, QJsonObject body, QObject* context, ApiCallback done);
    void trainingStatus(qint64 trainingId, QObject* context, ApiCallback done);
    void cancelTraining(qint64 trainingId, QObject* context, ApiCallback done);
    void trainings(QObject* context, ApiCallback done);

    // A plain GET of an image URL from a reply (relative URLs resolve against the base URL).
    void fetchImage(const QUrl& url, QObject* context, ImageCallback done);

signals:
    void healthChecked(bool ok, const QString& detail);
    void sessionTokenChanged(const QString& token);
    void apiKeyChanged(const QString& key);
    // Every failed call, besides its callback: lets the window react to 401 in one place.
    void requestFailed(const easel::ui::ApiError& error);

private:
    enum class Auth { None, Session, ApiKey };
    void send(const QByteArray& method, const QString& path, Auth auth, const std::optional<QJsonObject>& body,
              QObject* context, ApiCallback done);
    QNetworkRequest makeRequest(const QUrl& url, Auth auth) const;

    QUrl m_baseUrl;
    QString m_sessionToken;
    QString m_apiKey;
    int m_timeoutMs = 30000;
    QNetworkAccessManager m_network;
};

}  // namespace easel::ui
