#include "ui/generation_params.h"

#include <QBuffer>
#include <QJsonArray>
#include <algorithm>

#include "common/sampler_names.h"
#include "ui/infotext.h"

namespace easel::ui {

QString endpointPath(GenerationKind kind) {
    switch (kind) {
        case GenerationKind::Text2Img:
            return QStringLiteral("/api/v6/images/text2img");
        case GenerationKind::Img2Img:
            return QStringLiteral("/api/v6/images/img2img");
        case GenerationKind::Inpaint:
            return QStringLiteral("/api/v6/images/inpaint");
    }
    return {};
}

const QStringList& schedulerNames() {
    // Every sampler of the shared table, as the API takes it with the Karras flag sent apart: the
    // class name, or the A1111 name where one class runs several ("DPM++ 2M SDE").
    static const QStringList names = [] {
        QStringList out{QString()};  // the model's own default (the server picks it)
        for (const auto& entry : easel::kSamplerNames) {
            const auto name = QString::fromStdString(easel::apiSchedulerName(entry));
            if (!out.contains(name)) out.append(name);
        }
        return out;
    }();
    return names;
}

QString pngBase64(const QImage& image) {
    if (image.isNull()) return {};
    QByteArray bytes;
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    image.save(&buffer, "PNG");
    return QString::fromLatin1(bytes.toBase64());
}

QJsonObject requestBody(GenerationKind kind, const GenerationParams& params, const QString& apiKey,
                        const GenerationImages& images) {
    QJsonObject body{
        {QStringLiteral("key"), apiKey},
        {QStringLiteral("prompt"), params.prompt},
        {QStringLiteral("negative_prompt"), params.negativePrompt},
        {QStringLiteral("width"), params.width},
        {QStringLiteral("height"), params.height},
        {QStringLiteral("samples"), params.samples},
        {QStringLiteral("num_inference_steps"), params.steps},
        {QStringLiteral("guidance_scale"), params.guidanceScale},
        {QStringLiteral("seed"), params.seed ? QJsonValue(static_cast<double>(*params.seed)) : QJsonValue()},
        // The playground polls for progress, so it always wants the id back at once.
        {QStringLiteral("instant_response"), true},
    };
    if (!params.modelId.isEmpty()) body.insert(QStringLiteral("model_id"), params.modelId);
    if (!params.scheduler.isEmpty()) {
        body.insert(QStringLiteral("scheduler"), params.scheduler);
        body.insert(QStringLiteral("use_karras_sigmas"),
                    params.karrasSigmas ? QStringLiteral("yes") : QStringLiteral("no"));
    }
    // As the hosted API spells them: comma-separated ids, one strength per LoRA ("0.8,1").
    if (!params.loras.isEmpty()) {
        QStringList ids;
        QStringList strengths;
        for (const auto& l : params.loras) {
            ids << l.id;
            strengths << QString::number(l.strength);
        }
        body.insert(QStringLiteral("lora_model"), ids.join(QLatin1Char(',')));
        body.insert(QStringLiteral("lora_strength"), strengths.join(QLatin1Char(',')));
    }
    if (!params.embeddings.isEmpty())
        body.insert(QStringLiteral("embeddings_model"), params.embeddings.join(QLatin1Char(',')));
    for (const auto& [name, field] : SizeConditioning::kFields) {
        if (params.sizes.*field != 0)
            body.insert(QString::fromLatin1(name.data(), static_cast<qsizetype>(name.size())), params.sizes.*field);
    }
    if (kind != GenerationKind::Text2Img) {
        body.insert(QStringLiteral("init_image"), pngBase64(images.init));
        body.insert(QStringLiteral("strength"), params.strength);
    }
    if (kind == GenerationKind::Inpaint) body.insert(QStringLiteral("mask_image"), pngBase64(images.mask));
    return body;
}

namespace {

// A list the API takes either comma-separated or as a JSON array ("a,b" / ["a", "b"] / 0.8).
QStringList listValue(const QJsonValue& v) {
    QStringList out;
    if (v.isArray()) {
        for (const auto& item : v.toArray())
            out << (item.isDouble() ? QString::number(item.toDouble()) : item.toString());
    } else if (v.isDouble()) {
        out << QString::number(v.toDouble());
    } else {
        out = v.toString().split(QLatin1Char(','));
    }
    for (auto& s : out) s = s.trimmed();
    out.removeAll(QString());
    return out;
}

// lora_model + lora_strength of a reply's meta (one strength for all, or one per LoRA).
QList<LoraChoice> lorasFromMeta(const QJsonObject& meta) {
    QList<LoraChoice> out;
    const auto ids = listValue(meta.value(QStringLiteral("lora_model")));
    const auto strengths = listValue(meta.value(QStringLiteral("lora_strength")));
    for (qsizetype i = 0; i < ids.size(); ++i) {
        LoraChoice l{ids[i]};
        bool ok = false;
        const double s = strengths.value(strengths.size() == 1 ? 0 : i).toDouble(&ok);
        if (ok) l.strength = s;
        out.append(l);
    }
    return out;
}

}  // namespace

GenerationParams paramsFromMeta(const QJsonObject& meta, GenerationParams base) {
    auto text = [&](const char* key, QString& out) {
        const auto v = meta.value(QLatin1String(key));
        if (v.isString()) out = v.toString();
    };
    auto number = [&](const char* key, auto& out) {
        const auto v = meta.value(QLatin1String(key));
        if (v.isDouble()) out = static_cast<std::remove_reference_t<decltype(out)>>(v.toDouble());
        if (v.isString() && !v.toString().isEmpty()) {
            bool ok = false;
            const double d = v.toString().toDouble(&ok);
            if (ok) out = static_cast<std::remove_reference_t<decltype(out)>>(d);
        }
    };
    text("model_id", base.modelId);
    text("prompt", base.prompt);
    text("negative_prompt", base.negativePrompt);
    text("scheduler", base.scheduler);
    // The server reports the scheduler it used, in A1111 spelling where it resolved the model's default.
    if (const auto named = schedulerFromSampler(base.scheduler)) {
        base.scheduler = named->first;
        base.karrasSigmas = named->second;
    }
    number("width", base.width);
    number("height", base.height);
    number("samples", base.samples);
    number("num_inference_steps", base.steps);
    number("steps", base.steps);
    number("guidance_scale", base.guidanceScale);
    number("strength", base.strength);
    for (const auto& [name, field] : SizeConditioning::kFields) {
        const auto key = QString::fromLatin1(name.data(), static_cast<qsizetype>(name.size()));
        if (meta.value(key).isDouble()) base.sizes.*field = meta.value(key).toInt();
    }
    const auto seed = meta.value(QStringLiteral("seed"));
    if (seed.isDouble()) base.seed = static_cast<qint64>(seed.toDouble());
    const auto karras = meta.value(QStringLiteral("use_karras_sigmas"));
    if (karras.isString()) base.karrasSigmas = karras.toString() == QStringLiteral("yes");
    if (karras.isBool()) base.karrasSigmas = karras.toBool();
    if (meta.contains(QStringLiteral("lora_model"))) base.loras = lorasFromMeta(meta);
    if (meta.contains(QStringLiteral("embeddings_model")))
        base.embeddings = listValue(meta.value(QStringLiteral("embeddings_model")));
    return base;
}

void saveParams(QSettings& settings, const QString& group, const GenerationParams& params) {
    settings.beginGroup(group);
    settings.setValue(QStringLiteral("model_id"), params.modelId);
    settings.setValue(QStringLiteral("prompt"), params.prompt);
    settings.setValue(QStringLiteral("negative_prompt"), params.negativePrompt);
    settings.setValue(QStringLiteral("width"), params.width);
    settings.setValue(QStringLiteral("height"), params.height);
    settings.setValue(QStringLiteral("samples"), params.samples);
    settings.setValue(QStringLiteral("steps"), params.steps);
    settings.setValue(QStringLiteral("guidance_scale"), params.guidanceScale);
    settings.setValue(QStringLiteral("seed"), params.seed ? QVariant(*params.seed) : QVariant());
    settings.setValue(QStringLiteral("scheduler"), params.scheduler);
    settings.setValue(QStringLiteral("karras"), params.karrasSigmas);
    settings.setValue(QStringLiteral("strength"), params.strength);
    QStringList loraIds;
    QVariantList loraStrengths;
    for (const auto& l : params.loras) {
        loraIds << l.id;
        loraStrengths << l.strength;
    }
    settings.setValue(QStringLiteral("lora_ids"), loraIds);
    settings.setValue(QStringLiteral("lora_strengths"), loraStrengths);
    for (const auto& [name, field] : SizeConditioning::kFields)
        settings.setValue(QString::fromLatin1(name.data(), static_cast<qsizetype>(name.size())), params.sizes.*field);
    settings.endGroup();
}

GenerationParams loadParams(QSettings& settings, const QString& group, const GenerationParams& fallback) {
    GenerationParams p = fallback;
    settings.beginGroup(group);
    p.modelId = settings.value(QStringLiteral("model_id"), p.modelId).toString();
    p.prompt = settings.value(QStringLiteral("prompt"), p.prompt).toString();
    p.negativePrompt = settings.value(QStringLiteral("negative_prompt"), p.negativePrompt).toString();
    p.width = settings.value(QStringLiteral("width"), p.width).toInt();
    p.height = settings.value(QStringLiteral("height"), p.height).toInt();
    p.samples = settings.value(QStringLiteral("samples"), p.samples).toInt();
    p.steps = settings.value(QStringLiteral("steps"), p.steps).toInt();
    p.guidanceScale = settings.value(QStringLiteral("guidance_scale"), p.guidanceScale).toDouble();
    const auto seed = settings.value(QStringLiteral("seed"));
    bool ok = false;
    const qint64 seedValue = seed.toLongLong(&ok);
    p.seed = (seed.isValid() && !seed.toString().isEmpty() && ok) ? std::optional<qint64>(seedValue) : std::nullopt;
    p.scheduler = settings.value(QStringLiteral("scheduler"), p.scheduler).toString();
    p.karrasSigmas = settings.value(QStringLiteral("karras"), p.karrasSigmas).toBool();
    p.strength = settings.value(QStringLiteral("strength"), p.strength).toDouble();
    if (settings.contains(QStringLiteral("lora_ids"))) {
        p.loras.clear();
        const auto ids = settings.value(QStringLiteral("lora_ids")).toStringList();
        const auto strengths = settings.value(QStringLiteral("lora_strengths")).toList();
        for (qsizetype i = 0; i < ids.size(); ++i) p.loras.append({ids[i], strengths.value(i, 1.0).toDouble()});
    }
    for (const auto& [name, field] : SizeConditioning::kFields) {
        const auto key = QString::fromLatin1(name.data(), static_cast<qsizetype>(name.size()));
        p.sizes.*field = std::max(0, settings.value(key, p.sizes.*field).toInt());
    }
    settings.endGroup();
    if (!schedulerNames().contains(p.scheduler)) p.scheduler = schedulerNames().front();
    return p;
}

}  // namespace easel::ui
