#pragma once
// Tells the architecture of a Stable Diffusion checkpoint from its tensor names and shapes, in the
// original single-file layout. What the weights cannot tell (attention head counts, prediction
// type) comes from overrides: a sidecar file or the caller.

#include <optional>
#include <stdexcept>
#include <string>

#include "inference/loading/safetensors.h"
#include "inference/models/model_configs.h"

namespace easel::inference {

class ModelLoadError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class ModelFamily { SD1, SD2 };

struct ModelOverrides {
    std::optional<int> unetNumHeads;
    std::optional<int> unetNumHeadChannels;
    std::optional<int> textNumHeads;
    std::optional<bool> textQuickGELU;
    std::optional<PredictionType> prediction;
    std::optional<float> vaeScalingFactor;
};

struct DetectedModel {
    ModelFamily family = ModelFamily::SD1;
    bool inpainting = false;  // UNet takes 9 channels: latents, mask, masked-image latents
    PredictionType prediction = PredictionType::Epsilon;
    UNetConfig unet;
    VAEConfig vae;
    TextEncoderConfig text;
    std::string unetPrefix = "model.diffusion_model.";
    std::string vaePrefix = "first_stage_model.";
    std::string textPrefix;  // "cond_stage_model.transformer." or "cond_stage_model.model."

    std::string describe() const;  // "SD 1.x (inpainting, epsilon)"
};

// Throws ModelLoadError naming the missing tensor when the file is not an SD 1.x / 2.x checkpoint.
DetectedModel detectSingleFile(const SafetensorsFile& file, const ModelOverrides& overrides = {});

// Applies overrides on top of what detection found.
void applyOverrides(DetectedModel& model, const ModelOverrides& overrides);

}  // namespace easel::inference
