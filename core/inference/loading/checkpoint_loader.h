#pragma once
// Builds the three networks from a checkpoint and fills them by name. Include only from inference
// .cpp files and tests (libtorch).

#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <string>

#include "inference/loading/model_detection.h"
#include "inference/models/autoencoder_kl.h"
#include "inference/models/clip_text_model.h"
#include "inference/models/unet_2d_condition.h"

namespace easel::inference {

struct StableDiffusionModel {
    DetectedModel detected;
    UNet2DConditionModel unet{nullptr};
    AutoencoderKL vae{nullptr};
    std::shared_ptr<TextEncoder> textEncoder;
    std::shared_ptr<torch::nn::Module> textModule;  // the same object as textEncoder
    // SDXL's second (OpenCLIP) text encoder, detected.text2; null for SD 1.x/2.x.
    std::shared_ptr<TextEncoder> textEncoder2;
    std::shared_ptr<torch::nn::Module> textModule2;
};

// Copies every parameter and buffer of `module` from `file`, under `prefix`. Throws ModelLoadError
// that names the key and both shapes for a mis-shaped tensor, lists missing keys, and refuses
// non-finite weights.
void loadModuleWeights(torch::nn::Module& module, const SafetensorsFile& file, const std::string& prefix);

// Text encoder of either kind for a config.
std::shared_ptr<TextEncoder> makeTextEncoder(const TextEncoderConfig& config,
                                             std::shared_ptr<torch::nn::Module>& module);

// The networks `detected` describes with their initial (random) weights, in eval mode: for benchmarks
// and random-weight checkpoints (saveSingleFileCheckpoint). Throws c10::Error for shapes no network
// can be built from.
StableDiffusionModel buildRandomModel(DetectedModel detected, torch::Dtype dtype = torch::kFloat32);

// Loads an original single-file .safetensors checkpoint. Pickled .ckpt/.pt files are refused.
StableDiffusionModel loadSingleFileCheckpoint(const std::filesystem::path& path, const ModelOverrides& overrides = {},
                                              torch::Dtype dtype = torch::kFloat32);

// Loads a diffusers folder (model_index.json, unet/, vae/, text_encoder/ with .safetensors weights;
// see diffusers_loader.h). Errors name the folder's own keys and files; .bin weights are refused.
StableDiffusionModel loadDiffusersFolder(const std::filesystem::path& path, torch::Dtype dtype = torch::kFloat32);

}  // namespace easel::inference
