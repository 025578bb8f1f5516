#pragma once
// What Engine::withLoaded hands to in-process training: the engine's own networks (changes to their
// weights change what it generates), its tokenizer and the model folder's model.json. libtorch; include
// only from inference .cpp files.

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "inference/engine.h"
#include "inference/loading/checkpoint_loader.h"
#include "inference/tokenizer/clip_tokenizer.h"
#include "inference/tokenizer/word_tokenizer.h"

namespace easel::inference {

struct Engine::Loaded {
    StableDiffusionModel& model;
    const ModelInfo& info;
    const CLIPTokenizer* clipTokenizer;  // exactly one of the two is set
    WordTokenizer* wordTokenizer;
    const nlohmann::json& sidecar;  // model.json; empty for a single file or a diffusers folder
    torch::Device device;
    torch::Dtype dtype;
};

}  // namespace easel::inference
