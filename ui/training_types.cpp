#include "ui/training_types.h"

#include <QBuffer>
#include <QCoreApplication>
#include <QJsonArray>
#include <QPainter>
#include <QRegularExpression>
#include <algorithm>
#include <cmath>
#include <optional>

namespace easel::ui {

namespace {

QString str(const char* s) { return QString::fromLatin1(s); }
QString tr(const char* text) { return QCoreApplication::translate("easel::ui::TrainPane", text); }

// A number sent as a number or as a string ("max_train_steps": "200" is accepted by the API too).
std::optional<double> number(const QJsonValue& value) {
    if (value.isDouble()) return value.toDouble();
    bool ok = false;
    const double parsed = value.toString().toDouble(&ok);
    return ok ? std::optional<double>(parsed) : std::nullopt;
}

// [[step, loss], ...]; also {"step":..,"loss":..} entries and bare losses (their index is the step).
QList<QPointF> lossCurve(const QJsonArray& array) {
    QList<QPointF> out;
    for (qsizetype i = 0; i < array.size(); ++i) {
        const QJsonValue v = array.at(i);
        std::optional<double> step;
        std::optional<double> loss;
        if (v.isArray()) {
            step = number(v.toArray().at(0));
            loss = number(v.toArray().at(1));
        } else if (v.isObject()) {
            step = number(v.toObject().value(str("step")));
            loss = number(v.toObject().value(str("loss")));
        } else {
            step = static_cast<double>(i + 1);
            loss = number(v);
        }
        if (step && loss && std::isfinite(*step) && std::isfinite(*loss)) out.append(QPointF(*step, *loss));
    }
    std::stable_sort(out.begin(), out.end(), [](const QPointF& a, const QPointF& b) { return a.x() < b.x(); });
    return out;
}

}  // namespace

QString trainingPath(TrainingMethod method) {
    return method == TrainingMethod::LoRA ? str("/api/v3/lora_fine_tune") : str("/api/v3/fine_tune");
}

QJsonObject trainingBody(const TrainingRequest& request, const QString& apiKey) {
    QJsonObject body{{str("key"), apiKey},
                     {str("instance_prompt"), request.instancePrompt},
                     {str("class_prompt"), request.classPrompt},
                     {str("base_model_id"), request.baseModelId},
                     {str("images"), QJsonArray::fromStringList(request.images)},
                     {str("seed"), request.seed},
                     {str("max_train_steps"), request.maxTrainSteps}};
    if (request.method == TrainingMethod::LoRA) {
        body.insert(str("negative_prompt"), request.negativePrompt);
        body.insert(str("lora_type"), str("lora"));
    }
    if (!request.trackId.isEmpty()) body.insert(str("track_id"), request.trackId);
    return body;
}

QString replyMessage(const QJsonObject& json) {
    for (const char* key : {"message", "messege"}) {
        const QString text = json.value(QLatin1String(key)).toString();
        if (!text.isEmpty()) return text;
    }
    return {};
}

TrainingStatus TrainingStatus::fromJSON(const QJsonObject& json, const TrainingStatus& fallback) {
    TrainingStatus s = fallback;
    if (const auto id = number(json.value(str("training_id")))) s.trainingId = static_cast<qint64>(*id);
    const QString status = json.value(str("status")).toString();
    const QString messege = json.value(str("messege")).toString();
    const QString message = json.value(str("message")).toString();
    // The stage: "training_status" where the server sends it (a cancel answer's "messege" is a sentence),
    // else the hosted API's "messege".
    QString stage = json.value(str("training_status")).toString();
    if (stage.isEmpty()) stage = !messege.isEmpty() ? messege : json.value(str("stage")).toString();
    const QString failed = str(stages::kFailed);
    if (status == str("error") || status == failed || stage == failed) {
        s.stage = failed;
        // The reason is in "message" (or "error"), or in "messege" when that is not just the stage name.
        for (const QString& why :
             {message, json.value(str("error")).toString(), messege, json.value(str("reason")).toString()}) {
            if (!why.isEmpty() && why != failed) {
                s.reason = why;
                break;
            }
        }
    } else if (status == str("cancelled")) {
        s.stage = str(stages::kCancelled);
    } else if (!stage.isEmpty()) {
        s.stage = stage;
    }
    // Within training_started: "class_images" (prior preservation draws them first), "training", "saving".
    s.trainerStage = json.value(str("trainer_stage")).toString();
    s.stageStep = static_cast<int>(number(json.value(str("stage_step"))).value_or(0));
    s.stageTotal = static_cast<int>(number(json.value(str("stage_total"))).value_or(0));
    if (json.value(str("data")).isString()) s.detail = json.value(str("data")).toString();
    // Step and ETA from their own fields, else from the "data" line that all servers send.
    static const QRegularExpression stepRe(str("Step\\s+(\\d+)\\s*/\\s*(\\d+)"));
    static const QRegularExpression etaRe(str("ETA\\s+([0-9.]+)"));
    if (const auto m = stepRe.match(s.detail); m.hasMatch()) {
        s.step = m.captured(1).toInt();
        s.totalSteps = m.captured(2).toInt();
    }
    if (const auto m = etaRe.match(s.detail); m.hasMatch()) s.etaSeconds = m.captured(1).toDouble();
    if (const auto v = number(json.value(str("step")))) s.step = static_cast<int>(*v);
    if (const auto v = number(json.value(str("total_steps")))) s.totalSteps = static_cast<int>(*v);
    // A null ETA (saving, not measured yet) clears the one of an earlier answer.
    if (json.contains(str("eta_seconds"))) s.etaSeconds = number(json.value(str("eta_seconds"))).value_or(-1);
    if (json.value(str("loss")).isArray()) s.loss = lossCurve(json.value(str("loss")).toArray());
    if (json.value(str("model_id")).isString() && !json.value(str("model_id")).toString().isEmpty())
        s.modelId = json.value(str("model_id")).toString();
    if (s.finished()) s.etaSeconds = -1;
    return s;
}

bool TrainingStatus::pastSteps() const {
    for (const char* s : {stages::kTrainingSuccess, stages::kCompressing, stages::kDeployingModel, stages::kModelReady})
        if (stage == QLatin1String(s)) return true;
    return false;
}

QList<ListedTraining> trainingsFromJSON(const QJsonObject& json) {
    QList<ListedTraining> out;
    const QJsonValue list = json.value(str("data")).isArray() ? json.value(str("data")) : json.value(str("trainings"));
    for (const auto& v : list.toArray()) {
        const QJsonObject entry = v.toObject();
        ListedTraining t;
        t.status = TrainingStatus::fromJSON(entry);
        if (t.status.trainingId == 0)
            t.status.trainingId = static_cast<qint64>(number(entry.value(str("id"))).value_or(0));
        if (t.status.trainingId == 0) continue;
        // A list entry may name its stage in "status" instead of "messege".
        if (const QString status = entry.value(str("status")).toString();
            t.status.stage.isEmpty() && status != str("success"))
            t.status.stage = status;
        for (const char* key : {"lora_type", "kind", "type", "method"}) {
            if (entry.value(QLatin1String(key)).toString().contains(str("lora"), Qt::CaseInsensitive))
                t.method = TrainingMethod::LoRA;
        }
        out.append(t);
    }
    return out;
}

QString stageText(const QString& stage) {
    struct Entry {
        const char* stage;
        const char* text;
    };
    static constexpr Entry kTexts[] = {
        {stages::kDeployingGPU, QT_TRANSLATE_NOOP("easel::ui::TrainPane", "Waiting for the GPU…")},
        {stages::kTrainingStarted, QT_TRANSLATE_NOOP("easel::ui::TrainPane", "Training")},
        {stages::kTrainingSuccess, QT_TRANSLATE_NOOP("easel::ui::TrainPane", "Training done")},
        {stages::kCompressing, QT_TRANSLATE_NOOP("easel::ui::TrainPane", "Saving the trained weights…")},
        {stages::kDeployingModel, QT_TRANSLATE_NOOP("easel::ui::TrainPane", "Installing the model…")},
        {stages::kModelReady, QT_TRANSLATE_NOOP("easel::ui::TrainPane", "Model ready")},
        {stages::kFailed, QT_TRANSLATE_NOOP("easel::ui::TrainPane", "Failed")},
        {stages::kCancelled, QT_TRANSLATE_NOOP("easel::ui::TrainPane", "Cancelled")},
    };
    for (const auto& entry : kTexts) {
        if (stage == QLatin1String(entry.stage)) return tr(entry.text);
    }
    return stage.isEmpty() ? tr("Starting…") : stage;
}

QString stageText(const TrainingStatus& status) {
    if (status.stage == QLatin1String(stages::kTrainingStarted)) {
        if (status.trainerStage == str("class_images")) return tr("Drawing class images");
        if (status.trainerStage == str("saving")) return tr("Saving the trained weights…");
    }
    return stageText(status.stage);
}

QString etaText(double seconds) {
    if (seconds < 0) return {};
    const int total = static_cast<int>(std::ceil(seconds));
    if (total < 60) return tr("about %1 s left").arg(total);
    if (total < 3600) return tr("about %1 min %2 s left").arg(total / 60).arg(total % 60);
    return tr("about %1 h %2 min left").arg(total / 3600).arg(total % 3600 / 60);
}

QString imageDataURL(const QImage& image, bool lossless) {
    QImage scaled = image;
    if (std::max(image.width(), image.height()) > kMaxTrainingImageSide)
        scaled =
            image.scaled(kMaxTrainingImageSide, kMaxTrainingImageSide, Qt::KeepAspectRatio, Qt::SmoothTransformation);
    if (!lossless && scaled.hasAlphaChannel()) {
        // JPEG has no alpha: what is transparent becomes white, not black.
        QImage flat(scaled.size(), QImage::Format_RGB32);
        flat.fill(Qt::white);
        QPainter(&flat).drawImage(0, 0, scaled);
        scaled = flat;
    }
    QByteArray bytes;
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    scaled.save(&buffer, lossless ? "PNG" : "JPEG", lossless ? -1 : 92);
    return (lossless ? str("data:image/png;base64,") : str("data:image/jpeg;base64,")) +
           QString::fromLatin1(bytes.toBase64());
}

}  // namespace easel::ui
