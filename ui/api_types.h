#pragma once
// The REST API's replies as plain structs, parsed leniently (a missing key keeps the default), so the
// widgets never touch JSON.

#include <QImage>
#include <QJsonObject>
#include <QList>
#include <QString>
#include <QStringList>
#include <optional>

namespace easel::ui {

struct AccountInfo {
    qint64 userId = 0;
    QString email;
    QString plan;
    int quotaUsed = 0;
    std::optional<int> quotaLimit;  // nullopt: unlimited plan
    std::optional<int> quotaLeft;
    int requestsPerMinute = 0;
    int maxQueued = 0;
    int maxConcurrent = 0;
    int maxSteps = 0;
    int priority = 0;

    static AccountInfo fromJSON(const QJsonObject& json);
    // "7 of 20 free generations" / "7 generations (unlimited plan)"
    QString quotaText() const;
};

struct UsageEntry {
    qint64 requestId = 0;
    QString createdAt;
    int images = 0;
    QString kind;
};
QList<UsageEntry> usageFromJSON(const QJsonObject& json);

struct ModelInfo {
    QString modelId;
    QString name;
    QString description;
    bool isDefault = false;
    int defaultWidth = 512;
    int defaultHeight = 512;
    int defaultSteps = 20;
    double defaultGuidance = 7.5;
    // "stable_diffusion", "lora" or "embeddings" (model_category); one list holds all three.
    QString category = QStringLiteral("stable_diffusion");
    QString family{};  // "sd1", "sd2", ...; empty when the server does not know

    bool isLora() const { return category == QLatin1String("lora"); }
    bool isEmbedding() const { return category == QLatin1String("embeddings"); }
    bool isCheckpoint() const { return !isLora() && !isEmbedding(); }
    // Whether an adapter (LoRA, embedding) works with a model of `modelFamily`; an unknown family on
    // either side fits, as the server decides it.
    bool fitsFamily(const QString& modelFamily) const {
        return family.isEmpty() || modelFamily.isEmpty() || family == modelFamily;
    }
};
QList<ModelInfo> modelsFromJSON(const QJsonObject& json);
// The entries of one category, in the server's order.
QList<ModelInfo> modelsOfCategory(const QList<ModelInfo>& models, const QString& category);

// A reply of submit or fetch: either finished (output filled) or still processing.
struct GenerationStatus {
    qint64 id = 0;
    bool finished = false;
    bool cancelled = false;  // by this client, another client with the same key, or an admin
    QStringList output;      // image URLs, when finished
    double etaSeconds = -1;
    int queuePosition = -1;
    int step = 0;
    int totalSteps = 0;
    QImage preview;  // what the running sample is becoming, when the server sends one
    double generationTime = 0;
    QJsonObject meta;

    static GenerationStatus fromJSON(const QJsonObject& json);
};

struct HistoryItem {
    qint64 id = 0;
    QString status;
    QString createdAt;
    QStringList output;
    QJsonObject meta;
};
struct HistoryPage {
    int total = 0;
    QList<HistoryItem> items;
    static HistoryPage fromJSON(const QJsonObject& json);
};

}  // namespace easel::ui
