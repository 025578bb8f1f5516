#pragma once
// The fine-tuning routes of the hosted "Stable Diffusion API" (/api/v3/fine_tune, lora_fine_tune,
// fine_tune_status, cancel_training) as plain structs: the request the Train pane sends and the status
// it polls. Replies are parsed leniently, as that API spells its stage "messege" and a server may
// leave out any of the progress fields.

#include <QImage>
#include <QJsonObject>
#include <QList>
#include <QPointF>
#include <QString>
#include <QStringList>

namespace easel::ui {

enum class TrainingMethod { DreamBooth, LoRA };

// "/api/v3/fine_tune" (DreamBooth) or "/api/v3/lora_fine_tune".
QString trainingPath(TrainingMethod method);

struct TrainingRequest {
    TrainingMethod method = TrainingMethod::DreamBooth;
    QString baseModelId;
    QString instancePrompt;  // with a rare token: "a photo of zwx dog"
    QString classPrompt;     // the same without it: "a photo of a dog"
    QString negativePrompt;  // LoRA only
    QStringList images;      // data: URLs
    qint64 seed = 0;
    int maxTrainSteps = 0;
    QString trackId;  // empty: not sent
};

// The JSON body of the start request, "key" included.
QJsonObject trainingBody(const TrainingRequest& request, const QString& apiKey);

// The stages a training goes through, in order, as the API names them.
namespace stages {
inline constexpr auto kDeployingGPU = "deploying_gpu";
inline constexpr auto kTrainingStarted = "training_started";
inline constexpr auto kTrainingSuccess = "training_success";
inline constexpr auto kCompressing = "trained_model_compressing";
inline constexpr auto kDeployingModel = "deploying_model";
inline constexpr auto kModelReady = "model_ready";
inline constexpr auto kFailed = "failed";
inline constexpr auto kCancelled = "cancelled";
}  // namespace stages

struct TrainingStatus {
    qint64 trainingId = 0;
    QString stage;   // one of stages::k*, or whatever else the server said
    QString detail;  // the "data" line: "Step 40/200, loss 0.12, ETA 31 s"
    QString reason;  // why it failed, when it did
    QString modelId;
    QString trainerStage;  // within training_started: "class_images", "training", "saving"; may be empty
    int stageStep = 0;     // the trainer stage's own count (class images drawn so far, ...)
    int stageTotal = 0;
    int step = 0;
    int totalSteps = 0;
    double etaSeconds = -1;  // -1: unknown
    QList<QPointF> loss;     // (step, loss), in step order

    bool ready() const { return stage == QLatin1String(stages::kModelReady); }
    bool failed() const { return stage == QLatin1String(stages::kFailed); }
    bool cancelled() const { return stage == QLatin1String(stages::kCancelled); }
    bool finished() const { return ready() || failed() || cancelled(); }
    // After the last step: the server saves and installs the model (the progress bar stays full).
    bool pastSteps() const;

    // A start, status or list-entry reply; `fallback` supplies what the reply leaves out.
    static TrainingStatus fromJSON(const QJsonObject& json, const TrainingStatus& fallback);
    static TrainingStatus fromJSON(const QJsonObject& json) { return fromJSON(json, TrainingStatus()); }
};

// The entries of a finetune_list answer ("data", or "trainings", holding objects), with the method
// each was trained with.
struct ListedTraining {
    TrainingMethod method = TrainingMethod::DreamBooth;
    TrainingStatus status;
};
QList<ListedTraining> trainingsFromJSON(const QJsonObject& json);

// "Waiting for a GPU", "Training", ..., for the stage label.
QString stageText(const QString& stage);
// The same, naming the trainer's own stage within training_started ("Drawing class images").
QString stageText(const TrainingStatus& status);
// "about 2 min 5 s left"; empty when unknown.
QString etaText(double seconds);

// The text of an error reply: "message", else the API's own "messege".
QString replyMessage(const QJsonObject& json);

// A training image as a data: URL. Large photos are scaled to kMaxTrainingImageSide (training runs at
// 512 or 1024 anyway, and twenty full-size photos would make a request of hundreds of megabytes); PNG
// stays PNG, the rest is sent as JPEG.
inline constexpr int kMaxTrainingImageSide = 1024;
QString imageDataURL(const QImage& image, bool lossless);

}  // namespace easel::ui
