#include "ui/api_types.h"

#include <QCoreApplication>
#include <QJsonArray>

namespace easel::ui {

namespace {

qint64 integer(const QJsonObject& json, const char* key, qint64 fallback = 0) {
    const auto v = json.value(QLatin1String(key));
    if (v.isDouble()) return static_cast<qint64>(v.toDouble());
    bool ok = false;
    const qint64 parsed = v.toString().toLongLong(&ok);
    return ok ? parsed : fallback;
}

std::optional<int> optionalInt(const QJsonObject& json, const char* key) {
    const auto v = json.value(QLatin1String(key));
    if (v.isDouble()) return static_cast<int>(v.toDouble());
    return std::nullopt;
}

QStringList strings(const QJsonValue& value) {
    QStringList out;
    for (const auto& v : value.toArray()) out << v.toString();
    return out;
}

}  // namespace

AccountInfo AccountInfo::fromJSON(const QJsonObject& json) {
    AccountInfo a;
    a.userId = integer(json, "user_id");
    a.email = json.value(QStringLiteral("email")).toString();
    a.plan = json.value(QStringLiteral("plan")).toString();
    const auto quota = json.value(QStringLiteral("quota")).toObject();
    a.quotaUsed = static_cast<int>(integer(quota, "used"));
    a.quotaLimit = optionalInt(quota, "limit");
    a.quotaLeft = optionalInt(quota, "left");
    const auto limits = json.value(QStringLiteral("limits")).toObject();
    a.requestsPerMinute = static_cast<int>(integer(limits, "requests_per_minute"));
    a.maxQueued = static_cast<int>(integer(limits, "max_queued"));
    a.maxConcurrent = static_cast<int>(integer(limits, "max_concurrent"));
    a.maxSteps = static_cast<int>(integer(limits, "max_steps"));
    a.priority = static_cast<int>(integer(limits, "priority"));
    return a;
}

QString AccountInfo::quotaText() const {
    if (!quotaLimit) {
        const char* text =
            quotaUsed == 1 ? "%1 generation (%2 plan, unlimited)" : "%1 generations (%2 plan, unlimited)";
        return QCoreApplication::translate("easel::ui::AccountInfo", text).arg(quotaUsed).arg(plan);
    }
    return QCoreApplication::translate("easel::ui::AccountInfo", "%1 of %2 %3 generations")
        .arg(quotaUsed)
        .arg(*quotaLimit)
        .arg(plan);
}

QList<UsageEntry> usageFromJSON(const QJsonObject& json) {
    QList<UsageEntry> out;
    for (const auto& v : json.value(QStringLiteral("usage")).toArray()) {
        const auto o = v.toObject();
        out.append({integer(o, "request_id"), o.value(QStringLiteral("created_at")).toString(),
                    static_cast<int>(integer(o, "images")), o.value(QStringLiteral("kind")).toString()});
    }
    return out;
}

QList<ModelInfo> modelsFromJSON(const QJsonObject& json) {
    QList<ModelInfo> out;
    for (const auto& v : json.value(QStringLiteral("models")).toArray()) {
        const auto o = v.toObject();
        ModelInfo m;
        m.modelId = o.value(QStringLiteral("model_id")).toString();
        m.name = o.value(QStringLiteral("name")).toString(m.modelId);
        m.description = o.value(QStringLiteral("description")).toString();
        m.isDefault = o.value(QStringLiteral("default")).toBool();
        m.defaultWidth = static_cast<int>(integer(o, "default_width", m.defaultWidth));
        m.defaultHeight = static_cast<int>(integer(o, "default_height", m.defaultHeight));
        m.defaultSteps = static_cast<int>(integer(o, "default_steps", m.defaultSteps));
        m.defaultGuidance = o.value(QStringLiteral("default_guidance_scale")).toDouble(m.defaultGuidance);
        m.category = o.value(QStringLiteral("model_category")).toString(m.category);
        m.family = o.value(QStringLiteral("family")).toString();  // null: unknown
        out.append(m);
    }
    return out;
}

QList<ModelInfo> modelsOfCategory(const QList<ModelInfo>& models, const QString& category) {
    QList<ModelInfo> out;
    for (const auto& m : models) {
        if (m.category == category || (category == QLatin1String("stable_diffusion") && m.isCheckpoint()))
            out.append(m);
    }
    return out;
}

GenerationStatus GenerationStatus::fromJSON(const QJsonObject& json) {
    GenerationStatus s;
    s.id = integer(json, "id");
    const QString status = json.value(QStringLiteral("status")).toString();
    s.finished = status == QStringLiteral("success");
    s.cancelled = status == QStringLiteral("cancelled");
    s.output = strings(json.value(QStringLiteral("output")));
    const auto eta = json.value(QStringLiteral("eta"));
    if (eta.isDouble()) s.etaSeconds = eta.toDouble();
    s.queuePosition = static_cast<int>(integer(json, "queue_position", -1));
    const auto progress = json.value(QStringLiteral("progress")).toObject();
    s.step = static_cast<int>(integer(progress, "step"));
    s.totalSteps = static_cast<int>(integer(progress, "total"));
    const QString preview = progress.value(QStringLiteral("preview")).toString();
    const QString pngPrefix = QStringLiteral("data:image/png;base64,");
    if (preview.startsWith(pngPrefix))
        s.preview.loadFromData(QByteArray::fromBase64(preview.mid(pngPrefix.size()).toLatin1()), "PNG");
    s.generationTime = json.value(QStringLiteral("generationTime")).toDouble();
    s.meta = json.value(QStringLiteral("meta")).toObject();
    return s;
}

HistoryPage HistoryPage::fromJSON(const QJsonObject& json) {
    HistoryPage page;
    page.total = static_cast<int>(integer(json, "total"));
    for (const auto& v : json.value(QStringLiteral("items")).toArray()) {
        const auto o = v.toObject();
        page.items.append({integer(o, "id"), o.value(QStringLiteral("status")).toString(),
                           o.value(QStringLiteral("created_at")).toString(), strings(o.value(QStringLiteral("output"))),
                           o.value(QStringLiteral("meta")).toObject()});
    }
    return page;
}

}  // namespace easel::ui
