#pragma once
// What the playground sends for one generation, independent of any widget: the parameter form
// fills it, the request body, the cURL command, infotext and QSettings are all made from it.

#include <QImage>
#include <QJsonObject>
#include <QList>
#include <QSettings>
#include <QString>
#include <QStringList>
#include <optional>

#include "common/size_conditioning.h"

namespace easel::ui {

enum class GenerationKind { Text2Img, Img2Img, Inpaint };

// "/api/v6/images/text2img" etc.
QString endpointPath(GenerationKind kind);

// The scheduler names the API accepts; the first, empty, leaves the choice to the model.
const QStringList& schedulerNames();

// One LoRA of a request: a model id of category "lora" and its multiplier (text encoder and UNet
// alike, as lora_strength sets them).
struct LoraChoice {
    QString id;
    double strength = 1.0;

    bool operator==(const LoraChoice&) const = default;
};

struct GenerationParams {
    QString modelId;  // empty: the server's default model
    QString prompt;
    QString negativePrompt;
    int width = 64;
    int height = 64;
    int samples = 1;
    int steps = 20;
    double guidanceScale = 7.5;
    std::optional<qint64> seed;  // nullopt: random
    QString scheduler;           // empty: the model's default
    bool karrasSigmas = false;
    double strength = 0.7;    // img2img and inpaint only
    QList<LoraChoice> loras;  // sent as lora_model + lora_strength
    // Embeddings whose trigger words the prompts use (the pane finds them), sent as embeddings_model.
    QStringList embeddings;
    // SDXL's size conditioning (original_width, crop_top, ...); 0: the image's own size, no crop. Only
    // the fields that are not 0 are sent.
    SizeConditioning sizes;

    bool operator==(const GenerationParams&) const = default;
};

// The images img2img and inpaint send along; empty for text2img.
struct GenerationImages {
    QImage init;
    QImage mask;  // white = repaint
};

// The JSON body for POST endpointPath(kind). `apiKey` goes in as "key"; images as base64 PNG.
QJsonObject requestBody(GenerationKind kind, const GenerationParams& params, const QString& apiKey,
                        const GenerationImages& images = {});

// The parameters a server reply's "meta" describes (for "use these settings"); missing keys keep
// the values of `base`.
GenerationParams paramsFromMeta(const QJsonObject& meta, GenerationParams base = {});

// Base64 PNG without a data: prefix; empty for a null image.
QString pngBase64(const QImage& image);

// QSettings round trip under `group` (the last parameters of each pane).
void saveParams(QSettings& settings, const QString& group, const GenerationParams& params);
GenerationParams loadParams(QSettings& settings, const QString& group, const GenerationParams& fallback = {});

}  // namespace easel::ui
