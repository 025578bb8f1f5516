#pragma once
// The /api/v3 fine-tuning routes as the Train pane tests need them: a start that answers with a
// training id, status polls answered from a script (the last answer repeats), cancel, and the list.
// Plugs into a FakeApiServer handler or into FakeEaselBackend::extraRoutes.

#include <QJsonArray>
#include <optional>

#include "fake_api_server.h"

namespace easel::ui::testing {

class FakeTrainingRoutes {
public:
    QString apiKey = QStringLiteral("key-1");
    qint64 trainingId = 7;
    QString modelId = QStringLiteral("zwx-dog");
    // The answer to a start; replace it to make the start fail.
    std::optional<CannedResponse> startAnswer;
    // Answers to the status polls in order; the last one repeats.
    QList<CannedResponse> statusScript;
    int statusPolls = 0;
    QList<qint64> cancelled;
    // The stage a cancel answers with: a running training only stops at its next step.
    QString cancelStage = QStringLiteral("cancelled");
    // What finetune_list answers, in "data".
    QJsonArray listed;
    // Called once the script's model_ready answer goes out (a test installs the model in its list).
    std::function<void()> onModelReady;

    static CannedResponse status(const QString& stage, int step = 0, int total = 0, double eta = -1,
                                 const QJsonArray& loss = {}) {
        QJsonObject json{{QStringLiteral("status"), QStringLiteral("success")}, {QStringLiteral("messege"), stage}};
        if (total > 0) {
            json.insert(QStringLiteral("data"), QStringLiteral("Step %1/%2, loss %3, ETA %4 s")
                                                    .arg(step)
                                                    .arg(total)
                                                    .arg(loss.isEmpty() ? 0.0 : loss.last().toArray().at(1).toDouble())
                                                    .arg(eta));
            json.insert(QStringLiteral("step"), step);
            json.insert(QStringLiteral("total_steps"), total);
        }
        if (eta >= 0) json.insert(QStringLiteral("eta_seconds"), eta);
        if (!loss.isEmpty()) json.insert(QStringLiteral("loss"), loss);
        return CannedResponse::json(200, json);
    }
    // [[1, first], [2, first - drop], ...]: a falling curve of `count` points.
    static QJsonArray falling(int count, double first = 0.5, double drop = 0.03) {
        QJsonArray out;
        for (int i = 0; i < count; ++i) out.append(QJsonArray{i + 1, first - drop * i + (i % 2 ? 0.02 : -0.02)});
        return out;
    }

    std::optional<CannedResponse> handle(const RecordedRequest& r) {
        const QString path = r.path.section(QLatin1Char('?'), 0, 0);
        if (!path.startsWith(QStringLiteral("/api/v3/"))) return std::nullopt;
        if (r.json().value(QStringLiteral("key")).toString() != apiKey)
            return CannedResponse::json(401, {{QStringLiteral("status"), QStringLiteral("error")},
                                              {QStringLiteral("message"), QStringLiteral("invalid API key")}});
        if (path == QStringLiteral("/api/v3/fine_tune") || path == QStringLiteral("/api/v3/lora_fine_tune")) {
            if (startAnswer) return *startAnswer;
            return CannedResponse::json(200, {{QStringLiteral("status"), QStringLiteral("success")},
                                              {QStringLiteral("messege"), QStringLiteral("deploying_gpu")},
                                              {QStringLiteral("training_id"), trainingId},
                                              {QStringLiteral("model_id"), modelId}});
        }
        if (path == QStringLiteral("/api/v3/fine_tune_status/%1").arg(trainingId)) {
            if (statusScript.isEmpty()) return status(QStringLiteral("deploying_gpu"));
            CannedResponse answer = statusScript.value(statusPolls, statusScript.last());
            ++statusPolls;
            if (answer.body.contains("model_ready") && onModelReady) onModelReady();
            return answer;
        }
        if (path == QStringLiteral("/api/v3/cancel_training/%1").arg(trainingId)) {
            cancelled.append(trainingId);
            const QString text = cancelStage == QStringLiteral("cancelled")
                                     ? QStringLiteral("training cancelled (not charged)")
                                     : QStringLiteral("cancellation requested; the training stops at its next step");
            return CannedResponse::json(200, {{QStringLiteral("status"), QStringLiteral("success")},
                                              {QStringLiteral("training_id"), trainingId},
                                              {QStringLiteral("training_status"), cancelStage},
                                              {QStringLiteral("message"), text},
                                              {QStringLiteral("messege"), text}});
        }
        if (path == QStringLiteral("/api/v3/finetune_list"))
            return CannedResponse::json(
                200, {{QStringLiteral("status"), QStringLiteral("success")}, {QStringLiteral("data"), listed}});
        return CannedResponse::json(404, {{QStringLiteral("status"), QStringLiteral("error")},
                                          {QStringLiteral("messege"), QStringLiteral("no such training")}});
    }
};

}  // namespace easel::ui::testing
