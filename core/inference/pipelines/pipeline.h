#pragma once
// What the txt2img, img2img and inpaint pipelines share (diffusers' StableDiffusion*Pipeline
// semantics, one file per task beside this one): the loaded model they run on, the request with
// the model's defaults filled in and checked, the latents a task brings, and the common run:
//   1. conditioning (Conditioner),  2. per sample: seeded noise from the CPU RNG,
//   3. the denoising loop with previews,  4. VAE decode (and, for inpainting, the caller's pixels
//   outside the mask),  5. the A1111 infotext.

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "inference/adapters/embedding.h"
#include "inference/engine.h"
#include "inference/loading/checkpoint_loader.h"
#include "inference/schedulers/scheduler.h"
#include "inference/tokenizer/clip_tokenizer.h"
#include "inference/tokenizer/word_tokenizer.h"

namespace easel::inference {

struct PipelineContext {
    StableDiffusionModel& model;
    const ModelInfo& info;
    torch::Device device;
    torch::Dtype dtype;
    const CLIPTokenizer* clipTokenizer;  // exactly one of the two tokenizers is set
    const WordTokenizer* wordTokenizer;
    const std::vector<TextualInversion>* embeddings = nullptr;  // the request's, when it names any
    // EngineOptions' VAE tiling ("auto", "always", "never") and tile geometry in pixels.
    std::string vaeTiling = "never";
    int vaeTileSide = 512;
    int vaeTileOverlap = 128;
};

// A request after the engine applied the model's defaults and checked every value.
struct ResolvedRequest {
    explicit ResolvedRequest(const GenerationRequest& r) : request(r) {}

    const GenerationRequest& request;
    int width = 0;
    int height = 0;
    int steps = 0;
    float guidance = 0;
    std::string schedulerName;  // as asked (or the model's default), for the infotext and the result
    SchedulerKind schedulerKind = SchedulerKind::Euler;
    SchedulerConfig schedulerConfig;
    std::int64_t seed = 0;  // of the first sample; sample i uses seed + i
    // The request's LoRAs, for the infotext: (name, A1111 short hash) and their <lora:name:w> tags.
    std::vector<std::pair<std::string, std::string>> loraHashes;
    std::vector<std::string> loraTags;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();  // for elapsed times
};

// What a task adds to the denoising loop (all optional; txt2img on an ordinary model sets none).
struct TaskLatents {
    torch::Tensor initLatents;  // img2img / inpaint: the init image's latents, scaled
    float strength = 1.0f;
    bool pureNoiseAtFullStrength = false;  // inpaint: strength 1 starts from pure noise
    torch::Tensor mask;                    // [1, 1, h, w] in latent space, 1 = repaint
    torch::Tensor maskedImageLatents;      // 9-channel inpainting models
    torch::Tensor initPixels;              // inpaint: the caller's pixels, kept outside the mask
    torch::Tensor maskPixels;              // inpaint: the mask at image resolution
};

// Runs phases 1-5 for every sample of the request.
GenerationResult runPipeline(const PipelineContext& ctx, const ResolvedRequest& r, const TaskLatents& task,
                             const ProgressCallback& progress);

// The cheap preview of 4-channel latents (scaled, as the sampler holds them): a fixed linear map per
// family to RGB at latent resolution (SDXL's with a per-colour offset), no VAE.
Image latentPreview(const torch::Tensor& latents, ModelFamily family);

// RGB8 image <-> [1, 3, H, W] float32 in [-1, 1].
torch::Tensor imageToTensor(const Image& image);
Image tensorToImage(const torch::Tensor& decoded);

// Latents already divided by the scaling factor -> pixels, decoded whole or in tiles
// (AutoencoderKL::decodeTiled) as ctx.vaeTiling says, in the model's dtype.
torch::Tensor decodeLatents(const PipelineContext& ctx, const torch::Tensor& latents);

// "auto" tiling's rule: the whole decode's estimated activations (12 full-resolution tensors of the
// decoder's first width) exceed half of `availableBytes`.
bool wholeDecodeTooLarge(const VAEConfig& vae, std::int64_t pixels, std::int64_t elementBytes,
                         std::uint64_t availableBytes);
// MemAvailable from /proc/meminfo; the largest value when it cannot be read.
std::uint64_t availableMemoryBytes();

// The VAE's latent mean for [-1, 1] pixels, multiplied by the scaling factor (float32).
torch::Tensor encodeLatents(const PipelineContext& ctx, const torch::Tensor& pixels);

// A 9-channel inpainting model given no mask repaints everything: a mask of ones and the latents
// of an all-zero masked image.
void repaintEverything(const PipelineContext& ctx, const ResolvedRequest& r, TaskLatents& task);

}  // namespace easel::inference
