#pragma once
// The A1111 "parameters" PNG text chunk in Qt types, over the one implementation in
// core/common/infotext.h (which the engine writes with):
//   prompt
//   Negative prompt: ...
//   Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 5, Seed: 1, Size: 64x64, Model: easel-shapes-64

#include <QMap>
#include <QString>
#include <optional>

#include "ui/generation_params.h"

namespace easel::ui {

struct Infotext {
    QString prompt;
    QString negativePrompt;
    QMap<QString, QString> fields;  // "Steps" -> "20", "Sampler" -> "Euler a", ...

    static Infotext parse(const QString& text);
    QString format() const;
};

// The playground parameters an infotext describes, starting from `base` for anything it leaves out
// (an unknown sampler keeps base's scheduler). nullopt when the text has no "Steps:" line, which is
// how we tell parameters from an unrelated text chunk.
std::optional<GenerationParams> paramsFromInfotext(const QString& text, GenerationParams base = {});

// The infotext for a finished image; `seed` is the seed that image was actually made with.
QString infotextFor(const GenerationParams& params, qint64 seed, const QString& modelName);

// A1111 sampler name ("DPM++ 2M Karras") <-> (API scheduler, Karras sigmas). nullopt when unknown.
std::optional<std::pair<QString, bool>> schedulerFromSampler(const QString& sampler);
QString samplerName(const QString& scheduler, bool karrasSigmas);

}  // namespace easel::ui
