#pragma once
// Fine-tuning a loaded SD 1.x / 2.x model on a user's images: DreamBooth (Ruiz et al. 2022: the whole
// UNet, and the text encoder, learn a rare token for the subject) or LoRA (Hu et al. 2021: rank-r
// adapters, written as a kohya file). Both with prior preservation: the base model first draws class
// images from the class prompt, and every step trains on them too, weighted by priorWeight, so that the
// class keeps its look (DreamBooth paper, eq. 2).
//
// The epsilon (or v) loss of SD training with the noise schedule, offset noise and min-SNR weighting the
// model was trained with (model.json "training", as the built-in model records them), AdamW, gradient
// clipping, bf16 autocast when asked. Resumable: the state is checkpointed to the work folder and a
// second run with the same folder continues from the last checkpoint.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "inference/engine.h"
#include "inference/image/image.h"

namespace easel::inference::training {

enum class FineTuneMethod { DreamBooth, LoRA };

struct FineTuneImage {
    Image image;
    std::string caption;  // empty: the instance prompt
};

struct FineTuneOptions {
    FineTuneMethod method = FineTuneMethod::DreamBooth;
    std::string instancePrompt;
    std::string classPrompt;  // empty: no prior preservation; "{a|b}" variants: class images of each
    std::string negativePrompt;
    int steps = 400;
    std::uint64_t seed = 0;
    int classImages = 0;  // 0: twice the instance images (at least 4, at least one per class prompt)
    double priorWeight = 1.0;
    // 0: model.json "fine_tune" defaults, else 2e-6 (DreamBooth) / 1e-4 (LoRA), the usual SD values.
    double learningRate = 0;
    int batchSize = 0;  // instance images per step (as many class images join them); 0: model.json, else 1
    bool trainTextEncoder = true;
    int loraRank = 16;
    double loraAlpha = 16;           // scale alpha / rank = 1, as diffusers and Easel's loader default to
    std::string precision = "fp32";  // "bf16": autocast the forward and backward to bf16 (fp32 weights)
    // The UNet's blocks keep only their inputs and recompute their activations in the backward pass:
    // less memory, one more forward pass per step. nullopt: on for DreamBooth (whose weights, gradients
    // and AdamW state already take 4x the model), off for LoRA.
    std::optional<bool> gradientCheckpointing;
    std::filesystem::path workDir;  // checkpoints, cached latents, the result (workDir/output)
    int checkpointEverySteps = 0;   // 0: by time
    double checkpointEverySeconds = 120;
    std::string outputName = "fine-tuned";  // model.json "name" / the LoRA's ss_output_name
};

struct FineTuneProgress {
    std::string stage;  // "class_images", "training", "saving"
    int step = 0;
    int total = 0;
    double loss = 0;
};
// Return false to stop: fineTune throws GenerationCancelledError within one step.
using FineTuneCallback = std::function<bool(const FineTuneProgress&)>;

struct FineTuneResult {
    std::filesystem::path path;  // DreamBooth: workDir/output (a model folder); LoRA: workDir/output/lora.safetensors
    int steps = 0;
    int resumedFrom = 0;  // the step a checkpoint gave back (0: a fresh start)
    double finalLoss = 0;
    double secondsPerStep = 0;
};

// A prompt's "{a|b|c}" groups (the dynamic-prompts syntax of A1111 users) expanded: one prompt per
// combination of choices, at most `limit`. A prompt without groups is itself.
std::vector<std::string> expandVariants(const std::string& prompt, std::size_t limit = 64);

// The prompts the class images are drawn from (at most 64). The class prompt may name variants
// ("a {circle|square}"): the class images then cover each. Where the instance prompt is a class prompt
// (variant) with one word swapped for the rare token ("a large red zwx ..." / "a large red circle ..."),
// each image's caption (once each) with that swap undone, for every such variant, so that the prior
// covers what the captions name; else the class prompt's variants.
std::vector<std::string> classPrompts(const FineTuneOptions& options, const std::vector<FineTuneImage>& images);

// Trains on `engine`'s loaded model, whose weights it changes (DreamBooth): give it an engine of its own,
// loaded in fp32 for DreamBooth; a LoRA also trains on a bf16 engine (its frozen weights stay bf16). Throws
// GenerationError for what cannot be trained (SDXL, no images, bad options).
FineTuneResult fineTune(Engine& engine, const std::vector<FineTuneImage>& images, const FineTuneOptions& options,
                        const FineTuneCallback& progress = {});

}  // namespace easel::inference::training
