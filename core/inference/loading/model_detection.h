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

enum class ModelFamily { SD1, SD2, SDXL };

struct ModelOverrides {
    std::optional<int> unetNumHeads;
    std::optional<int> unetNumHeadChannels;
    std::optional<int> textNumHeads;
    std::optional<bool> textQuickGELU;
    std::optional<int> text2NumHeads;  // SDXL's second (OpenCLIP) encoder
    std::optional<bool> text2QuickGELU;
    std::optional<PredictionType> prediction;
    std::optional<float> vaeScalingFactor;
};

struct DetectedModel {
    ModelFamily family = ModelFamily::SD1;
    bool inpainting = false;  // UNet takes 9 channels: latents, mask, masked-image latents
    PredictionType prediction = PredictionType::Epsilon;
    UNetConfig unet;
    VAEConfig vae;
    TextEncoderConfig text;  // SDXL: the CLIP ViT-L encoder (conditioner.embedders.0)
    // SDXL's OpenCLIP ViT-bigG encoder (conditioner.embedders.1): the second half of the context
    // and the pooled start of the `vector`.
    std::optional<TextEncoderConfig> text2;
    std::string unetPrefix = "model.diffusion_model.";
    std::string vaePrefix = "first_stage_model.";
    std::string textPrefix;  // "cond_stage_model.transformer.", "cond_stage_model.model." or SDXL's
    std::string text2Prefix;
    // SDXL: width of each number's sinusoidal embedding in the `vector` (sgm ConcatTimestepEmbedderND
    // outdim): adm_in_channels = pooled width + 6 * this.
    int sizeEmbeddingDim = 0;

    std::string describe() const;  // "SD 1.x (inpainting, epsilon)"
};

// Throws ModelLoadError naming the missing tensor when the file is not an SD 1.x / 2.x / XL checkpoint.
// SDXL is recognised by its second text encoder (conditioner.embedders.1.model.*) and label_emb.
DetectedModel detectSingleFile(const SafetensorsFile& file, const ModelOverrides& overrides = {});

// The networks of SDXL 1.0 base as detection reports them for its checkpoint (sgm sd_xl_base.yaml):
// UNet 320 x [1, 2, 4], 2 ResBlocks, transformer depth [0, 2, 10] (middle 10), heads of 64, context
// 2048, adm 2816; CLIP ViT-L/14 (768 x 12) and OpenCLIP ViT-bigG/14 (1280 x 32, projection 1280);
// VAE 128 x [1, 2, 4, 4] with scale 0.13025. For benchmarks and random-weight checkpoints.
DetectedModel sdxlBaseGeometry();

// Applies overrides on top of what detection found.
void applyOverrides(DetectedModel& model, const ModelOverrides& overrides);

}  // namespace easel::inference
