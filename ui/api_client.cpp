#include "api_client.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkReply>

namespace easel::ui {

ApiClient::ApiClient(QUrl baseUrl, QObject* parent) : QObject(parent), m_baseUrl(std::move(baseUrl)) {}

void ApiClient::checkHealth() {
    QNetworkRequest request(m_baseUrl.resolved(QUrl(QStringLiteral("/health"))));
    request.setTransferTimeout(5000);
    QNetworkReply* reply = m_network.get(request);
    connect(reply, &QNetworkReply::finished, this, [this, reply] {
        reply->deleteLater();
        if (reply->error() != QNetworkReply::NoError) {
            emit healthChecked(false, reply->errorString());
            return;
        }
        const auto doc = QJsonDocument::fromJson(reply->readAll()).object();
        emit healthChecked(doc.value(QStringLiteral("status")).toString() == QStringLiteral("ok"),
                           doc.value(QStringLiteral("version")).toString() + QStringLiteral(" · ") +
                               doc.value(QStringLiteral("device")).toString());
    });
}

}  // namespace easel::ui
