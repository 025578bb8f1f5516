#include "ui/infotext.h"

#include <QRegularExpression>
#include <QStringList>

#include "common/infotext.h"
#include "common/lora_tags.h"
#include "common/sampler_names.h"

namespace easel::ui {

// The format and the sampler names live in core/common (one implementation for the engine that
// writes infotexts and the app that reads them); this file only converts to and from Qt types.

Infotext Infotext::parse(const QString& text) {
    const auto parsed = easel::Infotext::parse(text.toStdString());
    Infotext info;
    info.prompt = QString::fromStdString(parsed.prompt);
    info.negativePrompt = QString::fromStdString(parsed.negativePrompt);
    for (const auto& [k, v] : parsed.fields) info.fields.insert(QString::fromStdString(k), QString::fromStdString(v));
    return info;
}

QString Infotext::format() const {
    easel::Infotext text;
    text.prompt = prompt.toStdString();
    text.negativePrompt = negativePrompt.toStdString();
    for (auto it = fields.begin(); it != fields.end(); ++it)
        text.fields[it.key().toStdString()] = it.value().toStdString();
    return QString::fromStdString(text.format());
}

std::optional<std::pair<QString, bool>> schedulerFromSampler(const QString& sampler) {
    const auto entry = easel::findSamplerName(sampler.toStdString());
    if (!entry) return std::nullopt;
    return std::pair{QString::fromStdString(easel::apiSchedulerName(*entry)), entry->karras};
}

QString samplerName(const QString& scheduler, bool karrasSigmas) {
    return QString::fromStdString(easel::a1111SamplerName(scheduler.toStdString(), karrasSigmas));
}

PromptLoras takeLoraTags(const QString& prompt) {
    const auto taken = easel::extractLoraTags(prompt.toStdString());
    PromptLoras out;
    for (const auto& e : taken.errors) out.errors << QString::fromStdString(e);
    if (taken.loras.empty() || !taken.errors.empty()) {
        out.prompt = prompt;
        return out;
    }
    // The shared tidy-up leaves two spaces where it drops the comma after a tag ("a, <lora:x>, b");
    // it collapses every other run of spaces already, so doing it once more changes nothing else.
    out.prompt =
        QString::fromStdString(taken.prompt).replace(QRegularExpression(QStringLiteral(" {2,}")), QStringLiteral(" "));
    for (const auto& tag : taken.loras) {
        if (tag.textEncoderStrength == tag.unetStrength) {
            out.loras.append({QString::fromStdString(tag.name), tag.unetStrength});
        } else {
            if (!out.prompt.isEmpty()) out.prompt += QLatin1Char(' ');
            out.prompt += QString::fromStdString(easel::formatLoraTag(tag));
        }
    }
    return out;
}

std::optional<GenerationParams> paramsFromInfotext(const QString& text, GenerationParams base) {
    const auto info = Infotext::parse(text);
    if (!info.fields.contains(QStringLiteral("Steps"))) return std::nullopt;
    auto tags = takeLoraTags(info.prompt);
    base.prompt = tags.prompt;
    base.loras = tags.loras;
    base.negativePrompt = info.negativePrompt;
    const auto& f = info.fields;
    bool ok = false;
    if (const int steps = f.value(QStringLiteral("Steps")).toInt(&ok); ok) base.steps = steps;
    if (const double cfg = f.value(QStringLiteral("CFG scale")).toDouble(&ok); ok) base.guidanceScale = cfg;
    if (const qint64 seed = f.value(QStringLiteral("Seed")).toLongLong(&ok); ok) base.seed = seed;
    if (const double s = f.value(QStringLiteral("Denoising strength")).toDouble(&ok); ok) base.strength = s;
    const auto size = f.value(QStringLiteral("Size")).split(QLatin1Char('x'));
    if (size.size() == 2) {
        bool okW = false;
        bool okH = false;
        const int w = size[0].toInt(&okW);
        const int h = size[1].toInt(&okH);
        if (okW && okH) {
            base.width = w;
            base.height = h;
        }
    }
    if (f.contains(QStringLiteral("Model"))) base.modelId = f.value(QStringLiteral("Model"));
    if (const auto scheduler = schedulerFromSampler(f.value(QStringLiteral("Sampler")))) {
        base.scheduler = scheduler->first;
        base.karrasSigmas = scheduler->second;
    }
    // Newer A1111 writes the sigma schedule separately: "Sampler: DPM++ 2M, Schedule type: Karras".
    if (f.value(QStringLiteral("Schedule type")).compare(QLatin1String("Karras"), Qt::CaseInsensitive) == 0) {
        base.karrasSigmas = true;
    }
    return base;
}

QString infotextFor(const GenerationParams& params, qint64 seed, const QString& modelName) {
    Infotext info;
    info.prompt = params.prompt;
    for (const auto& l : params.loras) {
        const auto tag = easel::formatLoraTag({l.id.toStdString(), l.strength, l.strength});
        if (!info.prompt.isEmpty()) info.prompt += QLatin1Char(' ');
        info.prompt += QString::fromStdString(tag);
    }
    info.negativePrompt = params.negativePrompt;
    info.fields.insert(QStringLiteral("Steps"), QString::number(params.steps));
    const auto sampler = samplerName(params.scheduler, params.karrasSigmas);
    info.fields.insert(QStringLiteral("Sampler"), sampler);
    // Where A1111 has no "Karras" spelling of the sampler ("UniPC"), the schedule goes apart, as newer
    // A1111 writes it.
    const auto written = schedulerFromSampler(sampler);
    if (params.karrasSigmas && written && !written->second)
        info.fields.insert(QStringLiteral("Schedule type"), QStringLiteral("Karras"));
    info.fields.insert(QStringLiteral("CFG scale"), QString::number(params.guidanceScale));
    info.fields.insert(QStringLiteral("Seed"), QString::number(seed));
    info.fields.insert(QStringLiteral("Size"), QStringLiteral("%1x%2").arg(params.width).arg(params.height));
    if (!modelName.isEmpty()) info.fields.insert(QStringLiteral("Model"), modelName);
    return info.format();
}

}  // namespace easel::ui
