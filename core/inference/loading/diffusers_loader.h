#pragma once
// Opens a diffusers-layout Stable Diffusion folder (model_index.json, unet/, vae/, text_encoder/,
// scheduler/, optionally tokenizer/) as if it were an original single-file checkpoint: the three
// .safetensors files are mapped and their tensors renamed by diffusers_key_map.h, with no copy, so
// detection and loading run unchanged. What the weights cannot tell (head counts, activation,
// prediction type, VAE scaling) comes from the components' config files. Torch-free.

#include <filesystem>
#include <optional>
#include <string>

#include "inference/loading/diffusers_key_map.h"
#include "inference/loading/model_detection.h"
#include "inference/loading/safetensors.h"

namespace easel::inference {

struct DiffusersFolder {
    std::filesystem::path root;
    std::filesystem::path unetFile;
    std::filesystem::path vaeFile;
    std::filesystem::path textEncoderFile;
    std::filesystem::path textEncoder2File;  // SDXL's text_encoder_2; empty otherwise
    DiffusersLayout layout;
    ModelOverrides overrides;
    // A transformers CLIPTextModel with exact GELU is SD 2.x's OpenCLIP ViT-H tower, converted
    // without its last layer, so its last_hidden_state is already the "penultimate" conditioning.
    bool sd2TextEncoder = false;
    std::optional<std::filesystem::path> tokenizerVocab;  // tokenizer/vocab.json with merges.txt
    std::optional<std::filesystem::path> tokenizerMerges;
    SafetensorsFile weights;  // all three components under their original names

    // "'down_blocks.0.resnets.0.conv1.weight' (unet/diffusion_pytorch_model.safetensors)" for an
    // original key; the key itself, quoted, when no file of the folder holds it.
    std::string describeKey(const std::string& originalKey) const;
    // Rewrites every quoted original key in a loader message in the folder's own terms.
    std::string translateMessage(const std::string& message) const;
};

// A folder with model_index.json.
bool isDiffusersFolder(const std::filesystem::path& path);

// Throws ModelLoadError for a missing file or config, pickled (.bin) weights, a tensor with no
// counterpart in SD 1.x / 2.x, and head counts Easel cannot represent.
DiffusersFolder openDiffusersFolder(const std::filesystem::path& path);

}  // namespace easel::inference
