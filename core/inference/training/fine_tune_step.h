#pragma once
// One optimiser step of DreamBooth or LoRA fine-tuning (fine_tuner.cpp runs it in a loop; easel-bench
// times it on SD geometry). libtorch: include only from inference .cpp files and benchmarks.
//
// Per step: noise the latents at uniform timesteps, predict with the UNet conditioned on the captions,
// epsilon (or v) MSE per sample (min-SNR weighted when the model was trained so), the instance half plus
// priorWeight x the class half (DreamBooth paper, eq. 2), backward, clip to norm 1, AdamW.

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "inference/loading/checkpoint_loader.h"
#include "inference/training/lora_network.h"

namespace easel::inference::training {

struct StepSettings {
    bool lora = false;
    int loraRank = 16;
    double loraAlpha = 16;
    bool trainTextEncoder = true;
    double learningRate = 1e-4;
    double offsetNoise = 0;  // per-image, per-channel constant added to the noise, as the model was trained
    double minSnrGamma = 0;  // 0: plain MSE
    double priorWeight = 1;
    bool bf16Autocast = false;           // CPU autocast to bf16 (fp32 master weights)
    bool gradientCheckpointing = false;  // the UNet's blocks recompute their activations in backward
    std::uint64_t seed = 0;              // the LoRA factors' initialisation
};

class FineTuneStepper {
public:
    // Freezes what does not train (the VAE always; everything but the adapters for LoRA) and makes the
    // optimiser. `model` must outlive the stepper and be float32 for DreamBooth; a LoRA may train on bf16
    // weights (its factors are float32 either way).
    FineTuneStepper(StableDiffusionModel& model, const StepSettings& settings);
    ~FineTuneStepper();

    // x0: [N, C, h, w] scaled latents, ids: [N, 77]; the first `instances` rows are instance examples,
    // the rest class (prior) examples. Returns the loss.
    double step(const torch::Tensor& x0, const torch::Tensor& ids, int instances, torch::Generator& generator);

    // What a checkpoint holds (trainable weights, plus the optimiser's state via optimizer()).
    torch::nn::Module& state() { return *m_state; }
    torch::optim::Optimizer& optimizer() { return *m_optimizer; }
    LoRANetwork& network() { return m_network; }
    std::size_t trainableParameters() const;

private:
    StableDiffusionModel& m_model;
    StepSettings m_settings;
    LoRANetwork m_network{nullptr};
    std::vector<torch::Tensor> m_params;
    std::shared_ptr<torch::nn::Module> m_state;
    std::unique_ptr<torch::optim::AdamW> m_optimizer;
    torch::Tensor m_alphas;  // alphas_cumprod of SD's training schedule
};

}  // namespace easel::inference::training
