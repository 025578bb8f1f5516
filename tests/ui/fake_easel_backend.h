#pragma once
// A stateful stand-in for the Easel REST API, enough for the window tests until the real endpoints
// land: one account, one model, generations that take two polls, history, key regeneration.

#include <QBuffer>
#include <QImage>
#include <QJsonArray>
#include <QUrlQuery>
#include <optional>

#include "fake_api_server.h"

namespace easel::ui::testing {

class FakeEaselBackend {
public:
    FakeEaselBackend() {
        m_server.setHandler([this](const RecordedRequest& r) {
            if (extraRoutes) {
                if (auto answer = extraRoutes(r)) return *answer;
            }
            return handle(r);
        });
    }
    QUrl url() const { return m_server.url(); }
    const QList<RecordedRequest>& requests() const { return m_server.requests(); }

    QString apiKey = QStringLiteral("key-1");
    QString token = QStringLiteral("token-1");
    QString password = QStringLiteral("secret");
    int quotaUsed = 7;
    int quotaLimit = 20;
    int pollsPerJob = 2;  // fetches answered "processing" before "success"
    bool quotaExhausted = false;
    QList<qint64> cancelled;
    // Listed by /api/v1/models after the built-in model (LoRAs, embeddings, other checkpoints).
    QJsonArray extraModels;
    // Routes this fake does not know (the training routes): answered here when it returns one.
    std::function<std::optional<CannedResponse>(const RecordedRequest&)> extraRoutes;

    static QByteArray png(QColor colour, int size = 64) {
        QImage image(size, size, QImage::Format_RGB32);
        image.fill(colour);
        QByteArray bytes;
        QBuffer buffer(&bytes);
        buffer.open(QIODevice::WriteOnly);
        image.save(&buffer, "PNG");
        return bytes;
    }

private:
    struct Job {
        qint64 id;
        QJsonObject request;
        int polls = 0;
        bool done = false;
    };

    static QJsonObject error(const QString& message) {
        return {{QStringLiteral("status"), QStringLiteral("error")}, {QStringLiteral("message"), message}};
    }
    QString imageUrl(qint64 id) const { return url().toString() + QStringLiteral("/images/%1.png").arg(id); }

    QJsonObject finished(const Job& job) const {
        QJsonObject meta = job.request;
        meta.remove(QStringLiteral("key"));
        meta.remove(QStringLiteral("init_image"));
        meta.remove(QStringLiteral("mask_image"));
        meta.insert(QStringLiteral("seed"), job.request.value(QStringLiteral("seed")).isNull()
                                                ? 1234
                                                : job.request.value(QStringLiteral("seed")).toInteger());
        return {{QStringLiteral("status"), QStringLiteral("success")},
                {QStringLiteral("id"), job.id},
                {QStringLiteral("output"), QJsonArray{imageUrl(job.id)}},
                {QStringLiteral("generationTime"), 1.2},
                {QStringLiteral("meta"), meta}};
    }

    QJsonObject processing(const Job& job) const {
        return {{QStringLiteral("status"), QStringLiteral("processing")},
                {QStringLiteral("id"), job.id},
                {QStringLiteral("eta"), 3},
                {QStringLiteral("queue_position"), 0},
                {QStringLiteral("progress"),
                 QJsonObject{{QStringLiteral("step"), job.polls * 5}, {QStringLiteral("total"), 20}}}};
    }

    CannedResponse handle(const RecordedRequest& r) {
        const QString path = r.path.section(QLatin1Char('?'), 0, 0);
        const auto json = r.json();
        const bool keyOk =
            json.value(QStringLiteral("key")).toString() == apiKey || r.headers.value("x-api-key") == apiKey.toUtf8();
        const bool tokenOk = r.headers.value("authorization") == "Bearer " + token.toUtf8();
        if (path.startsWith(QStringLiteral("/images/"))) {
            return {200, png(QColor(200, 40, 40)), {}, "image/png"};
        }
        if (path == QStringLiteral("/health")) {
            return CannedResponse::json(200, {{QStringLiteral("status"), QStringLiteral("ok")},
                                              {QStringLiteral("version"), QStringLiteral("test")},
                                              {QStringLiteral("device"), QStringLiteral("cpu")}});
        }
        if (path == QStringLiteral("/api/v1/auth/login")) {
            if (json.value(QStringLiteral("password")).toString() != password)
                return CannedResponse::json(401, error(QStringLiteral("wrong email or password")));
            return CannedResponse::json(200, {{QStringLiteral("status"), QStringLiteral("success")},
                                              {QStringLiteral("token"), token},
                                              {QStringLiteral("user_id"), 1}});
        }
        if (path.startsWith(QStringLiteral("/api/v1/account"))) {
            if (!tokenOk) return CannedResponse::json(401, error(QStringLiteral("invalid session")));
            if (path.endsWith(QStringLiteral("/view"))) {
                if (json.value(QStringLiteral("password")).toString() != password)
                    return CannedResponse::json(401, error(QStringLiteral("wrong password")));
                return CannedResponse::json(
                    200, {{QStringLiteral("status"), QStringLiteral("success")}, {QStringLiteral("api_key"), apiKey}});
            }
            if (path.endsWith(QStringLiteral("/regenerate"))) {
                if (json.value(QStringLiteral("password")).toString() != password)
                    return CannedResponse::json(401, error(QStringLiteral("wrong password")));
                apiKey = QStringLiteral("key-%1").arg(m_nextKey++);
                return CannedResponse::json(
                    200, {{QStringLiteral("status"), QStringLiteral("success")}, {QStringLiteral("api_key"), apiKey}});
            }
            if (path.endsWith(QStringLiteral("/usage"))) {
                QJsonArray usage;
                for (const auto& job : m_jobs)
                    usage.append(QJsonObject{{QStringLiteral("request_id"), job.id},
                                             {QStringLiteral("created_at"), QStringLiteral("2026-11-26T14:00:00Z")},
                                             {QStringLiteral("images"), 1},
                                             {QStringLiteral("kind"), QStringLiteral("text2img")}});
                return CannedResponse::json(
                    200, {{QStringLiteral("status"), QStringLiteral("success")}, {QStringLiteral("usage"), usage}});
            }
            return CannedResponse::json(
                200, {{QStringLiteral("status"), QStringLiteral("success")},
                      {QStringLiteral("user_id"), 1},
                      {QStringLiteral("email"), QStringLiteral("owner@easel.local")},
                      {QStringLiteral("plan"), QStringLiteral("free")},
                      {QStringLiteral("quota"), QJsonObject{{QStringLiteral("used"), quotaUsed},
                                                            {QStringLiteral("limit"), quotaLimit},
                                                            {QStringLiteral("left"), quotaLimit - quotaUsed}}},
                      {QStringLiteral("limits"), QJsonObject{{QStringLiteral("requests_per_minute"), 10},
                                                             {QStringLiteral("max_queued"), 5},
                                                             {QStringLiteral("max_concurrent"), 1},
                                                             {QStringLiteral("max_steps"), 50},
                                                             {QStringLiteral("priority"), 0}}}});
        }
        if (!keyOk) return CannedResponse::json(401, error(QStringLiteral("invalid API key")));
        if (path == QStringLiteral("/api/v1/models")) {
            QJsonArray models{QJsonObject{{QStringLiteral("model_id"), QStringLiteral("easel-shapes-64")},
                                          {QStringLiteral("name"), QStringLiteral("Easel shapes")},
                                          {QStringLiteral("model_category"), QStringLiteral("stable_diffusion")},
                                          {QStringLiteral("family"), QStringLiteral("sd1")},
                                          {QStringLiteral("default"), true},
                                          {QStringLiteral("default_width"), 64},
                                          {QStringLiteral("default_height"), 64},
                                          {QStringLiteral("default_steps"), 20}}};
            for (const auto& m : extraModels) models.append(m);
            return CannedResponse::json(
                200, {{QStringLiteral("status"), QStringLiteral("success")}, {QStringLiteral("models"), models}});
        }
        if (path == QStringLiteral("/api/v1/history")) {
            const QUrlQuery query(r.path.section(QLatin1Char('?'), 1));
            const int limit = query.queryItemValue(QStringLiteral("limit")).toInt();
            const int offset = query.queryItemValue(QStringLiteral("offset")).toInt();
            QJsonArray items;
            QList<Job> done;
            for (const auto& job : m_jobs)
                if (job.done) done.prepend(job);
            for (int i = offset; i < std::min<int>(offset + limit, done.size()); ++i) {
                auto f = finished(done[i]);
                f.insert(QStringLiteral("created_at"), QStringLiteral("2026-11-26T14:00:00Z"));
                items.append(f);
            }
            return CannedResponse::json(200, {{QStringLiteral("status"), QStringLiteral("success")},
                                              {QStringLiteral("total"), static_cast<int>(done.size())},
                                              {QStringLiteral("items"), items}});
        }
        if (path.startsWith(QStringLiteral("/api/v1/history/")) && r.method == "DELETE") {
            const qint64 id = path.section(QLatin1Char('/'), -1).toLongLong();
            m_jobs.removeIf([id](const Job& j) { return j.id == id; });
            return CannedResponse::json(200, {{QStringLiteral("status"), QStringLiteral("success")}});
        }
        if (path.startsWith(QStringLiteral("/api/v6/images/")) && !path.endsWith(QStringLiteral("fetch")) &&
            !path.endsWith(QStringLiteral("cancel"))) {
            if (quotaExhausted)
                return CannedResponse::json(402, error(QStringLiteral("20 of 20 free generations used")));
            ++quotaUsed;
            m_jobs.append({m_nextJob++, json});
            return CannedResponse::json(200, processing(m_jobs.back()));
        }
        const qint64 id = json.value(QStringLiteral("request_id")).toInteger();
        for (auto& job : m_jobs) {
            if (job.id != id) continue;
            if (path.endsWith(QStringLiteral("cancel"))) {
                cancelled.append(id);
                m_jobs.removeIf([id](const Job& j) { return j.id == id; });
                return CannedResponse::json(200, {{QStringLiteral("status"), QStringLiteral("success")}});
            }
            if (++job.polls > pollsPerJob) job.done = true;
            return CannedResponse::json(200, job.done ? finished(job) : processing(job));
        }
        return CannedResponse::json(404, error(QStringLiteral("no such request")));
    }

    FakeApiServer m_server;
    QList<Job> m_jobs;
    qint64 m_nextJob = 12;
    int m_nextKey = 2;
};

}  // namespace easel::ui::testing
