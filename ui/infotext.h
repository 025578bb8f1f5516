#pragma once
// The A1111 "parameters" PNG text chunk in Qt types, over the one implementation in
// core/common/infotext.h (which the engine writes with):
//   prompt
//   Negative prompt: ...
//   Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 5, Seed: 1, Size: 64x64, Model: easel-shapes-64

#include <QMap>
#include <QString>
#include <QStringList>
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

// A prompt's A1111 LoRA tags (<lora:name:0.7>) taken out as picker rows. A tag with different text
// encoder and UNet multipliers (<lora:name:0.5:0.8>) stays in the prompt, where the server reads it,
// since a row has one strength. With a malformed tag the prompt is left as it is (the server names
// the fault when it is sent) and `errors` says what is wrong.
struct PromptLoras {
    QString prompt;
    QList<LoraChoice> loras;
    QStringList errors;
};
PromptLoras takeLoraTags(const QString& prompt);

// The playground parameters an infotext describes, starting from `base` for anything it leaves out
// (an unknown sampler keeps base's scheduler); its LoRA tags become `loras` (takeLoraTags). nullopt when the text has
// no "Steps:" line, which is how we tell parameters from an unrelated text chunk.
std::optional<GenerationParams> paramsFromInfotext(const QString& text, GenerationParams base = {});

// The infotext for a finished image; `seed` is the seed that image was actually made with. LoRAs
// are written as tags after the prompt, as A1111 and the engine write them.
QString infotextFor(const GenerationParams& params, qint64 seed, const QString& modelName);

// A1111 sampler name ("DPM++ 2M Karras") <-> (API scheduler, Karras sigmas). nullopt when unknown.
std::optional<std::pair<QString, bool>> schedulerFromSampler(const QString& sampler);
QString samplerName(const QString& scheduler, bool karrasSigmas);

}  // namespace easel::ui
