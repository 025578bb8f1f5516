#pragma once
// The desktop app's only way to the backend: the same REST API that external clients use.

#include <QNetworkAccessManager>
#include <QObject>
#include <QUrl>

namespace easel::ui {

class ApiClient : public QObject {
    Q_OBJECT
public:
    explicit ApiClient(QUrl baseUrl, QObject* parent = nullptr);
    QUrl baseUrl() const { return m_baseUrl; }

    // GET /health; emits healthChecked(true, "version · device") or (false, reason).
    void checkHealth();

signals:
    void healthChecked(bool ok, const QString& detail);

private:
    QUrl m_baseUrl;
    QNetworkAccessManager m_network;
};

}  // namespace easel::ui
