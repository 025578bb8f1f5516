#include "infotext.h"

#include <QStringList>
#include <array>

namespace easel::ui {

namespace {

constexpr auto kNegativePrefix = QLatin1String("Negative prompt: ");

struct SamplerName {
    const char* sampler;
    const char* scheduler;
    bool karras;
};

constexpr std::array<SamplerName, 9> kSamplers{{
    {"DPM++ 2M", "DPMSolverMultistepScheduler", false},
    {"DPM++ 2M Karras", "DPMSolverMultistepScheduler", true},
    {"Euler", "EulerDiscreteScheduler", false},
    {"Euler Karras", "EulerDiscreteScheduler", true},
    {"Euler a", "EulerAncestralDiscreteScheduler", false},
    {"DDIM", "DDIMScheduler", false},
    {"LCM", "LCMScheduler", false},
    {"LCM Karras", "LCMScheduler", true},
    {"Euler a Karras", "EulerAncestralDiscreteScheduler", true},
}};

// Splits "Steps: 20, Sampler: Euler a, Lora hashes: \"a: 1, b: 2\"" into key/value pairs.
QMap<QString, QString> parseFields(const QString& line) {
    QMap<QString, QString> fields;
    qsizetype i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == QLatin1Char(' ') || line[i] == QLatin1Char(','))) ++i;
        const auto colon = line.indexOf(QLatin1String(": "), i);
        if (colon < 0) break;
        const QString key = line.mid(i, colon - i).trimmed();
        i = colon + 2;
        QString value;
        if (i < line.size() && line[i] == QLatin1Char('"')) {
            const auto end = line.indexOf(QLatin1Char('"'), i + 1);
            value = line.mid(i + 1, (end < 0 ? line.size() : end) - i - 1);
            i = end < 0 ? line.size() : end + 1;
        } else {
            const auto comma = line.indexOf(QLatin1String(", "), i);
            value = line.mid(i, (comma < 0 ? line.size() : comma) - i);
            i = comma < 0 ? line.size() : comma;
        }
        fields.insert(key, value.trimmed());
    }
    return fields;
}

}  // namespace

Infotext Infotext::parse(const QString& text) {
    Infotext info;
    QStringList lines = QString(text).replace(QLatin1String("\r\n"), QLatin1String("\n")).split(QLatin1Char('\n'));
    while (!lines.isEmpty() && lines.back().trimmed().isEmpty()) lines.removeLast();
    if (!lines.isEmpty() && lines.back().contains(QLatin1String("Steps: ")))
        info.fields = parseFields(lines.takeLast());
    bool negative = false;
    QStringList prompt;
    QStringList negativeLines;
    for (const auto& line : lines) {
        if (!negative && line.startsWith(kNegativePrefix)) {
            negative = true;
            negativeLines << line.mid(kNegativePrefix.size());
        } else if (negative) {
            negativeLines << line;
        } else {
            prompt << line;
        }
    }
    info.prompt = prompt.join(QLatin1Char('\n'));
    info.negativePrompt = negativeLines.join(QLatin1Char('\n'));
    return info;
}

QString Infotext::format() const {
    QString out = prompt;
    if (!negativePrompt.isEmpty()) out += QLatin1Char('\n') + kNegativePrefix + negativePrompt;
    out += QLatin1Char('\n');
    const QStringList order = {QStringLiteral("Steps"), QStringLiteral("Sampler"), QStringLiteral("CFG scale"),
                               QStringLiteral("Seed"),  QStringLiteral("Size"),    QStringLiteral("Model")};
    QStringList keys;
    for (const auto& k : order) {
        if (fields.contains(k)) keys << k;
    }
    for (auto it = fields.begin(); it != fields.end(); ++it) {
        if (!order.contains(it.key())) keys << it.key();
    }
    QStringList parts;
    for (const auto& k : keys) {
        const QString v = fields.value(k);
        const bool quote = v.contains(QLatin1Char(',')) || v.contains(QLatin1Char(':'));
        parts << k + QLatin1String(": ") + (quote ? QLatin1Char('"') + v + QLatin1Char('"') : v);
    }
    return out + parts.join(QLatin1String(", "));
}

std::optional<std::pair<QString, bool>> schedulerFromSampler(const QString& sampler) {
    for (const auto& s : kSamplers) {
        if (sampler.compare(QLatin1String(s.sampler), Qt::CaseInsensitive) == 0 ||
            sampler.compare(QLatin1String(s.scheduler), Qt::CaseInsensitive) == 0) {
            return std::pair{QString::fromLatin1(s.scheduler), s.karras};
        }
    }
    return std::nullopt;
}

QString samplerName(const QString& scheduler, bool karrasSigmas) {
    for (const auto& s : kSamplers) {
        if (scheduler == QLatin1String(s.scheduler) && karrasSigmas == s.karras) return QString::fromLatin1(s.sampler);
    }
    return scheduler;
}

std::optional<GenerationParams> paramsFromInfotext(const QString& text, GenerationParams base) {
    const auto info = Infotext::parse(text);
    if (!info.fields.contains(QStringLiteral("Steps"))) return std::nullopt;
    base.prompt = info.prompt;
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
    info.negativePrompt = params.negativePrompt;
    info.fields.insert(QStringLiteral("Steps"), QString::number(params.steps));
    info.fields.insert(QStringLiteral("Sampler"), samplerName(params.scheduler, params.karrasSigmas));
    info.fields.insert(QStringLiteral("CFG scale"), QString::number(params.guidanceScale));
    info.fields.insert(QStringLiteral("Seed"), QString::number(seed));
    info.fields.insert(QStringLiteral("Size"), QStringLiteral("%1x%2").arg(params.width).arg(params.height));
    if (!modelName.isEmpty()) info.fields.insert(QStringLiteral("Model"), modelName);
    return info.format();
}

}  // namespace easel::ui
