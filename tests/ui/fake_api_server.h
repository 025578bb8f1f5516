#pragma once
// A tiny HTTP/1.1 server on 127.0.0.1 for ApiClient tests: records each request and answers from a
// handler with canned JSON. One request per connection (it answers with Connection: close).

#include <QHostAddress>
#include <QJsonDocument>
#include <QJsonObject>
#include <QList>
#include <QMap>
#include <QTcpServer>
#include <QTcpSocket>
#include <functional>
#include <memory>

namespace easel::ui::testing {

struct RecordedRequest {
    QByteArray method;
    QString path;                          // with the query
    QMap<QByteArray, QByteArray> headers;  // lower-case names
    QByteArray body;
    QJsonObject json() const { return QJsonDocument::fromJson(body).object(); }
};

struct CannedResponse {
    int status = 200;
    QByteArray body;
    QList<QPair<QByteArray, QByteArray>> headers;
    QByteArray contentType = "application/json";

    static CannedResponse json(int status, const QJsonObject& object) {
        return {status, QJsonDocument(object).toJson(QJsonDocument::Compact), {}, "application/json"};
    }
};

class FakeApiServer {
public:
    using Handler = std::function<CannedResponse(const RecordedRequest&)>;

    FakeApiServer() {
        m_server.listen(QHostAddress::LocalHost, 0);
        QObject::connect(&m_server, &QTcpServer::newConnection, &m_server, [this] {
            while (QTcpSocket* socket = m_server.nextPendingConnection()) {
                auto buffer = std::make_shared<QByteArray>();
                QObject::connect(socket, &QTcpSocket::readyRead, socket, [this, socket, buffer] {
                    buffer->append(socket->readAll());
                    tryAnswer(socket, *buffer);
                });
                QObject::connect(socket, &QTcpSocket::disconnected, socket, &QObject::deleteLater);
            }
        });
    }

    QUrl url() const { return QUrl(QStringLiteral("http://127.0.0.1:%1").arg(m_server.serverPort())); }
    void setHandler(Handler handler) { m_handler = std::move(handler); }
    const QList<RecordedRequest>& requests() const { return m_requests; }
    void close() { m_server.close(); }

private:
    void tryAnswer(QTcpSocket* socket, const QByteArray& data) {
        const auto headerEnd = data.indexOf("\r\n\r\n");
        if (headerEnd < 0) return;
        RecordedRequest request;
        const auto lines = data.left(headerEnd).split('\n');
        const auto requestLine = lines.front().trimmed().split(' ');
        request.method = requestLine.value(0);
        request.path = QString::fromUtf8(requestLine.value(1));
        for (qsizetype i = 1; i < lines.size(); ++i) {
            const auto colon = lines[i].indexOf(':');
            if (colon > 0)
                request.headers.insert(lines[i].left(colon).trimmed().toLower(), lines[i].mid(colon + 1).trimmed());
        }
        const int length = request.headers.value("content-length", "0").toInt();
        if (data.size() < headerEnd + 4 + length) return;
        request.body = data.mid(headerEnd + 4, length);
        m_requests.append(request);
        const CannedResponse response = m_handler ? m_handler(request) : CannedResponse::json(404, {});
        QByteArray out =
            "HTTP/1.1 " + QByteArray::number(response.status) + " X\r\nContent-Type: " + response.contentType +
            "\r\nContent-Length: " + QByteArray::number(response.body.size()) + "\r\nConnection: close\r\n";
        for (const auto& [name, value] : response.headers) out += name + ": " + value + "\r\n";
        socket->write(out + "\r\n" + response.body);
        socket->disconnectFromHost();
    }

    QTcpServer m_server;
    Handler m_handler;
    QList<RecordedRequest> m_requests;
};

}  // namespace easel::ui::testing
