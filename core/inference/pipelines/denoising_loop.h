#pragma once
// The denoising loop shared by txt2img, img2img and inpainting (diffusers' StableDiffusion*Pipeline
// semantics): classifier-free guidance over a doubled batch, img2img start step from `strength`,
// and inpainting either through a 9-channel UNet or, for ordinary models, by re-imposing the noised
// original outside the mask after every step.

#include <torch/torch.h>

#include <chrono>
#include <functional>

#include "inference/models/unet_2d_condition.h"
#include "inference/schedulers/scheduler.h"

namespace easel::inference {

struct StepProgress {
    int step = 0;  // 1-based, after the step finished
    int total = 0;
    double elapsedSeconds = 0;
    const torch::Tensor* predictedLatents = nullptr;  // x0 estimate, for previews; may be null
};
// Return false to cancel; the loop then throws GenerationCancelled.
using StepCallback = std::function<bool(const StepProgress&)>;

struct GenerationCancelled : std::runtime_error {
    GenerationCancelled() : std::runtime_error("generation cancelled") {}
};

struct DenoiseInputs {
    torch::Tensor uncond;  // [B, T, D]; undefined when guidance <= 1
    torch::Tensor cond;    // [B, T, D]
    // SDXL's vector conditioning [B, adm] for each branch (see sdxl_conditioning.h); undefined otherwise.
    torch::Tensor uncondY;
    torch::Tensor condY;
    torch::Tensor noise;  // [B, 4, h, w] float32
    float guidanceScale = 7.5f;
    int numInferenceSteps = 20;
    // img2img / inpainting: clean latents (already scaled by the VAE factor) and how much to change.
    torch::Tensor initLatents;
    float strength = 1.0f;
    // Inpainting at full strength starts from pure noise (diffusers' is_strength_max); img2img
    // always noises the init latents, so even strength 1 keeps a trace of them.
    bool pureNoiseAtFullStrength = false;
    // Inpainting: [B, 1, h, w], 1 = repaint. With a 9-channel UNet also the masked image's latents.
    torch::Tensor mask;
    torch::Tensor maskedImageLatents;
    NoiseSource ancestralNoise;  // noise for ancestral steps; default: randn_like with the noise's generator
    StepCallback callback;
};

// Runs the loop and returns the final latents (float32). Calls scheduler.setTimesteps itself.
torch::Tensor denoise(UNet2DConditionModel& unet, Scheduler& scheduler, const DenoiseInputs& in);

// The first timestep index used for img2img at this strength (diffusers get_timesteps).
int img2imgStartIndex(int numInferenceSteps, float strength);

}  // namespace easel::inference
